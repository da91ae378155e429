// The numeric kernels of the inference engine and the vector index. Every kernel has an AVX-512,
// an AVX2 and a portable path, chosen at run time, and every path gives bit-identical results:
// the order and rounding of each operation is fixed by the kernel, not by the instruction set.
#ifndef SEXTANT_CKERNELS_H
#define SEXTANT_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

// ---- Paths -----------------------------------------------------------------------------------

#define SX_CPU_PORTABLE 0
#define SX_CPU_AVX2 1
#define SX_CPU_BEST 2
/// The highest path any kernel takes in this process: SX_CPU_BEST (what the CPU has), SX_CPU_AVX2
/// (AVX2 + FMA at most) or SX_CPU_PORTABLE. Starts from $SEXTANT_CPU_PATH (avx2|portable); the
/// per-kernel variables ($SEXTANT_F32_PATH, _BF16_PATH, _I8_PATH, _VECTOR_PATH) lower one family.
int sx_cpu_ceiling(void);
/// Changes the ceiling for the whole process (tests: one run checks every path).
void sx_set_cpu_ceiling(int ceiling);

// ---- Elementwise kernels -----------------------------------------------------------------------

/// y[r*ld + c] += bias[c] for every row r < rows and column c < cols.
void sx_add_bias_rows(float *y, size_t rows, size_t cols, size_t ld, const float *bias);

/// y[r*ld + c] = values[c] for every row r < rows and column c < cols.
void sx_fill_rows(float *y, size_t rows, size_t cols, size_t ld, const float *values);

/// x[r] = LayerNorm(x[r] + residual[r]) * gamma + beta over rows of `cols` floats.
/// `residual` may be NULL. Mean and variance are accumulated in double.
void sx_add_layer_norm(float *x, const float *residual, size_t rows, size_t cols,
                       const float *gamma, const float *beta, float eps);

/// x[r] = x[r] / rms(x[r]) * weight (RMSNorm), accumulated in double. `weight` may be NULL.
void sx_rms_norm(float *x, size_t rows, size_t cols, const float *weight, float eps);

/// In place: x = 0.5 * x * (1 + erf(x / sqrt(2))), the exact (erf) GELU.
void sx_gelu_erf(float *x, size_t n);

/// In place: x = x * sigmoid(x) (SiLU).
void sx_silu(float *x, size_t n);

/// In place, each of `rows` rows of `cols` floats at stride `ld`:
/// x = softmax(scale * x).
void sx_softmax_rows(float *x, size_t rows, size_t cols, size_t ld, float scale);

/// Causal softmax for a block of attention rows: row r attends to the first
/// min(cols, visible + r) keys (the rest are set to 0); x = softmax(scale * x) over those.
void sx_softmax_causal(float *x, size_t rows, size_t cols, size_t ld, float scale, size_t visible);

/// Rotary position embedding, rotate-half layout, in place on `rows` tokens of `heads` heads of
/// `head_dim` floats at row stride `ld`; `cos`/`sin` hold head_dim/2 values per row (token).
void sx_rope(float *x, size_t rows, size_t heads, size_t head_dim, size_t ld, const float *cos, const float *sin);

/// SwiGLU in place on rows of [gate | up] (2 * inter floats): gate = silu(gate) * up.
void sx_swiglu(float *x, size_t rows, size_t inter);

/// Vectorized single-precision erf and exp (max error a few ulp), exposed for tests.
void sx_erf(const float *x, float *y, size_t n);
void sx_exp(const float *x, float *y, size_t n);

/// y[j] = Σ_t x[t] · w[j·ldw + t] for j < n, t < k (an LM head on one hidden state): per j, 16
/// partial sums by fma in t order (lane t mod 16), then a fixed pairwise tree.
void sx_matvec_f32(const float *x, const float *w, size_t ldw, size_t n, size_t k, float *y);

/// y[c] = Σ_j p[j] · e[j·lde + c] for c < k, j < n, by fma in j order from zero (a soft token:
/// probabilities times the embedding matrix).
void sx_vecmat_f32(const float *p, const float *e, size_t lde, size_t n, size_t k, float *y);

/// Half-precision conversions to f32.
void sx_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void sx_bf16_to_f32(const uint16_t *src, float *dst, size_t n);

/// Sum of squares of `n` floats (in double) and in-place scaling, for L2 normalization.
double sx_sum_squares(const float *x, size_t n);
void sx_scale(float *x, size_t n, float s);

// Vector-index kernels (VectorIndex target): distances over f32 vectors and int8 codes.

/// Dot product and squared L2 distance of two f32 vectors of length n.
float sx_dot_f32(const float *a, const float *b, size_t n);
float sx_l2sq_f32(const float *a, const float *b, size_t n);

/// Dot product of an f32 vector with an int8 code: sum a[i] * (float)b[i].
float sx_dot_f32_i8(const float *a, const int8_t *b, size_t n);

/// out[j] = sx_dot_f32_i8(a, codes + ids[j] * stride, n) for j < count, prefetching ahead.
void sx_dot_f32_i8_many(const float *a, const int8_t *codes, size_t stride,
                        const uint32_t *ids, size_t count, size_t n, float *out);

/// Scalar-quantizer helpers: out[i] = x[i] * scale[i], returning sum x[i] * mid[i]; and the
/// same for the decoded code x[i] = mid[i] + scale[i] * code[i].
float sx_sq_prepare(const float *x, const float *mid, const float *scale, float *out, size_t n);
float sx_sq_decode_prepare(const int8_t *code, const float *mid, const float *scale, float *out, size_t n);

/// CRC-32C (Castagnoli) of `len` bytes, continuing from `crc` (start with 0).
uint32_t sx_crc32c(uint32_t crc, const void *data, size_t len);

/// The instruction-set level whose builds of the kernels above run here: 4 (x86-64-v4, AVX-512),
/// 3 (x86-64-v3, AVX2 + FMA), 1 (x86-64 baseline), 0 (not x86-64: the compiler's generic code);
/// lowered by the ceiling and $SEXTANT_VECTOR_PATH=avx2|portable.
int sx_vector_level(void);

// ---- Scalar math with fixed results ------------------------------------------------------------
// libm's exp, log, sin, cos and tanh pick FMA or SSE2 builds by CPU and may differ in the last
// bit; these are plain double arithmetic (no FMA, one order), so they give the same bits anywhere.
// Errors are a few ulp of a double: far below the f32 values made from them.

/// e^x.
double sx_exp_f64(double x);
/// Natural logarithm of x > 0.
double sx_log_f64(double x);
/// base^e for base > 0.
double sx_pow_f64(double base, double e);
/// sin and cos of x (exact range reduction for |x| < 1.6e6).
void sx_sincos_f64(double x, double *s, double *c);
/// tanh(x).
double sx_tanh_f64(double x);

// bf16 GEMM (gemm_bf16.c): y (+)= x · Wᵀ with W pre-packed to bf16 and f32 accumulation, with
// the arithmetic of AVX512_BF16's vdpbf16ps on every path (pairs of fused multiply-adds, odd k
// first, denormals flushed); bit-identical on every path.

/// 1 if the CPU and OS support the AVX512_BF16 fast path (AVX512F/BW/VL + AVX512_BF16, zmm state).
int sx_bf16_supported(void);

#define SX_BF16_PATH_PORTABLE 0
#define SX_BF16_PATH_AVX2 1
#define SX_BF16_PATH_AVX512 2
/// The path sx_gemm_bf16 takes on this machine: SX_BF16_PATH_AVX512 (AVX512_BF16), _AVX2 (AVX2 +
/// FMA, weights widened in registers) or _PORTABLE; $SEXTANT_BF16_PATH=avx2|portable lowers it.
int sx_bf16_path(void);

/// Bytes needed for sx_bf16_pack_weights of an n × k weight matrix (64-byte alignment recommended).
size_t sx_bf16_packed_size(size_t n, size_t k);

/// Packs W [n × k] (row-major f32, PyTorch Linear layout out_features × in_features) into bf16
/// (round to nearest even) panels of 32 output columns; see gemm_bf16.c for the layout.
void sx_bf16_pack_weights(const float *w, size_t n, size_t k, void *packed);

/// y[m × n] = x[m × k] · Wᵀ (accumulate = 0) or y += x · Wᵀ (accumulate = 1). x is f32 row-major
/// with row stride ldx, rounded to bf16 on the fly; y has row stride ldy; products are summed in
/// f32. Single-threaded; uses 36 KB of stack and no heap. Any m, n, k, ldx ≥ k, ldy ≥ n.
void sx_gemm_bf16(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                  float *y, size_t ldy, int accumulate);

/// The AVX2 path of sx_gemm_bf16, exposed for tests; returns -1 (and computes nothing) on a CPU
/// without AVX2 and FMA, else 0.
int sx_gemm_bf16_avx2(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                      float *y, size_t ldy, int accumulate);

/// The portable path of sx_gemm_bf16 (same arguments and results), exposed for tests.
void sx_gemm_bf16_portable(size_t m, size_t n, size_t k, const float *x, size_t ldx,
                           const void *packed_w, float *y, size_t ldy, int accumulate);


// f32 GEMM (gemm_f32.c): y (+)= x · Wᵀ with W packed once; bit-identical on every path.

#define SX_F32_PATH_PORTABLE 1
#define SX_F32_PATH_AVX2 2
#define SX_F32_PATH_AVX512 3
/// The path f32 products take on this machine: SX_F32_PATH_AVX512 (AVX512F), _AVX2 (AVX2 + FMA) or
/// _PORTABLE; $SEXTANT_F32_PATH=avx2|portable lowers it.
int sx_f32_path(void);

/// Bytes needed for sx_f32_pack_weights of an n × k weight matrix.
size_t sx_f32_packed_size(size_t n, size_t k);

/// Packs W [n × k] (row-major f32, out_features × in_features) into panels of 32 output columns.
void sx_f32_pack_weights(const float *w, size_t n, size_t k, float *packed);

/// Packs W [n × k] given with row stride ldw (W[j][t] = w[j·ldw + t]), as sx_f32_pack_weights;
/// for attention keys (scores = Q · Kᵀ).
void sx_f32_pack_rows(const float *w, size_t ldw, size_t n, size_t k, float *packed);

/// Packs W [n × k] given transposed with row stride ldv (W[j][t] = v[t·ldv + j]); for attention
/// values (context = P · V, so W = Vᵀ).
void sx_f32_pack_columns(const float *v, size_t ldv, size_t n, size_t k, float *packed);

/// y[m × n] = x[m × k] · Wᵀ (accumulate = 0) or y += x · Wᵀ (accumulate = 1), on the packed
/// weights. Each output's sum depends on k and the values only (not on m, the row's place or the
/// path). Single-threaded, no heap. Any m, n, k, ldx ≥ k, ldy ≥ n.
void sx_gemm_f32(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                 float *y, size_t ldy, int accumulate);

/// sx_gemm_f32 on a given path (for tests); a path the CPU lacks falls back to the next lower.
void sx_gemm_f32_path(int path, size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                      float *y, size_t ldy, int accumulate);

// int8 GEMM (gemm_i8.c): y (+)= x · Wᵀ with W and x quantized to int8 in blocks of 32 along k,
// each block rotated by the 32 × 32 Hadamard matrix first; bit-identical on every path.

#define SX_I8_PATH_PORTABLE 0
#define SX_I8_PATH_AVX2 1
#define SX_I8_PATH_VNNI 2
/// The path int8 products take on this machine: SX_I8_PATH_VNNI (AVX512_VNNI), _AVX2 (AVX2 + FMA)
/// or _PORTABLE; $SEXTANT_I8_PATH=avx2|portable lowers it.
int sx_i8_path(void);

/// Bytes needed for sx_i8_pack_weights of an n × k weight matrix.
size_t sx_i8_packed_size(size_t n, size_t k);

/// Rotates and quantizes W [n × k] (row-major f32, out_features × in_features) per output column
/// and block of 32 k values, into panels of 32 columns; see gemm_i8.c for the layout.
void sx_i8_pack_weights(const float *w, size_t n, size_t k, void *packed);

/// y[m × n] = x[m × k] · Wᵀ (accumulate = 0) or y += x · Wᵀ (accumulate = 1): x rotated and
/// quantized per row and block of 32, exact integer block sums, scaled and summed in f32. Each output depends on its row
/// of x and the weights only (not on m, the row's place, the column split or the path).
/// Single-threaded; allocates m · (k + k/32 · 4) bytes (twice the first term on the AVX2 path).
void sx_gemm_i8(size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                float *y, size_t ldy, int accumulate);

/// sx_gemm_i8 on a given path (for tests); a path the CPU lacks falls back to the next lower.
void sx_gemm_i8_path(int path, size_t m, size_t n, size_t k, const float *x, size_t ldx, const void *packed_w,
                     float *y, size_t ldy, int accumulate);
#endif
