#!/usr/bin/env bash
# The Ray tests (tools/ray/test_ray.py) in local mode: creates the pinned venv if missing
# (tools/ray/venv.sh) and uses $SEXTANT_BIN, else <repo>/.build/release/sextant.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SEXTANT_BIN="${SEXTANT_BIN:-$here/../../.build/release/sextant}"
py="$("$here/venv.sh" | tail -n 1)"
export RAY_USAGE_STATS_ENABLED=0
exec "$py" "$here/test_ray.py" "$@"
