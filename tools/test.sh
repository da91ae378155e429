#!/usr/bin/env bash
# Set up everything a fresh machine needs (tools/setup.sh), then run the whole test suite.
# Tests never download: goldens are committed under fixtures/, the model comes from set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
SEXTANT_SKIP_BUILD=1 tools/setup.sh
swift build --build-tests
swift test --skip-build "$@"
