// int8 GEMM for the transformer embedder (`--precision int8`): y (+)= x · Wᵀ with W quantized once
// at model load and x quantized on the fly, both in blocks of 32 values along k, after rotating
// each block by the 32 × 32 Hadamard matrix H (entries ±1; H·Hᵀ = 32·I):
//
//     y[i][j] = Σ_b  (sx[i][b] · sw[j][b]) · Σ_{t < 32} qx[i][32b + t] · qw[j][32b + t]
//
// where qx, sx quantize the block x·H and qw, sw the block w·H, with q = round-to-nearest-even(v ·
// 127 / amax) in [-127, 127] and s = amax / 127 for the rotated block's largest magnitude amax (a
// block of zeros has s = 0 and q = 0); sw also carries the 1/32 that undoes H·Hᵀ. The rotation
// spreads an outlier over its block, so amax is closer to the block's typical magnitude: on
// all-MiniLM-L6-v2 the worst golden text goes from cosine 0.99900 to f32 (plain blocks, llama.cpp's
// Q8_0) to 0.99956, as close as int16 activations get, at int8 speed (tools/int8-accuracy.py,
// tools/README.md). Per-row or per-channel scales lose far more (0.9967).
//
// The rotation is the fast Walsh-Hadamard transform in f32: five stages h = 1, 2, 4, 8, 16, each
// replacing every pair (v[t], v[t + h]) with t & h = 0 by (v[t] + v[t + h], v[t] - v[t + h]).
// Each stage is elementwise adds and subtractions, so any vectorization gives the same bits.
//
// Every path computes the same numbers: the block sums are exact in int32 (|Σ| ≤ 32·127·127), and
// the f32 part is the same sequence of operations per output, block after block:
//     acc = fma((float)Σ_b, sw[j][b] · sx[i][b], acc),  then y = acc or y + acc,
// so results are bit-identical on every path, for any m, any row position and any column split.
//
// Paths, chosen at run time (`sx_i8_path`, lowered by $SEXTANT_I8_PATH=avx2|portable):
//   * AVX512_VNNI: `vpdpbusd` multiplies 4 unsigned by 4 signed bytes per int32 lane and adds them
//     (64 multiply-adds per zmm instruction, twice `vdpbf16ps`). x is stored as u8 = qx + 128; the
//     extra 128 · Σ qw of each block is removed by starting the block's sums at -128 · Σ qw (kept
//     in the packed weights). Tile: 6 rows × 32 columns (12 int32 and 12 f32 accumulators).
//   * AVX2: `vpmaddubsw` on |qx| (u8) and sign(qx) · qw (s8), which never saturates since both are
//     ≤ 127 in magnitude (2 · 127 · 127 < 32768), then `vpmaddwd` by ones to int32. Tile: 4 rows ×
//     8 columns.
//   * portable: the same in scalar C.
//
// Packed weight layout (one layout for every path): panels of 32 output columns; panel p holds,
// for each k block b, 1280 bytes:
//     [1024 B] qw for quads t = 0..7: at t·128 + 4j + e the value W[32p + j][32b + 4t + e]
//     [ 128 B] sw[32p + j][b] as 32 f32
//     [ 128 B] -128 · Σ_t qw[32p + j][32b + t] as 32 int32
// Columns past n and k past the end of the matrix are zeros.
#include "CKernels.h"
#include "cpu.h"
#include "gemm_common.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 10))
#define SX_I8_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define SX_I8_X86 0
#endif

#define SX_I8_NR 32          // output columns per packed panel
#define SX_I8_QB 32          // k values per quantization block
#define SX_I8_BLOCK_BYTES 1280
#define SX_I8_VNNI_MR 6
#define SX_I8_AVX2_MR 4
#define SX_I8_MC 96          // rows per block (a multiple of both MRs; x and y of a block stay in L2)

static inline size_t sx_i8_blocks(size_t k) { return (k + SX_I8_QB - 1) / SX_I8_QB; }

// 127 / amax, or 0 for a block of zeros (or of magnitudes so small that the quotient overflows).
static inline float sx_i8_inverse(float amax) {
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    return isfinite(inv) ? inv : 0.0f;
}

// q = rint(v · inv) clamped to [-127, 127] (a NaN becomes -127); no add follows the product, so
// the compiler cannot fuse it differently on different paths.
static inline int8_t sx_i8_quantize1(float v, float inv) {
    float t = v * inv;
    t = fminf(fmaxf(t, -127.0f), 127.0f);
    return (int8_t)(int)rintf(t);
}

// The Hadamard rotation of one block, in place (see the top of the file for the stage order).
static void sx_i8_rotate(float v[SX_I8_QB]) {
    for (size_t h = 1; h < SX_I8_QB; h *= 2)
        for (size_t t = 0; t < SX_I8_QB; t++)
            if (!(t & h)) {
                float a = v[t], b = v[t + h];
                v[t] = a + b;
                v[t + h] = a - b;
            }
}

// One block of a row (k0 ≤ k), zero-padded past k, rotated.
static void sx_i8_rotated_block(const float *row, size_t k0, size_t k, float v[SX_I8_QB]) {
    for (size_t t = 0; t < SX_I8_QB; t++) v[t] = k0 + t < k ? row[k0 + t] : 0.0f;
    sx_i8_rotate(v);
}

// ---------------------------------------------------------------------------------------------
// Packing

size_t sx_i8_packed_size(size_t n, size_t k) {
    return (n + SX_I8_NR - 1) / SX_I8_NR * sx_i8_blocks(k) * SX_I8_BLOCK_BYTES;
}

void sx_i8_pack_weights(const float *w, size_t n, size_t k, void *packed) {
    size_t kb = sx_i8_blocks(k), panels = (n + SX_I8_NR - 1) / SX_I8_NR;
    uint8_t *dst = (uint8_t *)packed;
    memset(dst, 0, sx_i8_packed_size(n, k));
    for (size_t p = 0; p < panels; p++) {
        for (size_t b = 0; b < kb; b++) {
            uint8_t *blk = dst + (p * kb + b) * SX_I8_BLOCK_BYTES;
            float *scales = (float *)(blk + 1024);
            int32_t *negcorr = (int32_t *)(blk + 1152);
            for (size_t j = 0; j < SX_I8_NR; j++) {
                size_t col = p * SX_I8_NR + j;
                if (col >= n) break;
                float v[SX_I8_QB];
                sx_i8_rotated_block(w + col * k, b * SX_I8_QB, k, v);
                float amax = 0;
                for (size_t t = 0; t < SX_I8_QB; t++) amax = fmaxf(amax, fabsf(v[t]));
                float inv = sx_i8_inverse(amax);
                int32_t sum = 0;
                for (size_t t = 0; t < SX_I8_QB; t++) {
                    int8_t q = sx_i8_quantize1(v[t], inv);
                    blk[(t / 4) * 128 + 4 * j + t % 4] = (uint8_t)q;
                    sum += q;
                }
                scales[j] = amax / 127.0f * (1.0f / SX_I8_QB);   // exact: a power of two
                negcorr[j] = -128 * sum;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Activations: rows of x quantized into a buffer laid out for the path.

typedef struct {
    size_t kb, kp;     // blocks, and k padded to whole blocks
    int8_t *q;         // m × kp quantized values (u8 = q + 128 on the VNNI path)
    int8_t *mag;       // m × kp |q| (AVX2 path only)
    float *scale;      // m × kb block scales
} sx_i8_acts;

// Quantizes the rotated block v into q (and |q| into mag when not NULL); returns the scale.
static float sx_i8_quantize_block(const float v[SX_I8_QB], int8_t *q, int8_t *mag) {
    float amax = 0;
    for (size_t t = 0; t < SX_I8_QB; t++) amax = fmaxf(amax, fabsf(v[t]));
    float inv = sx_i8_inverse(amax);
    for (size_t t = 0; t < SX_I8_QB; t++) {
        q[t] = sx_i8_quantize1(v[t], inv);
        if (mag) mag[t] = (int8_t)(q[t] < 0 ? -q[t] : q[t]);
    }
    return amax / 127.0f;
}

// Rotates and quantizes one row (portable path).
static void sx_i8_quantize_row(const float *x, size_t k, size_t kb, int8_t *q, float *scale) {
    for (size_t b = 0; b < kb; b++) {
        float v[SX_I8_QB];
        sx_i8_rotated_block(x, b * SX_I8_QB, k, v);
        scale[b] = sx_i8_quantize_block(v, q + b * SX_I8_QB, NULL);
    }
}

#if SX_I8_X86
// One butterfly stage within a zmm of 16 values: lanes t with t & h = 0 get v[t] + v[t + h], the
// others v[t - h] - v[t]; `p` is v with each lane swapped with its partner t ^ h.
#define SX_I8_STAGE512(v, p, upper) _mm512_mask_sub_ps(_mm512_add_ps(v, p), upper, p, v)

// The same rotation and quantization with AVX-512 (for the VNNI path): identical results, since
// the stages are the same adds and subtractions, max, the product and the conversion (round to
// nearest even, the default mode) are exact or correctly rounded operations, and a NaN goes to
// -127 in both (max returns its second operand). Stores u8 = q + 128 for vpdpbusd.
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void sx_i8_quantize_row_avx512(const float *x, size_t k, size_t kb, int8_t *q, float *scale) {
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (size_t b = 0; b < kb; b++) {
        size_t k0 = b * SX_I8_QB, len = sx_min(SX_I8_QB, k - k0);
        __mmask16 m0 = (__mmask16)(len >= 16 ? 0xffffu : ((1u << len) - 1));
        __mmask16 m1 = (__mmask16)(len >= 32 ? 0xffffu : len > 16 ? ((1u << (len - 16)) - 1) : 0);
        __m512 v[2] = {_mm512_maskz_loadu_ps(m0, x + k0), _mm512_maskz_loadu_ps(m1, x + k0 + 16)};
        for (int r = 0; r < 2; r++) {
            v[r] = SX_I8_STAGE512(v[r], _mm512_permute_ps(v[r], 0xB1), 0xAAAA);                          // h = 1
            v[r] = SX_I8_STAGE512(v[r], _mm512_permute_ps(v[r], 0x4E), 0xCCCC);                          // h = 2
            v[r] = SX_I8_STAGE512(v[r], _mm512_shuffle_f32x4(v[r], v[r], _MM_SHUFFLE(2, 3, 0, 1)), 0xF0F0); // h = 4
            v[r] = SX_I8_STAGE512(v[r], _mm512_shuffle_f32x4(v[r], v[r], _MM_SHUFFLE(1, 0, 3, 2)), 0xFF00); // h = 8
        }
        __m512 v0 = _mm512_add_ps(v[0], v[1]), v1 = _mm512_sub_ps(v[0], v[1]);                          // h = 16
        // Magnitudes; x86 max returns its second operand when one is NaN, so NaN lanes are
        // dropped as fmaxf drops them in the scalar code.
        __m512 a = _mm512_max_ps(_mm512_abs_ps(v1),
                                 _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps()));
        float amax = _mm512_reduce_max_ps(a);   // no NaN lanes left, and max is exact in any order
        float inv = sx_i8_inverse(amax);
        scale[b] = amax / 127.0f;
        __m512 iv = _mm512_set1_ps(inv);
        __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v0, iv), lo), hi));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v1, iv), lo), hi));
        __m128i b0 = _mm512_cvtepi32_epi8(q0), b1 = _mm512_cvtepi32_epi8(q1);
        const __m128i flip = _mm_set1_epi8((char)0x80);
        _mm_storeu_si128((__m128i *)(q + k0), _mm_xor_si128(b0, flip));
        _mm_storeu_si128((__m128i *)(q + k0 + 16), _mm_xor_si128(b1, flip));
    }
}

// One butterfly stage within a ymm of 8 values (as SX_I8_STAGE512; `upper` an 8-bit blend mask).
#define SX_I8_STAGE256(v, p, upper) _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), upper)

// The rotation with AVX2 (for the AVX2 path), then the scalar quantization: the same stages.
__attribute__((target("avx2,fma")))
static void sx_i8_quantize_row_avx2(const float *x, size_t k, size_t kb, int8_t *q, int8_t *mag, float *scale) {
    for (size_t b = 0; b < kb; b++) {
        size_t k0 = b * SX_I8_QB;
        float buf[SX_I8_QB];
        const float *src = x + k0;
        if (k - k0 < SX_I8_QB) {
            for (size_t t = 0; t < SX_I8_QB; t++) buf[t] = k0 + t < k ? x[k0 + t] : 0.0f;
            src = buf;
        }
        __m256 v[4];
        for (int r = 0; r < 4; r++) {
            v[r] = _mm256_loadu_ps(src + 8 * r);
            v[r] = SX_I8_STAGE256(v[r], _mm256_permute_ps(v[r], 0xB1), 0xAA);                 // h = 1
            v[r] = SX_I8_STAGE256(v[r], _mm256_permute_ps(v[r], 0x4E), 0xCC);                 // h = 2
            v[r] = SX_I8_STAGE256(v[r], _mm256_permute2f128_ps(v[r], v[r], 0x01), 0xF0);      // h = 4
        }
        for (int r = 0; r < 4; r += 2) {                                                      // h = 8
            __m256 a = v[r], c = v[r + 1];
            v[r] = _mm256_add_ps(a, c);
            v[r + 1] = _mm256_sub_ps(a, c);
        }
        for (int r = 0; r < 2; r++) {                                                         // h = 16
            __m256 a = v[r], c = v[r + 2];
            v[r] = _mm256_add_ps(a, c);
            v[r + 2] = _mm256_sub_ps(a, c);
        }
        for (int r = 0; r < 4; r++) _mm256_storeu_ps(buf + 8 * r, v[r]);
        scale[b] = sx_i8_quantize_block(buf, q + k0, mag + k0);
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// Runtime detection

static int sx_i8_vnni_supported(void) {
#if SX_I8_X86
    unsigned a, b, c, d;
    if (!(__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)))) return 0;   // OSXSAVE
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6u) != 0xe6u || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    return f && bw && vl && vnni;
#else
    return 0;
#endif
}

int sx_i8_path(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return sx_apply_ceiling(v, v < SX_I8_PATH_AVX2 ? v : SX_I8_PATH_AVX2, SX_I8_PATH_PORTABLE);
    v = SX_I8_PATH_PORTABLE;
#if SX_I8_X86
    if (sx_i8_vnni_supported()) v = SX_I8_PATH_VNNI;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v = SX_I8_PATH_AVX2;
#endif
    const char *force = getenv("SEXTANT_I8_PATH");
    if (force && strcmp(force, "avx2") == 0 && v > SX_I8_PATH_AVX2) v = SX_I8_PATH_AVX2;
    if (force && strcmp(force, "portable") == 0) v = SX_I8_PATH_PORTABLE;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return sx_apply_ceiling(v, v < SX_I8_PATH_AVX2 ? v : SX_I8_PATH_AVX2, SX_I8_PATH_PORTABLE);
}

// ---------------------------------------------------------------------------------------------
// Portable path

static void sx_gemm_i8_scalar(size_t m, size_t n, size_t kb, const sx_i8_acts *xa, const uint8_t *pw,
                              float *y, size_t ldy, int accumulate) {
    size_t panels = (n + SX_I8_NR - 1) / SX_I8_NR;
    for (size_t i = 0; i < m; i++) {
        const int8_t *qi = xa->q + i * xa->kp;
        const float *si = xa->scale + i * kb;
        for (size_t p = 0; p < panels; p++) {
            float acc[SX_I8_NR] = {0};
            for (size_t b = 0; b < kb; b++) {
                const uint8_t *blk = pw + (p * kb + b) * SX_I8_BLOCK_BYTES;
                const float *sw = (const float *)(blk + 1024);
                for (size_t j = 0; j < SX_I8_NR; j++) {
                    int32_t sum = 0;
                    for (size_t t = 0; t < SX_I8_QB; t++)
                        sum += (int32_t)qi[b * SX_I8_QB + t] * (int32_t)(int8_t)blk[(t / 4) * 128 + 4 * j + t % 4];
                    acc[j] = fmaf((float)sum, sw[j] * si[b], acc[j]);
                }
            }
            size_t nn = sx_min(SX_I8_NR, n - p * SX_I8_NR);
            float *yi = y + i * ldy + p * SX_I8_NR;
            for (size_t j = 0; j < nn; j++) yi[j] = accumulate ? yi[j] + acc[j] : acc[j];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX512_VNNI path

#if SX_I8_X86
#define SX_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

static inline __attribute__((always_inline)) SX_VNNI_TARGET void
sx_i8_tile_vnni(const int mr, size_t kb, const uint8_t *xq, size_t ldq, const float *xs,
                const uint8_t *panel, float *c, size_t ldc, int load_c, __mmask16 m0, __mmask16 m1) {
    __m512 acc[SX_I8_VNNI_MR][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        // The output tile is read back at the end (bias or earlier sums): fetch it while computing.
        __builtin_prefetch(c + r * ldc, 1, 3);        // for writing (prefetchw)
        __builtin_prefetch(c + r * ldc + 16, 1, 3);
    }
    for (size_t b = 0; b < kb; b++) {
        const uint8_t *blk = panel + b * SX_I8_BLOCK_BYTES;
        __m512i nc0 = _mm512_loadu_si512((const void *)(blk + 1152));
        __m512i nc1 = _mm512_loadu_si512((const void *)(blk + 1216));
        __m512i ia[SX_I8_VNNI_MR][2];
        for (int r = 0; r < mr; r++) { ia[r][0] = nc0; ia[r][1] = nc1; }
        const uint8_t *xb = xq + b * SX_I8_QB;
        for (int t = 0; t < 8; t++) {
            __m512i w0 = _mm512_loadu_si512((const void *)(blk + t * 128));
            __m512i w1 = _mm512_loadu_si512((const void *)(blk + t * 128 + 64));
            for (int r = 0; r < mr; r++) {
                int32_t quad;
                memcpy(&quad, xb + r * ldq + 4 * t, 4);
                __m512i a = _mm512_set1_epi32(quad);
                ia[r][0] = _mm512_dpbusd_epi32(ia[r][0], a, w0);
                ia[r][1] = _mm512_dpbusd_epi32(ia[r][1], a, w1);
            }
        }
        __m512 s0 = _mm512_loadu_ps((const float *)(blk + 1024));
        __m512 s1 = _mm512_loadu_ps((const float *)(blk + 1088));
        for (int r = 0; r < mr; r++) {
            __m512 sx = _mm512_set1_ps(xs[r * kb + b]);
            acc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][0]), _mm512_mul_ps(s0, sx), acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][1]), _mm512_mul_ps(s1, sx), acc[r][1]);
        }
    }
    // Plain loads and stores for whole tiles (masked ones are much slower on Zen 4).
    int whole = m0 == 0xffff && m1 == 0xffff;
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (whole) {
            if (load_c) {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + 16));
            }
            _mm512_storeu_ps(cr, v0);
            _mm512_storeu_ps(cr + 16, v1);
            continue;
        }
        if (load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

typedef void (*sx_i8_vnni_fn)(size_t, const uint8_t *, size_t, const float *, const uint8_t *, float *, size_t,
                              int, __mmask16, __mmask16);
#define SX_I8_VNNI_FN(MR)                                                                          \
    static SX_VNNI_TARGET __attribute__((noinline)) void sx_i8_tile_vnni_##MR(                   \
        size_t kb, const uint8_t *xq, size_t ldq, const float *xs, const uint8_t *panel, float *c, \
        size_t ldc, int load_c, __mmask16 m0, __mmask16 m1) {                                     \
        sx_i8_tile_vnni(MR, kb, xq, ldq, xs, panel, c, ldc, load_c, m0, m1);                      \
    }
SX_I8_VNNI_FN(1)
SX_I8_VNNI_FN(2)
SX_I8_VNNI_FN(3)
SX_I8_VNNI_FN(4)
SX_I8_VNNI_FN(5)
SX_I8_VNNI_FN(6)
static const sx_i8_vnni_fn sx_i8_vnni_tiles[SX_I8_VNNI_MR + 1] = {
    0, sx_i8_tile_vnni_1, sx_i8_tile_vnni_2, sx_i8_tile_vnni_3, sx_i8_tile_vnni_4, sx_i8_tile_vnni_5,
    sx_i8_tile_vnni_6,
};

static void sx_gemm_i8_vnni(size_t m, size_t n, size_t kb, const sx_i8_acts *xa, const uint8_t *pw,
                            float *y, size_t ldy, int accumulate) {
    size_t panels = (n + SX_I8_NR - 1) / SX_I8_NR;
    // Blocks of rows, each against every panel: the block's quantized x and its rows of y stay
    // in L2 while the weights stream past.
    for (size_t ic = 0; ic < m; ic += SX_I8_MC) {
        size_t mb = sx_min(SX_I8_MC, m - ic);
        for (size_t p = 0; p < panels; p++) {
            size_t nn = sx_min(SX_I8_NR, n - p * SX_I8_NR);
            __mmask16 m0 = (__mmask16)(nn >= 16 ? 0xffffu : ((1u << nn) - 1));
            __mmask16 m1 = (__mmask16)(nn >= 32 ? 0xffffu : nn > 16 ? ((1u << (nn - 16)) - 1) : 0);
            const uint8_t *panel = pw + p * kb * SX_I8_BLOCK_BYTES;
            for (size_t i = ic; i < ic + mb; i += SX_I8_VNNI_MR) {
                size_t mr = sx_min(SX_I8_VNNI_MR, ic + mb - i);
                sx_i8_vnni_tiles[mr](kb, (const uint8_t *)xa->q + i * xa->kp, xa->kp, xa->scale + i * kb, panel,
                                     y + i * ldy + p * SX_I8_NR, ldy, accumulate, m0, m1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2 path

#define SX_I8_AVX2_TARGET __attribute__((target("avx2,fma")))

// mr rows × 8 columns (columns 8h..8h+7 of the panel).
static inline __attribute__((always_inline)) SX_I8_AVX2_TARGET void
sx_i8_tile_avx2(const int mr, size_t kb, const int8_t *xq, const int8_t *xm, size_t ldq, const float *xs,
                const uint8_t *panel, int h, float *c, size_t ldc, int load_c, size_t nn) {
    __m256 acc[SX_I8_AVX2_MR];
    for (int r = 0; r < mr; r++) {
        acc[r] = _mm256_setzero_ps();
        __builtin_prefetch(c + r * ldc, 1, 3);
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t b = 0; b < kb; b++) {
        const uint8_t *blk = panel + b * SX_I8_BLOCK_BYTES;
        __m256i ia[SX_I8_AVX2_MR];
        for (int r = 0; r < mr; r++) ia[r] = _mm256_setzero_si256();
        size_t xo = b * SX_I8_QB;
        for (int t = 0; t < 8; t++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(blk + t * 128 + 32 * h));
            for (int r = 0; r < mr; r++) {
                int32_t quad, mquad;
                memcpy(&quad, xq + r * ldq + xo + 4 * t, 4);
                memcpy(&mquad, xm + r * ldq + xo + 4 * t, 4);
                __m256i sw = _mm256_sign_epi8(w, _mm256_set1_epi32(quad));
                __m256i p16 = _mm256_maddubs_epi16(_mm256_set1_epi32(mquad), sw);
                ia[r] = _mm256_add_epi32(ia[r], _mm256_madd_epi16(p16, ones));
            }
        }
        __m256 s = _mm256_loadu_ps((const float *)(blk + 1024) + 8 * h);
        for (int r = 0; r < mr; r++) {
            __m256 sx = _mm256_set1_ps(xs[r * kb + b]);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r]), _mm256_mul_ps(s, sx), acc[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        if (nn >= 8) {
            __m256 v = acc[r];
            if (load_c) v = _mm256_add_ps(v, _mm256_loadu_ps(cr));
            _mm256_storeu_ps(cr, v);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[r]);
            for (size_t j = 0; j < nn; j++) cr[j] = load_c ? cr[j] + tmp[j] : tmp[j];
        }
    }
}

typedef void (*sx_i8_avx2_fn)(size_t, const int8_t *, const int8_t *, size_t, const float *, const uint8_t *, int,
                              float *, size_t, int, size_t);
#define SX_I8_AVX2_FN(MR)                                                                          \
    static SX_I8_AVX2_TARGET __attribute__((noinline)) void sx_i8_tile_avx2_##MR(                \
        size_t kb, const int8_t *xq, const int8_t *xm, size_t ldq, const float *xs, const uint8_t *panel, \
        int h, float *c, size_t ldc, int load_c, size_t nn) {                                    \
        sx_i8_tile_avx2(MR, kb, xq, xm, ldq, xs, panel, h, c, ldc, load_c, nn);                   \
    }
SX_I8_AVX2_FN(1)
SX_I8_AVX2_FN(2)
SX_I8_AVX2_FN(3)
SX_I8_AVX2_FN(4)
static const sx_i8_avx2_fn sx_i8_avx2_tiles[SX_I8_AVX2_MR + 1] = {
    0, sx_i8_tile_avx2_1, sx_i8_tile_avx2_2, sx_i8_tile_avx2_3, sx_i8_tile_avx2_4,
};

static void sx_gemm_i8_avx2(size_t m, size_t n, size_t kb, const sx_i8_acts *xa, const uint8_t *pw,
                            float *y, size_t ldy, int accumulate) {
    size_t panels = (n + SX_I8_NR - 1) / SX_I8_NR;
    for (size_t ic = 0; ic < m; ic += SX_I8_MC) {
        size_t mb = sx_min(SX_I8_MC, m - ic);
        for (size_t p = 0; p < panels; p++) {
            size_t nn = sx_min(SX_I8_NR, n - p * SX_I8_NR);
            const uint8_t *panel = pw + p * kb * SX_I8_BLOCK_BYTES;
            for (int h = 0; h < 4 && (size_t)(8 * h) < nn; h++) {
                size_t hn = sx_min(8, nn - 8 * h);
                for (size_t i = ic; i < ic + mb; i += SX_I8_AVX2_MR) {
                    size_t mr = sx_min(SX_I8_AVX2_MR, ic + mb - i);
                    sx_i8_avx2_tiles[mr](kb, xa->q + i * xa->kp, xa->mag + i * xa->kp, xa->kp, xa->scale + i * kb, panel, h,
                                         y + i * ldy + p * SX_I8_NR + 8 * h, ldy, accumulate, hn);
                }
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------

void sx_gemm_i8_path(int path, size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                     float *y, size_t ldy, int accumulate) {
    if (sx_gemm_trivial(m, n, k, y, ldy, accumulate)) return;
    if (path > sx_i8_path()) path = sx_i8_path();
    sx_i8_acts xa;
    xa.kb = sx_i8_blocks(k);
    xa.kp = xa.kb * SX_I8_QB;
    int avx2 = path == SX_I8_PATH_AVX2, vnni = path == SX_I8_PATH_VNNI;
    // One allocation: q, then |q| (AVX2), then the scales.
    size_t qbytes = m * xa.kp, mbytes = avx2 ? qbytes : 0;
    size_t sofs = (qbytes + mbytes + 63) & ~(size_t)63;
    uint8_t *buf = (uint8_t *)malloc(sofs + m * xa.kb * sizeof(float));
    if (!buf) abort();
    xa.q = (int8_t *)buf;
    xa.mag = avx2 ? (int8_t *)buf + qbytes : NULL;
    xa.scale = (float *)(buf + sofs);
    for (size_t i = 0; i < m; i++) {
#if SX_I8_X86
        if (vnni) {
            sx_i8_quantize_row_avx512(x + i * ldx, k, xa.kb, xa.q + i * xa.kp, xa.scale + i * xa.kb);
            continue;
        }
        if (avx2) {
            sx_i8_quantize_row_avx2(x + i * ldx, k, xa.kb, xa.q + i * xa.kp, xa.mag + i * xa.kp, xa.scale + i * xa.kb);
            continue;
        }
#endif
        sx_i8_quantize_row(x + i * ldx, k, xa.kb, xa.q + i * xa.kp, xa.scale + i * xa.kb);
    }
    const uint8_t *pw = (const uint8_t *)packed_w;
#if SX_I8_X86
    if (vnni) sx_gemm_i8_vnni(m, n, xa.kb, &xa, pw, y, ldy, accumulate);
    else if (avx2) sx_gemm_i8_avx2(m, n, xa.kb, &xa, pw, y, ldy, accumulate);
    else
#endif
        sx_gemm_i8_scalar(m, n, xa.kb, &xa, pw, y, ldy, accumulate);
    (void)avx2;
    (void)vnni;
    free(buf);
}

void sx_gemm_i8(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                float *y, size_t ldy, int accumulate) {
    sx_gemm_i8_path(sx_i8_path(), m, n, k, x, ldx, packed_w, y, ldy, accumulate);
}
