#!/usr/bin/env bash
# Regenerates the tokenizer/embedding goldens in fixtures/ with the reference Python stack.
# Usage: tools/make-goldens.sh   (creates tools/.venv on first use; see tools/venv.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$("$here/venv.sh" | tail -1)"
exec "$py" "$here/make-goldens.py" "$@"
