#!/usr/bin/env bash
# Writes a random-weight model folder of a real embedder's shape (for memory/speed measurements).
# Usage: tools/make-random-model.sh --shape qwen3-0.6b|qwen2-1.5b|mistral-7b [--dtype bf16|f32] --out DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$("$here/venv.sh" | tail -1)"
exec "$py" "$here/make-random-model.py" "$@"
