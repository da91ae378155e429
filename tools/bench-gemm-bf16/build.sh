#!/bin/sh
# Builds the sx_gemm_bf16 test/benchmark into .build-gemm-bf16/bench-gemm-bf16 with the flags
# SwiftPM uses for CKernels (-O3 -ffp-contract=off, no -march: the kernel selects AVX512_BF16
# at run time). The benchmark's peer is OpenBLAS's sgemm (Sextant itself does not use it):
# libopenblas-dev and pkg-config are installed with apt if missing. Override the compiler with CC=...
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! pkg-config --exists openblas 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
fi
if [ -z "${CC:-}" ]; then
    if [ -x /opt/swift/usr/bin/clang ]; then CC=/opt/swift/usr/bin/clang
    elif command -v clang >/dev/null 2>&1; then CC=clang
    else CC=cc; fi
fi
out="$root/.build-gemm-bf16"
mkdir -p "$out"
# shellcheck disable=SC2046
"$CC" -O3 -ffp-contract=off -Wall -Wextra -std=gnu11 \
    -I "$root/Sources/CKernels/include" -I "$root/Sources/CKernels" $(pkg-config --cflags openblas) \
    "$root/Sources/CKernels/gemm_bf16.c" "$root/Sources/CKernels/kernels.c" "$root/Sources/CKernels/scalar_math.c" \
    "$root/tools/bench-gemm-bf16/main.c" \
    $(pkg-config --libs openblas) -lm -o "$out/bench-gemm-bf16"
echo "built $out/bench-gemm-bf16 with $CC"
