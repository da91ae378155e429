#!/usr/bin/env bash
# Set up everything (tools/setup.sh) and run the main job on the default model.
# Until folder indexing lands, the main job is: embed the lines of a sample document as
# passages, embed one instruction-tagged query, and print the passages ranked by cosine.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bin=.build/release/sextant
doc=fixtures/docs/sextant-overview.txt
query="How are deleted documents handled?"
instruct="Given a question, retrieve passages that answer it"

grep -v '^\s*$' "$doc" > /tmp/sextant-quickstart-passages.txt
"$bin" embed --lines < /tmp/sextant-quickstart-passages.txt > /tmp/sextant-quickstart-passages.jsonl
echo "$query" | "$bin" embed --lines --instruct "$instruct" > /tmp/sextant-quickstart-query.jsonl
echo "query: $query"
echo "instruction: $instruct"
python3 - <<'PY'
import json
passages = [l.rstrip("\n") for l in open("/tmp/sextant-quickstart-passages.txt")]
vectors = [json.loads(l)["embedding"] for l in open("/tmp/sextant-quickstart-passages.jsonl")]
q = json.loads(open("/tmp/sextant-quickstart-query.jsonl").readline())["embedding"]
scores = sorted(((sum(a * b for a, b in zip(q, v)), p) for v, p in zip(vectors, passages)), reverse=True)
print(f"{len(vectors)} passages embedded, {len(q)} dimensions; best matches:")
for s, p in scores[:3]:
    print(f"  {s:.3f}  {p[:100]}")
PY
