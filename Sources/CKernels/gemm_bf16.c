// bf16 GEMM for the transformer embedder: y (+)= x · Wᵀ with W pre-packed to bf16 once at model
// load, x converted from f32 to bf16 on the fly and products accumulated in f32.
//
// The fast path uses AVX512_BF16 `vdpbf16ps`, which multiplies pairs of bf16 values and adds both
// products to one f32 lane. Its arithmetic (Intel SDM; checked bit for bit on Zen 4 over 32 M
// random and edge-case lanes) defines every path's: for lanes j < 16,
//     acc[j] = fma(a[2j], b[2j], fma(a[2j+1], b[2j+1], acc[j]))
// (the odd element first), with denormal inputs read as zero and denormal results flushed to
// zero after each fma, in round-to-nearest-even. x is rounded to bf16 with
// `vcvtne2ps2bf16`'s rounding (nearest even, denormals to zero). The AVX2 and portable paths do
// the same fmas in the same order with the MXCSR's DAZ and FTZ bits set for the call (the
// AVX-512 path sets them too, for its final additions), so every path gives the same bits.
// Each instruction therefore performs 32 multiply-adds, twice as many as an f32 `vfmadd` on a zmm
// register, and on Zen 4 both issue at one zmm instruction per cycle — so the bf16 peak is 2× the
// f32 peak. The kernel pairs consecutive k values: x[i][2q], x[i][2q+1] form one 32-bit "pair"
// that is broadcast to all lanes, and the packed weights hold, for 16 output columns j, the pairs
// (W[j][2q], W[j][2q+1]) in one zmm register.
//
// Packed weight layout (identical for the AVX-512 and the portable path, so a matrix packed once
// works on any machine):
//   * k is padded to an even length kp = 2·kq; the extra value of an odd k is 0.
//   * n is split into panels of SX_BF16_NR (= 32) output columns; the last panel is padded with
//     zero columns.
//   * Panel p is stored contiguously, kq × 32 pairs of bf16 (kq × 128 bytes): for each k-pair q in
//     order, the 32 pairs (W[32p + j][2q], W[32p + j][2q + 1]) for j = 0..31, each pair a 32-bit
//     word whose low half is the even-k element.
//   So one k-pair of a panel is exactly two zmm loads, and a k-block [q0, q0 + kc) of a panel is a
//   contiguous run of kc × 128 bytes (the "micro-panel" the microkernel streams).
//
// Blocking (AVX-512 path), in the spirit of Goto/BLIS:
//   for each block of up to SX_BF16_MC (= 48) rows of x (ic):
//     for each block of up to SX_BF16_KC (= 192) k-pairs (pc), balanced to equal sizes:
//       convert x[ic.., pc..] to bf16 pairs into a stack buffer (rows of SX_BF16_KC pairs);
//       for each 32-column panel of W (its kc × 32-pair micro-panel, ≤ 24 KB, stays in L1):
//         for each group of up to SX_BF16_MR (= 12) rows: microkernel → 12 × 32 tile of y.
//   The microkernel keeps a 12 × 32 tile in 24 zmm accumulators; per k-pair it loads two weight
//   vectors, broadcasts each row's x pair once and issues 24 `vdpbf16ps` (24 cycles at Zen 4's
//   one zmm vdpbf16ps per cycle; 24 independent chains cover its latency). The x block
//   (≤ 48 rows × 192 pairs = 36 KB) is re-read from L1/L2 for every panel. A k block > 1 adds the
//   partial tile to y (one extra load per accumulator per k block; < 1% of the work).
#include "CKernels.h"
#include "cpu.h"
#include "gemm_common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 10))
#define SX_BF16_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SX_BF16_X86 0
#endif

#define SX_BF16_NR 32   // output columns per packed panel / microkernel tile (2 zmm)
#define SX_BF16_MR 12   // rows per microkernel tile (12 × 2 = 24 zmm accumulators)
// Cache blocking (runtime only: the packed layout does not depend on KC or MC). Measured on Zen 4,
// KC from 128 to 768 and MC from 48 to 96 are all within ~2% of each other; these are the
// smallest choice that needs a single k block for k = 384.
#define SX_BF16_KC 192  // max k-pairs per k block (weight micro-panel 192 × 128 B = 24 KB, in L1)
#define SX_BF16_MC 48   // max rows per x block (multiple of MR; 48 × 192 × 4 B = 36 KB of stack)

// ---------------------------------------------------------------------------------------------
// Scalar helpers (portable)

// f32 → bf16 as vcvtne2ps2bf16 rounds: nearest even, a denormal becomes a zero of its sign, NaNs
// stay (quiet) NaNs.
static inline uint16_t sx_f32_to_bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float sx_bf16_to_f32_1(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// ---------------------------------------------------------------------------------------------
// Packing

size_t sx_bf16_packed_size(size_t n, size_t k) {
    size_t panels = (n + SX_BF16_NR - 1) / SX_BF16_NR;
    size_t kq = (k + 1) / 2;
    return panels * kq * SX_BF16_NR * sizeof(uint32_t);
}

void sx_bf16_pack_weights(const float *w, size_t n, size_t k, void *packed) {
    size_t kq = (k + 1) / 2;
    size_t panels = (n + SX_BF16_NR - 1) / SX_BF16_NR;
    uint16_t *dst = (uint16_t *)packed;
    for (size_t p = 0; p < panels; p++) {
        for (size_t q = 0; q < kq; q++) {
            for (size_t j = 0; j < SX_BF16_NR; j++) {
                size_t col = p * SX_BF16_NR + j;
                size_t k0 = 2 * q, k1 = 2 * q + 1;
                uint16_t lo = 0, hi = 0;
                if (col < n) {
                    lo = sx_f32_to_bf16_rne(w[col * k + k0]);
                    if (k1 < k) hi = sx_f32_to_bf16_rne(w[col * k + k1]);
                }
                *dst++ = lo;   // even k in the low half of the 32-bit pair (little endian)
                *dst++ = hi;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime detection

int sx_bf16_supported(void) {
#if SX_BF16_X86
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    unsigned a, b, c, d;
    int ok = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) {           // OSXSAVE
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        // XCR0: SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS.
        if ((lo & 0xe6u) == 0xe6u && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
            if (f && bw && vl && a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
                ok = (a >> 5) & 1;                                       // AVX512_BF16
        }
    }
    __atomic_store_n(&cached, ok, __ATOMIC_RELAXED);
    return ok;
#else
    return 0;
#endif
}

// The path sx_gemm_bf16 takes: the best the CPU has, lowered by $SEXTANT_BF16_PATH ("avx2" or
// "portable"; read once) so that one machine can test the others' paths.
int sx_bf16_path(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return sx_apply_ceiling(v, v < SX_BF16_PATH_AVX2 ? v : SX_BF16_PATH_AVX2, SX_BF16_PATH_PORTABLE);
    v = SX_BF16_PATH_PORTABLE;
#if SX_BF16_X86
    if (sx_bf16_supported()) v = SX_BF16_PATH_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v = SX_BF16_PATH_AVX2;
#endif
    const char *force = getenv("SEXTANT_BF16_PATH");
    if (force && strcmp(force, "avx2") == 0 && v > SX_BF16_PATH_AVX2) v = SX_BF16_PATH_AVX2;
    if (force && strcmp(force, "portable") == 0) v = SX_BF16_PATH_PORTABLE;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return sx_apply_ceiling(v, v < SX_BF16_PATH_AVX2 ? v : SX_BF16_PATH_AVX2, SX_BF16_PATH_PORTABLE);
}

// ---------------------------------------------------------------------------------------------
// Portable path: same packed layout, same k blocks, same fmas (called with DAZ and FTZ set).

// The k blocks of every path: ceil(kq / KC) blocks of k-pairs of (nearly) equal size, e.g.
// k = 384 (192 pairs) → 2 × 96 rather than 128 + 64. Each block is summed from zero and then
// added to y.
static inline size_t sx_bf16_kblock(size_t kq) {
    size_t kblocks = (kq + SX_BF16_KC - 1) / SX_BF16_KC;
    return kblocks ? (kq + kblocks - 1) / kblocks : 1;
}

static inline __attribute__((always_inline)) void
sx_gemm_bf16_scalar_body(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                         const uint32_t *pw, float *y, size_t ldy, int accumulate) {
    size_t kq = (k + 1) / 2;
    size_t kcb = sx_bf16_kblock(kq);
    size_t panels = (n + SX_BF16_NR - 1) / SX_BF16_NR;
    for (size_t i = 0; i < m; i++) {
        const float *xi = x + i * ldx;
        for (size_t p = 0; p < panels; p++) {
            const uint32_t *bp = pw + p * kq * SX_BF16_NR;
            size_t nn = sx_min(SX_BF16_NR, n - p * SX_BF16_NR);
            float *yi = y + i * ldy + p * SX_BF16_NR;
            for (size_t pc = 0; pc < kq; pc += kcb) {
                size_t kc = sx_min(kcb, kq - pc);
                float acc[SX_BF16_NR] = {0};
                for (size_t q = pc; q < pc + kc; q++) {
                    float a0 = sx_bf16_to_f32_1(sx_f32_to_bf16_rne(xi[2 * q]));
                    float a1 = 2 * q + 1 < k ? sx_bf16_to_f32_1(sx_f32_to_bf16_rne(xi[2 * q + 1])) : 0.0f;
                    const uint32_t *bq = bp + q * SX_BF16_NR;
                    for (size_t j = 0; j < SX_BF16_NR; j++) {
                        float w0 = sx_bf16_to_f32_1((uint16_t)(bq[j] & 0xffffu));
                        float w1 = sx_bf16_to_f32_1((uint16_t)(bq[j] >> 16));
                        acc[j] = fmaf(a0, w0, fmaf(a1, w1, acc[j]));
                    }
                }
                int load = accumulate || pc > 0;
                for (size_t j = 0; j < nn; j++) yi[j] = load ? yi[j] + acc[j] : acc[j];
            }
        }
    }
}

static __attribute__((noinline)) SX_FMA_TARGET void
sx_gemm_bf16_scalar_fma(size_t m, size_t n, size_t k, const float *x, size_t ldx, const uint32_t *pw,
                        float *y, size_t ldy, int accumulate) {
    sx_gemm_bf16_scalar_body(m, n, k, x, ldx, pw, y, ldy, accumulate);
}

static __attribute__((noinline)) void
sx_gemm_bf16_scalar_plain(size_t m, size_t n, size_t k, const float *x, size_t ldx, const uint32_t *pw,
                          float *y, size_t ldy, int accumulate) {
    sx_gemm_bf16_scalar_body(m, n, k, x, ldx, pw, y, ldy, accumulate);
}

static void sx_gemm_bf16_scalar(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                                const uint32_t *pw, float *y, size_t ldy, int accumulate) {
    if (SX_HAS_FMA()) sx_gemm_bf16_scalar_fma(m, n, k, x, ldx, pw, y, ldy, accumulate);
    else sx_gemm_bf16_scalar_plain(m, n, k, x, ldx, pw, y, ldy, accumulate);
}

// ---------------------------------------------------------------------------------------------
// AVX512_BF16 path

#if SX_BF16_X86
#define SX_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define SX_BF16_INLINE static inline __attribute__((always_inline)) SX_BF16_TARGET

// Convert rows [0, mb) of x, k range [2·pc, 2·pc + 2·kc) ∩ [0, k), to bf16 pairs:
// a[r·SX_BF16_KC + q] = (bf16(x[r][2(pc+q)]), bf16(x[r][2(pc+q)+1])), zero beyond k.
SX_BF16_INLINE void sx_bf16_pack_x(const float *x, size_t ldx, size_t mb, size_t k, size_t pc,
                                   size_t kc, uint32_t *a) {
    size_t k0 = 2 * pc;
    size_t len = sx_min(2 * kc, k - k0);   // floats to convert per row (may be odd)
    for (size_t r = 0; r < mb; r++) {
        const float *src = x + r * ldx + k0;
        uint32_t *dst = a + r * SX_BF16_KC;
        size_t e = 0;
        for (; e + 32 <= len; e += 32) {
            __m512 lo = _mm512_loadu_ps(src + e);
            __m512 hi = _mm512_loadu_ps(src + e + 16);
            // cvtne2ps(hi, lo): lo's 16 values land in the low 256 bits, in order.
            _mm512_storeu_si512((void *)(dst + e / 2), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
        if (e < len) {
            size_t rem = len - e;   // 1..31 floats, then zero-fill up to the pair boundary
            __mmask16 mlo = (__mmask16)(rem >= 16 ? 0xffffu : ((1u << rem) - 1));
            __mmask16 mhi = (__mmask16)(rem > 16 ? ((1u << (rem - 16)) - 1) : 0);
            __m512 lo = _mm512_maskz_loadu_ps(mlo, src + e);
            __m512 hi = _mm512_maskz_loadu_ps(mhi, src + e + 16);
            size_t pairs = (rem + 1) / 2;
            _mm512_mask_storeu_epi32(dst + e / 2, (__mmask16)((1u << pairs) - 1),
                                     (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

// MR × 32 tile: c[r][0..32) (+)= Σ_q a-pair(r, q) · b-pairs(q, 0..32).
// `a` rows are SX_BF16_KC pairs apart; `b` is the kc × 32-pair weight micro-panel.
// `load_c` adds the existing tile; masks m0/m1 select valid columns of the two 16-column halves.
SX_BF16_INLINE void sx_bf16_tile(const int mr, size_t kc, const uint32_t *a, const uint32_t *b,
                                 const uint32_t *next_b, float *c, size_t ldc, int load_c,
                                 __mmask16 m0, __mmask16 m1) {
    __m512 acc0[SX_BF16_MR], acc1[SX_BF16_MR];
    for (int r = 0; r < mr; r++) {
        acc0[r] = _mm512_setzero_ps();
        acc1[r] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
    }
    for (size_t q = 0; q < kc; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(b + q * SX_BF16_NR));
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(b + q * SX_BF16_NR + 16));
        // Pull the next weight micro-panel towards L2 while this one computes (only the first
        // tile of a panel really fetches; later tiles find the lines already there).
        _mm_prefetch((const char *)(next_b + q * SX_BF16_NR), _MM_HINT_T1);
        _mm_prefetch((const char *)(next_b + q * SX_BF16_NR + 16), _MM_HINT_T1);
        for (int r = 0; r < mr; r++) {
            // A broadcast of one 32-bit pair; the compiler folds it into vdpbf16ps {1to16}.
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r * SX_BF16_KC + q]);
            acc0[r] = _mm512_dpbf16_ps(acc0[r], b0, av);
            acc1[r] = _mm512_dpbf16_ps(acc1[r], b1, av);
        }
    }
    if (m0 == 0xffff && m1 == 0xffff) {
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            __m512 v0 = acc0[r], v1 = acc1[r];
            if (load_c) {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + 16));
            }
            _mm512_storeu_ps(cr, v0);
            _mm512_storeu_ps(cr + 16, v1);
        }
    } else {
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            __m512 v0 = acc0[r], v1 = acc1[r];
            if (load_c) {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
            }
            _mm512_mask_storeu_ps(cr, m0, v0);
            _mm512_mask_storeu_ps(cr + 16, m1, v1);
        }
    }
}

typedef void (*sx_bf16_tile_fn)(size_t, const uint32_t *, const uint32_t *, const uint32_t *,
                                float *, size_t, int, __mmask16, __mmask16);

// One out-of-line instance per row count, so each is fully unrolled with its accumulators in
// registers.
#define SX_BF16_TILE_FN(MR)                                                                        \
    static SX_BF16_TARGET __attribute__((noinline)) void sx_bf16_tile_##MR(                      \
        size_t kc, const uint32_t *a, const uint32_t *b, const uint32_t *next_b, float *c,        \
        size_t ldc, int load_c, __mmask16 m0, __mmask16 m1) {                                     \
        sx_bf16_tile(MR, kc, a, b, next_b, c, ldc, load_c, m0, m1);                               \
    }
SX_BF16_TILE_FN(1)
SX_BF16_TILE_FN(2)
SX_BF16_TILE_FN(3)
SX_BF16_TILE_FN(4)
SX_BF16_TILE_FN(5)
SX_BF16_TILE_FN(6)
SX_BF16_TILE_FN(7)
SX_BF16_TILE_FN(8)
SX_BF16_TILE_FN(9)
SX_BF16_TILE_FN(10)
SX_BF16_TILE_FN(11)
SX_BF16_TILE_FN(12)

static const sx_bf16_tile_fn sx_bf16_tiles[SX_BF16_MR + 1] = {
    0, sx_bf16_tile_1, sx_bf16_tile_2, sx_bf16_tile_3, sx_bf16_tile_4, sx_bf16_tile_5,
    sx_bf16_tile_6, sx_bf16_tile_7, sx_bf16_tile_8, sx_bf16_tile_9, sx_bf16_tile_10,
    sx_bf16_tile_11, sx_bf16_tile_12,
};

static __attribute__((noinline)) SX_BF16_TARGET void sx_gemm_bf16_avx512(size_t m, size_t n, size_t k, const float *x,
                                               size_t ldx, const uint32_t *pw, float *y,
                                               size_t ldy, int accumulate) {
    // x block as bf16 pairs: SX_BF16_MC rows of SX_BF16_KC pairs (36 KB on the stack).
    uint32_t abuf[SX_BF16_MC * SX_BF16_KC] __attribute__((aligned(64)));
    size_t kq = (k + 1) / 2;
    size_t panels = (n + SX_BF16_NR - 1) / SX_BF16_NR;
    size_t kcb = sx_bf16_kblock(kq);

    for (size_t ic = 0; ic < m; ic += SX_BF16_MC) {
        size_t mb = sx_min(SX_BF16_MC, m - ic);
        for (size_t pc = 0; pc < kq; pc += kcb) {
            size_t kc = sx_min(kcb, kq - pc);
            sx_bf16_pack_x(x + ic * ldx, ldx, mb, k, pc, kc, abuf);
            int load_c = accumulate || pc > 0;
            for (size_t p = 0; p < panels; p++) {
                const uint32_t *bp = pw + p * kq * SX_BF16_NR + pc * SX_BF16_NR;
                size_t nn = sx_min(SX_BF16_NR, n - p * SX_BF16_NR);
                __mmask16 m0 = (__mmask16)(nn >= 16 ? 0xffffu : ((1u << nn) - 1));
                __mmask16 m1 = (__mmask16)(nn >= 32 ? 0xffffu : nn > 16 ? ((1u << (nn - 16)) - 1) : 0);
                float *yp = y + ic * ldy + p * SX_BF16_NR;
                const uint32_t *next_b = p + 1 < panels ? bp + kq * SX_BF16_NR
                                         : pc + kc < kq ? pw + (pc + kc) * SX_BF16_NR : pw;
                for (size_t ir = 0; ir < mb; ir += SX_BF16_MR) {
                    size_t mr = sx_min(SX_BF16_MR, mb - ir);
                    sx_bf16_tiles[mr](kc, abuf + ir * SX_BF16_KC, bp, next_b, yp + ir * ldy, ldy,
                                      load_c, m0, m1);
                }
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA path (CPUs without AVX512_BF16): the same packed weights, widened to f32 in
// registers (a bf16 is the upper half of an f32: a shift or a mask), and x rounded to bf16 as the
// other paths do, so every path multiplies the same values. Per k-pair q and row r:
//     acc[r][j] = fma(a_even(r, q), w_even(j, q), fma(a_odd(r, q), w_odd(j, q), acc[r][j])).
// The microkernel holds a 4 × 16 tile in 8 ymm accumulators (plus 4 widened weight vectors and
// 2 broadcasts: 14 of the 16 ymm registers). Each row's sums run in the same order whatever m and
// the row's place in the batch, so results stay batch-invariant.

#if SX_BF16_X86
#define SX_AVX2_TARGET __attribute__((target("avx2,fma")))
#define SX_AVX2_MR 4    // rows per tile: 4 rows × 16 columns = 8 ymm accumulators
#define SX_AVX2_MC 24   // rows per x block (24 × 2·192 floats = 36 KB of stack)

// One 16-column half of a panel for mr ≤ 4 rows. `xa` holds each row's bf16-rounded x as f32,
// 2·SX_BF16_KC apart, so a broadcast is a plain load; per k-pair the two weight vectors are
// widened once and used by every row.
static inline SX_AVX2_TARGET __attribute__((always_inline)) void
sx_bf16_tile_avx2(const int mr, size_t kc, const float *xa, const uint32_t *b, float *c, size_t ldc,
                  int load_c, size_t nn) {
    __m256 acc[SX_AVX2_MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (size_t q = 0; q < kc; q++) {
        const uint32_t *bq = b + q * SX_BF16_NR;
        __m256i w0 = _mm256_loadu_si256((const __m256i *)bq);
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(bq + 8));
        __m256 we0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
        __m256 wo0 = _mm256_castsi256_ps(_mm256_and_si256(w0, high));
        __m256 we1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
        __m256 wo1 = _mm256_castsi256_ps(_mm256_and_si256(w1, high));
        for (int r = 0; r < mr; r++) {
            __m256 e = _mm256_broadcast_ss(xa + r * 2 * SX_BF16_KC + 2 * q);
            __m256 o = _mm256_broadcast_ss(xa + r * 2 * SX_BF16_KC + 2 * q + 1);
            acc[r][0] = _mm256_fmadd_ps(e, we0, _mm256_fmadd_ps(o, wo0, acc[r][0]));
            acc[r][1] = _mm256_fmadd_ps(e, we1, _mm256_fmadd_ps(o, wo1, acc[r][1]));
        }
    }
    sx_store_tile16_avx2(mr, acc, c, ldc, load_c, nn);
}

typedef void (*sx_bf16_tile_avx2_fn)(size_t, const float *, const uint32_t *, float *, size_t, int, size_t);
#define SX_AVX2_TILE_FN(MR)                                                                        \
    static SX_AVX2_TARGET __attribute__((noinline)) void sx_bf16_tile_avx2_##MR(                 \
        size_t kc, const float *xa, const uint32_t *b, float *c, size_t ldc, int load_c, size_t nn) { \
        sx_bf16_tile_avx2(MR, kc, xa, b, c, ldc, load_c, nn);                                     \
    }
SX_AVX2_TILE_FN(1)
SX_AVX2_TILE_FN(2)
SX_AVX2_TILE_FN(3)
SX_AVX2_TILE_FN(4)
static const sx_bf16_tile_avx2_fn sx_bf16_tiles_avx2[SX_AVX2_MR + 1] = {
    0, sx_bf16_tile_avx2_1, sx_bf16_tile_avx2_2, sx_bf16_tile_avx2_3, sx_bf16_tile_avx2_4,
};

// x rows [0, mb), k-pairs [pc, pc + kc), rounded to bf16 and kept as f32: xa[r][2q + {0, 1}].
static void sx_bf16_round_x(const float *x, size_t ldx, size_t mb, size_t k, size_t pc, size_t kc, float *xa) {
    for (size_t r = 0; r < mb; r++) {
        const float *src = x + r * ldx;
        float *dst = xa + r * 2 * SX_BF16_KC;
        for (size_t q = 0; q < kc; q++) {
            size_t k0 = 2 * (pc + q), k1 = k0 + 1;
            dst[2 * q] = sx_bf16_to_f32_1(sx_f32_to_bf16_rne(src[k0]));
            dst[2 * q + 1] = k1 < k ? sx_bf16_to_f32_1(sx_f32_to_bf16_rne(src[k1])) : 0.0f;
        }
    }
}

static __attribute__((noinline)) SX_AVX2_TARGET void sx_gemm_bf16_avx2_impl(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                                                  const uint32_t *pw, float *y, size_t ldy, int accumulate) {
    float xa[SX_AVX2_MC * 2 * SX_BF16_KC] __attribute__((aligned(64)));
    size_t kq = (k + 1) / 2;
    size_t panels = (n + SX_BF16_NR - 1) / SX_BF16_NR;
    size_t kcb = sx_bf16_kblock(kq);
    for (size_t ic = 0; ic < m; ic += SX_AVX2_MC) {
        size_t mb = sx_min(SX_AVX2_MC, m - ic);
        for (size_t pc = 0; pc < kq; pc += kcb) {
            size_t kc = sx_min(kcb, kq - pc);
            sx_bf16_round_x(x + ic * ldx, ldx, mb, k, pc, kc, xa);
            int load_c = accumulate || pc > 0;
            for (size_t p = 0; p < panels; p++) {
                const uint32_t *bp = pw + p * kq * SX_BF16_NR + pc * SX_BF16_NR;
                size_t nn = sx_min(SX_BF16_NR, n - p * SX_BF16_NR);
                for (size_t h = 0; h < 2 && 16 * h < nn; h++) {
                    size_t hn = sx_min(16, nn - 16 * h);
                    float *yp = y + ic * ldy + p * SX_BF16_NR + 16 * h;
                    for (size_t ir = 0; ir < mb; ir += SX_AVX2_MR) {
                        size_t mr = sx_min(SX_AVX2_MR, mb - ir);
                        sx_bf16_tiles_avx2[mr](kc, xa + ir * 2 * SX_BF16_KC, bp + 16 * h, yp + ir * ldy, ldy, load_c, hn);
                    }
                }
            }
        }
    }
}
#endif

int sx_gemm_bf16_avx2(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                      float *y, size_t ldy, int accumulate) {
#if SX_BF16_X86
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return -1;
    if (sx_gemm_trivial(m, n, k, y, ldy, accumulate)) return 0;
    unsigned csr = sx_flush_denormals_begin();
    sx_gemm_bf16_avx2_impl(m, n, k, x, ldx, (const uint32_t *)packed_w, y, ldy, accumulate);
    sx_flush_denormals_end(csr);
    return 0;
#else
    (void)m; (void)n; (void)k; (void)x; (void)ldx; (void)packed_w; (void)y; (void)ldy; (void)accumulate;
    return -1;
#endif
}

// ---------------------------------------------------------------------------------------------

void sx_gemm_bf16(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                  float *y, size_t ldy, int accumulate) {
    if (sx_gemm_trivial(m, n, k, y, ldy, accumulate)) return;
    unsigned csr = sx_flush_denormals_begin();
    int path = sx_bf16_path();
#if SX_BF16_X86
    if (path == SX_BF16_PATH_AVX512)
        sx_gemm_bf16_avx512(m, n, k, x, ldx, (const uint32_t *)packed_w, y, ldy, accumulate);
    else if (path == SX_BF16_PATH_AVX2)
        sx_gemm_bf16_avx2_impl(m, n, k, x, ldx, (const uint32_t *)packed_w, y, ldy, accumulate);
    else
#endif
        sx_gemm_bf16_scalar(m, n, k, x, ldx, (const uint32_t *)packed_w, y, ldy, accumulate);
    (void)path;
    sx_flush_denormals_end(csr);
}

void sx_gemm_bf16_portable(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                           const void *packed_w, float *y, size_t ldy, int accumulate) {
    if (sx_gemm_trivial(m, n, k, y, ldy, accumulate)) return;
    unsigned csr = sx_flush_denormals_begin();
    sx_gemm_bf16_scalar(m, n, k, x, ldx, (const uint32_t *)packed_w, y, ldy, accumulate);
    sx_flush_denormals_end(csr);
}
