#!/usr/bin/env bash
# Regenerates the reranker / multilingual fixtures of issue 14 (Unigram, WordPiece and byte-level
# tokenizers, a tiny XLM-R embedder, tiny cross-encoders, a tiny Qwen3-Reranker-style model, and
# the reference outputs of transformers / sentence-transformers) under fixtures/rerankers/ and
# fixtures/tokenizer/.
# Usage: tools/make-reranker-fixtures.sh [--check]   (creates tools/.venv on first use)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$("$here/venv.sh" | tail -1)"
exec "$py" "$here/make-reranker-fixtures.py" "$@"
