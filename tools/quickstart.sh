#!/usr/bin/env bash
# Set up everything (tools/setup.sh) and run the main job on the default model: index the sample
# folder fixtures/docs into indexes/quickstart, then run one instruction-tagged search.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bin=.build/release/sextant
index=indexes/quickstart
"$bin" index fixtures/docs --index "$index"
echo
query="How are deleted documents handled?"
instruct="Given a question, retrieve passages that answer it"
echo "search: $query"
echo "instruction: $instruct"
"$bin" search "$query" --instruct "$instruct" --index "$index" -k 3
