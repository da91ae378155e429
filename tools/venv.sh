#!/usr/bin/env bash
# Creates (once) tools/.venv with the Python reference implementations and peers that the
# golden generators and benchmarks in tools/ run against. Tests never need it.
# Usage: tools/venv.sh            -> prints the venv's python path on the last line
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.sextant-ready-2"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  # torch: the CPU build (a local wheel where the machine has one, else PyPI's).
  if ! "$venv/bin/pip" install -q "torch==2.13.0+cpu" >&2; then
    "$venv/bin/pip" install -q torch >&2
  fi
  "$venv/bin/pip" install -q sentence-transformers transformers tokenizers safetensors numpy sentencepiece protobuf >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
