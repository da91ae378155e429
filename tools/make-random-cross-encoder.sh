#!/usr/bin/env bash
# Writes a random-weight cross-encoder of ms-marco-MiniLM-L-6-v2's shape (for tools/bench-rerank).
# Usage: tools/make-random-cross-encoder.sh --out models/random-ms-marco-MiniLM-L-6 [--seed 0]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$("$here/venv.sh" | tail -1)"
exec "$py" "$here/make-random-cross-encoder.py" "$@"
