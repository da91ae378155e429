#!/usr/bin/env bash
# Creates (once) tools/ray/.venv with pinned Ray (ray[data,serve]) for the Ray tools and tests.
# Re-running is a no-op while the stamp matches the requirement files.
# Usage: tools/ray/venv.sh       -> prints the venv's python path on the last line
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
sum="$(cat "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -c1-16)"
stamp="$venv/.sextant-ray-ready-$sum"
# One set-up at a time (a test run and a user's command may start together).
exec 9>"$here/.venv.lock"
flock 9
if [ ! -f "$stamp" ]; then
  py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    echo "error: tools/ray needs Python 3.10 or newer ($py)" >&2; exit 1
  fi
  rm -rf "$venv"
  if ! "$py" -m venv "$venv" >&2; then
    echo "error: '$py -m venv' failed (on Debian: apt-get install python3-venv)" >&2; exit 1
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade "pip==26.3" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" -c "$here/constraints.txt" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
