// f32 GEMM for the transformer embedder: y (+)= x · Wᵀ with W packed once at model load.
//
// Why not sgemm: a BLAS picks its kernels (and so its order of additions) by CPU model, so the
// same model gave different vectors on AMD and Intel. Here the order is fixed by the definition
// below. It is also faster for the short inputs of a query (m ≈ 10-30 rows), where OpenBLAS spent
// about a third of its time copying the weights into its own layout on every call. The attention
// products run here too, on keys and values packed per head (sx_f32_pack_rows/_columns).
//
// Packed layout (the same for every path): n is split into panels of SX_F32_NR (= 32) output
// columns, the last one padded with zero columns; panel p holds, for each k in order, the 32
// weights W[32p + j][k], j = 0..31 (k × 128 bytes per panel).
//
// Every path computes each output element the same way: for each k block (a split of k that
// depends on k only), the block's products are summed in k order with fused multiply-adds from
// zero, and the block sum is added to y. So a row's result does not depend on m, on the row's
// place in the batch, on the thread count (threads split panels), or on the path: the AVX-512,
// AVX2 and portable paths give bit-identical results.
#include "CKernels.h"
#include "cpu.h"
#include "gemm_common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 10))
#define SX_F32_X86 1
#include <immintrin.h>
#else
#define SX_F32_X86 0
#endif

#define SX_F32_NR 32    // columns per packed panel
#define SX_F32_KC 256   // max k per block: a panel's block is 32 KB, a 12-row x tile 12 KB
#define SX_F32_MC 96    // rows per x block

size_t sx_f32_packed_size(size_t n, size_t k) {
    size_t panels = (n + SX_F32_NR - 1) / SX_F32_NR;
    return panels * (k ? k : 1) * SX_F32_NR * sizeof(float);
}

void sx_f32_pack_rows(const float *w, size_t ldw, size_t n, size_t k, float *packed) {
    size_t panels = (n + SX_F32_NR - 1) / SX_F32_NR;
    for (size_t p = 0; p < panels; p++) {
        float *dst = packed + p * k * SX_F32_NR;
        for (size_t j = 0; j < SX_F32_NR; j++) {
            size_t col = p * SX_F32_NR + j;
            const float *row = w + col * ldw;
            if (col < n) for (size_t kk = 0; kk < k; kk++) dst[kk * SX_F32_NR + j] = row[kk];
            else for (size_t kk = 0; kk < k; kk++) dst[kk * SX_F32_NR + j] = 0.0f;
        }
    }
}

void sx_f32_pack_weights(const float *w, size_t n, size_t k, float *packed) {
    sx_f32_pack_rows(w, k, n, k, packed);
}

void sx_f32_pack_columns(const float *v, size_t ldv, size_t n, size_t k, float *packed) {
    size_t panels = (n + SX_F32_NR - 1) / SX_F32_NR;
    for (size_t p = 0; p < panels; p++) {
        float *dst = packed + p * k * SX_F32_NR;
        size_t nn = sx_min(SX_F32_NR, n - p * SX_F32_NR);
        for (size_t kk = 0; kk < k; kk++) {
            const float *src = v + kk * ldv + p * SX_F32_NR;
            float *d = dst + kk * SX_F32_NR;
            memcpy(d, src, nn * sizeof(float));
            for (size_t j = nn; j < SX_F32_NR; j++) d[j] = 0.0f;
        }
    }
}

// The k blocks: ceil(k / KC) blocks of equal size (the last may be shorter).
static inline size_t sx_f32_kblock(size_t k) {
    size_t blocks = (k + SX_F32_KC - 1) / SX_F32_KC;
    return blocks ? (k + blocks - 1) / blocks : 1;
}

// Rows per tile: the fewest tiles of at most `mr` rows, of (nearly) equal size (25 rows → 9, 8,
// 8 rather than 12, 12, 1: a one-row tile streams the weights for little work).
static inline size_t sx_f32_balanced(size_t rows, size_t mr) {
    size_t tiles = (rows + mr - 1) / mr;
    return tiles ? (rows + tiles - 1) / tiles : mr;
}

static int sx_f32_path_uncached(void) {
    int v = SX_F32_PATH_PORTABLE;
    int avx2 = 0;
#if SX_F32_X86
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) v = SX_F32_PATH_AVX2;
    if (__builtin_cpu_supports("avx512f")) v = SX_F32_PATH_AVX512;
#endif
    const char *force = getenv("SEXTANT_F32_PATH");
    if (force && strcmp(force, "avx2") == 0 && avx2) v = SX_F32_PATH_AVX2;
    if (force && strcmp(force, "portable") == 0) v = SX_F32_PATH_PORTABLE;
    return v;
}

int sx_f32_path(void) {
    static int cached = -2;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v == -2) {
        v = sx_f32_path_uncached();
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return sx_apply_ceiling(v, SX_F32_PATH_AVX2, SX_F32_PATH_PORTABLE);
}

// ---------------------------------------------------------------------------------------------
// Portable path: the same order of operations as the vector paths (fmaf per k, block sums).

static inline __attribute__((always_inline)) void
sx_gemm_f32_portable_body(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                          const float *pw, float *y, size_t ldy, int accumulate) {
    size_t kcb = sx_f32_kblock(k);
    size_t panels = (n + SX_F32_NR - 1) / SX_F32_NR;
    for (size_t i = 0; i < m; i++) {
        for (size_t p = 0; p < panels; p++) {
            size_t nn = sx_min(SX_F32_NR, n - p * SX_F32_NR);
            float *yi = y + i * ldy + p * SX_F32_NR;
            for (size_t pc = 0; pc < k; pc += kcb) {
                size_t kc = sx_min(kcb, k - pc);
                float acc[SX_F32_NR] = {0};
                const float *b = pw + (p * k + pc) * SX_F32_NR;
                for (size_t kk = 0; kk < kc; kk++) {
                    float a = x[i * ldx + pc + kk];
                    for (size_t j = 0; j < SX_F32_NR; j++) acc[j] = fmaf(a, b[kk * SX_F32_NR + j], acc[j]);
                }
                int load = accumulate || pc > 0;
                for (size_t j = 0; j < nn; j++) yi[j] = load ? yi[j] + acc[j] : acc[j];
            }
        }
    }
}

static SX_FMA_TARGET void sx_gemm_f32_portable_fma(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                                                  const float *pw, float *y, size_t ldy, int accumulate) {
    sx_gemm_f32_portable_body(m, n, k, x, ldx, pw, y, ldy, accumulate);
}

static void sx_gemm_f32_portable(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                                 const float *pw, float *y, size_t ldy, int accumulate) {
    if (SX_HAS_FMA()) sx_gemm_f32_portable_fma(m, n, k, x, ldx, pw, y, ldy, accumulate);
    else sx_gemm_f32_portable_body(m, n, k, x, ldx, pw, y, ldy, accumulate);
}

#if SX_F32_X86
// ---------------------------------------------------------------------------------------------
// AVX-512 path: a tile of up to 12 rows × 32 columns in 24 zmm accumulators; per k two weight
// loads and, per row, one broadcast folded into the two FMAs.
#define SX_F32_MR 12
#define SX_F32_TARGET __attribute__((target("avx512f")))

static inline __attribute__((always_inline)) SX_F32_TARGET void
sx_f32_tile(const int mr, size_t kc, const float *x, size_t ldx, const float *b, float *c, size_t ldc,
            int load_c, __mmask16 m0, __mmask16 m1) {
    __m512 acc0[SX_F32_MR], acc1[SX_F32_MR];
    for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    for (size_t kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(b + kk * SX_F32_NR);
        __m512 b1 = _mm512_loadu_ps(b + kk * SX_F32_NR + 16);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(x[r * ldx + kk]);
            acc0[r] = _mm512_fmadd_ps(a, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(a, b1, acc1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = acc0[r], v1 = acc1[r];
        if (load_c) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

typedef void (*sx_f32_tile_fn)(size_t, const float *, size_t, const float *, float *, size_t, int, __mmask16, __mmask16);
#define SX_F32_TILE_FN(MR)                                                                          \
    static SX_F32_TARGET __attribute__((noinline)) void sx_f32_tile_##MR(                          \
        size_t kc, const float *x, size_t ldx, const float *b, float *c, size_t ldc, int load_c,   \
        __mmask16 m0, __mmask16 m1) {                                                               \
        sx_f32_tile(MR, kc, x, ldx, b, c, ldc, load_c, m0, m1);                                     \
    }
SX_F32_TILE_FN(1) SX_F32_TILE_FN(2) SX_F32_TILE_FN(3) SX_F32_TILE_FN(4) SX_F32_TILE_FN(5) SX_F32_TILE_FN(6)
SX_F32_TILE_FN(7) SX_F32_TILE_FN(8) SX_F32_TILE_FN(9) SX_F32_TILE_FN(10) SX_F32_TILE_FN(11) SX_F32_TILE_FN(12)
static const sx_f32_tile_fn sx_f32_tiles[SX_F32_MR + 1] = {
    0, sx_f32_tile_1, sx_f32_tile_2, sx_f32_tile_3, sx_f32_tile_4, sx_f32_tile_5, sx_f32_tile_6,
    sx_f32_tile_7, sx_f32_tile_8, sx_f32_tile_9, sx_f32_tile_10, sx_f32_tile_11, sx_f32_tile_12,
};

static SX_F32_TARGET void sx_gemm_f32_avx512(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                                             const float *pw, float *y, size_t ldy, int accumulate) {
    size_t kcb = sx_f32_kblock(k);
    size_t panels = (n + SX_F32_NR - 1) / SX_F32_NR;
    for (size_t ic = 0; ic < m; ic += SX_F32_MC) {
        size_t mb = sx_min(SX_F32_MC, m - ic);
        size_t tile = sx_f32_balanced(mb, SX_F32_MR);
        for (size_t pc = 0; pc < k; pc += kcb) {
            size_t kc = sx_min(kcb, k - pc);
            int load_c = accumulate || pc > 0;
            for (size_t p = 0; p < panels; p++) {
                const float *bp = pw + (p * k + pc) * SX_F32_NR;
                size_t nn = sx_min(SX_F32_NR, n - p * SX_F32_NR);
                __mmask16 m0 = (__mmask16)(nn >= 16 ? 0xffffu : ((1u << nn) - 1));
                __mmask16 m1 = (__mmask16)(nn >= 32 ? 0xffffu : nn > 16 ? ((1u << (nn - 16)) - 1) : 0);
                for (size_t ir = 0; ir < mb; ir += tile) {
                    size_t mr = sx_min(tile, mb - ir);
                    sx_f32_tiles[mr](kc, x + (ic + ir) * ldx + pc, ldx, bp, y + (ic + ir) * ldy + p * SX_F32_NR, ldy,
                                     load_c, m0, m1);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA path: one 16-column half of a panel at a time, up to 6 rows × 16 columns in 12 ymm
// accumulators (plus 2 weight vectors and a broadcast: 15 of the 16 registers).
#define SX_F32_AVX2_MR 6
#define SX_F32_AVX2_TARGET __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) SX_F32_AVX2_TARGET void
sx_f32_tile_avx2(const int mr, size_t kc, const float *x, size_t ldx, const float *b, float *c, size_t ldc,
                 int load_c, size_t nn) {
    __m256 acc[SX_F32_AVX2_MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (size_t kk = 0; kk < kc; kk++) {
        __m256 w0 = _mm256_loadu_ps(b + kk * SX_F32_NR);
        __m256 w1 = _mm256_loadu_ps(b + kk * SX_F32_NR + 8);
        for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_broadcast_ss(x + r * ldx + kk);
            acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
        }
    }
    sx_store_tile16_avx2(mr, acc, c, ldc, load_c, nn);
}

typedef void (*sx_f32_tile_avx2_fn)(size_t, const float *, size_t, const float *, float *, size_t, int, size_t);
#define SX_F32_AVX2_TILE_FN(MR)                                                                     \
    static SX_F32_AVX2_TARGET __attribute__((noinline)) void sx_f32_tile_avx2_##MR(                \
        size_t kc, const float *x, size_t ldx, const float *b, float *c, size_t ldc, int load_c,   \
        size_t nn) {                                                                                \
        sx_f32_tile_avx2(MR, kc, x, ldx, b, c, ldc, load_c, nn);                                    \
    }
SX_F32_AVX2_TILE_FN(1) SX_F32_AVX2_TILE_FN(2) SX_F32_AVX2_TILE_FN(3)
SX_F32_AVX2_TILE_FN(4) SX_F32_AVX2_TILE_FN(5) SX_F32_AVX2_TILE_FN(6)
static const sx_f32_tile_avx2_fn sx_f32_tiles_avx2[SX_F32_AVX2_MR + 1] = {
    0, sx_f32_tile_avx2_1, sx_f32_tile_avx2_2, sx_f32_tile_avx2_3, sx_f32_tile_avx2_4, sx_f32_tile_avx2_5,
    sx_f32_tile_avx2_6,
};

static SX_F32_AVX2_TARGET void sx_gemm_f32_avx2_impl(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                                                     const float *pw, float *y, size_t ldy, int accumulate) {
    size_t kcb = sx_f32_kblock(k);
    size_t panels = (n + SX_F32_NR - 1) / SX_F32_NR;
    for (size_t ic = 0; ic < m; ic += SX_F32_MC) {
        size_t mb = sx_min(SX_F32_MC, m - ic);
        size_t tile = sx_f32_balanced(mb, SX_F32_AVX2_MR);
        for (size_t pc = 0; pc < k; pc += kcb) {
            size_t kc = sx_min(kcb, k - pc);
            int load_c = accumulate || pc > 0;
            for (size_t p = 0; p < panels; p++) {
                const float *bp = pw + (p * k + pc) * SX_F32_NR;
                size_t nn = sx_min(SX_F32_NR, n - p * SX_F32_NR);
                for (size_t h = 0; h < 2 && 16 * h < nn; h++) {
                    size_t hn = sx_min(16, nn - 16 * h);
                    for (size_t ir = 0; ir < mb; ir += tile) {
                        size_t mr = sx_min(tile, mb - ir);
                        sx_f32_tiles_avx2[mr](kc, x + (ic + ir) * ldx + pc, ldx, bp + 16 * h,
                                              y + (ic + ir) * ldy + p * SX_F32_NR + 16 * h, ldy, load_c, hn);
                    }
                }
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------

void sx_gemm_f32_path(int path, size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                      float *y, size_t ldy, int accumulate) {
    if (sx_gemm_trivial(m, n, k, y, ldy, accumulate)) return;
    const float *pw = (const float *)packed_w;
#if SX_F32_X86
    if (path == SX_F32_PATH_AVX512 && __builtin_cpu_supports("avx512f")) {
        sx_gemm_f32_avx512(m, n, k, x, ldx, pw, y, ldy, accumulate);
        return;
    }
    if (path >= SX_F32_PATH_AVX2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        sx_gemm_f32_avx2_impl(m, n, k, x, ldx, pw, y, ldy, accumulate);
        return;
    }
#endif
    (void)path;
    sx_gemm_f32_portable(m, n, k, x, ldx, pw, y, ldy, accumulate);
}

void sx_gemm_f32(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                 float *y, size_t ldy, int accumulate) {
    sx_gemm_f32_path(sx_f32_path(), m, n, k, x, ldx, packed_w, y, ldy, accumulate);
}
