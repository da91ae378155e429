// CPU feature checks shared by the kernels (internal to CKernels).
#ifndef SEXTANT_CPU_H
#define SEXTANT_CPU_H
#include "CKernels.h"

// Lowers a path chosen from the CPU's features to what sx_cpu_ceiling() allows: `best` stays
// under SX_CPU_BEST, becomes at most `avx2` under SX_CPU_AVX2 and `portable` under SX_CPU_PORTABLE.
static inline int sx_apply_ceiling(int path, int avx2, int portable) {
    int ceiling = sx_cpu_ceiling();
    if (ceiling == SX_CPU_PORTABLE) return portable;
    if (ceiling == SX_CPU_AVX2 && path > avx2) return avx2;
    return path;
}

// The baseline-compiled body of a portable kernel runs with FMA instructions inlined where the
// CPU has them (fmaf is exact either way, so the bits are the same; only the speed differs).
#if defined(__x86_64__) && defined(__clang__)
#define SX_HAS_FMA() (__builtin_cpu_supports("fma"))
#define SX_FMA_TARGET __attribute__((target("fma")))
#else
#define SX_HAS_FMA() 0
#define SX_FMA_TARGET
#endif
#endif
