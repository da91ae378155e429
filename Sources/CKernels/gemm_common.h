// Pieces shared by the GEMMs on packed weights (gemm_f32.c, gemm_bf16.c).
#ifndef SEXTANT_GEMM_COMMON_H
#define SEXTANT_GEMM_COMMON_H
#include <stddef.h>
#include <string.h>

static inline size_t sx_min(size_t a, size_t b) { return a < b ? a : b; }

// Shapes with nothing to multiply: m or n = 0 (nothing to write), or k = 0 (an empty sum: y = 0,
// or unchanged when accumulating). Returns 1 when it handled the call.
static inline int sx_gemm_trivial(size_t m, size_t n, size_t k, float *y, size_t ldy, int accumulate) {
    if (m == 0 || n == 0) return 1;
    if (k != 0) return 0;
    if (!accumulate)
        for (size_t i = 0; i < m; i++) memset(y + i * ldy, 0, n * sizeof(float));
    return 1;
}

#if defined(__x86_64__)
#include <xmmintrin.h>
// Sets the MXCSR's DAZ (denormal inputs read as zero) and FTZ (denormal results flushed to zero)
// bits, and rounding to nearest even, for the rest of a call, as bf16 dot-product instructions
// always do whatever the MXCSR says; returns the old value for sx_flush_denormals_end. The flushed work must be in another (non-inlined) function, so that
// the compiler cannot move it across the MXCSR writes.
static inline unsigned sx_flush_denormals_begin(void) {
    unsigned old = _mm_getcsr();
    _mm_setcsr((old & ~0x6000u) | 0x8040u);   // RC = 00 (nearest), DAZ, FTZ
    return old;
}
static inline void sx_flush_denormals_end(unsigned old) { _mm_setcsr(old); }
#else
static inline unsigned sx_flush_denormals_begin(void) { return 0; }
static inline void sx_flush_denormals_end(unsigned old) { (void)old; }
#endif

#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 10))
#include <immintrin.h>
// Stores an AVX2 tile of `mr` rows × 16 columns (two ymm per row) to c, adding what is there
// when `load_c`; only the first `nn` (< 16 possible) columns of each row are written.
static inline __attribute__((always_inline, target("avx2,fma"))) void
sx_store_tile16_avx2(int mr, __m256 acc[][2], float *c, size_t ldc, int load_c, size_t nn) {
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        if (nn >= 16) {
            for (int v = 0; v < 2; v++) {
                __m256 t = acc[r][v];
                if (load_c) t = _mm256_add_ps(t, _mm256_loadu_ps(cr + 8 * v));
                _mm256_storeu_ps(cr + 8 * v, t);
            }
        } else {
            float tmp[16];
            _mm256_storeu_ps(tmp, acc[r][0]);
            _mm256_storeu_ps(tmp + 8, acc[r][1]);
            for (size_t j = 0; j < nn; j++) cr[j] = load_c ? cr[j] + tmp[j] : tmp[j];
        }
    }
}
#endif

#endif
