#!/usr/bin/env bash
# Regenerates the decoder-embedder fixtures of issue 3 (tokenizers, tiny random-weight models,
# transformers' reference embeddings) under fixtures/decoders/ and fixtures/tokenizer/.
# Usage: tools/make-decoder-fixtures.sh [--check]   (creates tools/.venv on first use)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$("$here/venv.sh" | tail -1)"
exec "$py" "$here/make-decoder-fixtures.py" "$@"
