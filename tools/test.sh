#!/usr/bin/env bash
# Set up everything a fresh machine needs (tools/setup.sh), then run the whole test suite.
# Tests never download: goldens are committed under fixtures/, the model comes from set-up.
# Built in release mode (with testable imports): the embedder and hashing tests run on real
# models and are many times slower in a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
SEXTANT_SKIP_BUILD=1 tools/setup.sh
swift build -c release --build-tests -Xswiftc -enable-testing
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
# The numeric suites again on each lower code path of this CPU (every path must give the same
# bits and pass the same reference checks; BitFixtureTests already compares all paths).
if [ $# -eq 0 ]; then
  numeric='InferenceTests|EmbeddingTests|VectorIndexTests'
  if grep -qw avx512f /proc/cpuinfo; then
    SEXTANT_CPU_PATH=avx2 swift test -c release -Xswiftc -enable-testing --skip-build --filter "$numeric"
  fi
  SEXTANT_CPU_PATH=portable swift test -c release -Xswiftc -enable-testing --skip-build --filter "$numeric"
fi
# The Ray tools (bulk ingest, sharded serving) in local mode; makes their pinned venv on first use.
tools/ray/test.sh
