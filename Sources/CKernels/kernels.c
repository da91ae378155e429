// Elementwise and reduction loops of the inference engine and the vector index, in C so the
// compiler vectorizes them. Each is compiled three times (x86-64-v4, x86-64-v3 and the baseline)
// and dispatched on sx_vector_level(). The target is built with -ffp-contract=off and no
// -ffast-math, and every reduction keeps a fixed set of 16 partial sums, so the compiler may
// change the vector width but never the order or rounding of an operation: the three builds give
// bit-identical results.
#include "CKernels.h"
#include "cpu.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int sx_ceiling = -1;   // sx_cpu_ceiling: -1 until first read

#define SX_BODY static inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__clang__)
#define SX_DISPATCH_VOID(ret, name, params, args)                                                  \
    __attribute__((target("arch=x86-64-v4"))) static void name##_v4 params { name##_body args; }  \
    __attribute__((target("arch=x86-64-v3"))) static void name##_v3 params { name##_body args; }  \
    static void name##_v1 params { name##_body args; }                                             \
    void name params {                                                                             \
        int level = sx_vector_level();                                                             \
        if (level >= 4) name##_v4 args;                                                            \
        else if (level == 3) name##_v3 args;                                                       \
        else name##_v1 args;                                                                       \
    }
#define SX_DISPATCH_VALUE(ret, name, params, args)                                                 \
    __attribute__((target("arch=x86-64-v4"))) static ret name##_v4 params { return name##_body args; } \
    __attribute__((target("arch=x86-64-v3"))) static ret name##_v3 params { return name##_body args; } \
    static ret name##_v1 params { return name##_body args; }                                       \
    ret name params {                                                                              \
        int level = sx_vector_level();                                                             \
        return level >= 4 ? name##_v4 args : level == 3 ? name##_v3 args : name##_v1 args;         \
    }
#else
#define SX_DISPATCH_VOID(ret, name, params, args) void name params { name##_body args; }
#define SX_DISPATCH_VALUE(ret, name, params, args) ret name params { return name##_body args; }
#endif
#define SX_INLINE static inline __attribute__((always_inline))
// Reductions keep 16 partial results so that they vectorize without -ffast-math.
#define SX_LANES 16

// exp(x) by range reduction x = n ln2 + r, |r| <= ln2/2, and a degree-6 polynomial for e^r.
SX_INLINE float sx_expf1(float x) {
    x = fminf(fmaxf(x, -87.3f), 88.3f);
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;          // ln2 high part
    r = r - n * -2.12194440e-4f;             // ln2 low part
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// erf(x) as x * P(x^2) / Q(x^2) on [-4, 4] (a minimax rational fit; erf is +-1 in f32 beyond).
SX_INLINE float sx_erff1(float x) {
    x = fminf(fmaxf(x, -4.0f), 4.0f);
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}

SX_BODY void sx_erf_body(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = sx_erff1(x[i]);
}
SX_DISPATCH_VOID(void, sx_erf, (const float *x, float *y, size_t n), (x, y, n))

SX_BODY void sx_exp_body(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = sx_expf1(x[i]);
}
SX_DISPATCH_VOID(void, sx_exp, (const float *x, float *y, size_t n), (x, y, n))

SX_BODY void sx_add_bias_rows_body(float *y, size_t rows, size_t cols, size_t ld, const float *bias) {
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * ld;
        for (size_t c = 0; c < cols; c++) row[c] += bias[c];
    }
}
SX_DISPATCH_VOID(void, sx_add_bias_rows, (float *y, size_t rows, size_t cols, size_t ld, const float *bias), (y, rows, cols, ld, bias))

// Sum and sum of squared deviations of a row, in double, with lane-wise partial sums.
SX_INLINE double sx_row_sum(const float *row, size_t cols) {
    double lanes[SX_LANES] = {0};
    size_t c = 0;
    for (; c + SX_LANES <= cols; c += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) lanes[l] += row[c + l];
    double s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; c < cols; c++) s += row[c];
    return s;
}

SX_INLINE double sx_row_sq_dev(const float *row, size_t cols, float mean) {
    double lanes[SX_LANES] = {0};
    size_t c = 0;
    for (; c + SX_LANES <= cols; c += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) {
            double d = (double)row[c + l] - mean;
            lanes[l] += d * d;
        }
    double s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; c < cols; c++) {
        double d = (double)row[c] - mean;
        s += d * d;
    }
    return s;
}

void sx_fill_rows(float *y, size_t rows, size_t cols, size_t ld, const float *values) {
    for (size_t r = 0; r < rows; r++) memcpy(y + r * ld, values, cols * sizeof(float));
}

SX_BODY void sx_add_layer_norm_body(float *x, const float *residual, size_t rows, size_t cols,
                                 const float *gamma, const float *beta, float eps) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        if (residual) {
            const float *res = residual + r * cols;
            for (size_t c = 0; c < cols; c++) row[c] += res[c];
        }
        float mean = (float)(sx_row_sum(row, cols) / (double)cols);
        double var = sx_row_sq_dev(row, cols, mean);
        float inv = (float)(1.0 / sqrt(var / (double)cols + (double)eps));
        for (size_t c = 0; c < cols; c++) row[c] = (row[c] - mean) * inv * gamma[c] + beta[c];
    }
}
SX_DISPATCH_VOID(void, sx_add_layer_norm, (float *x, const float *residual, size_t rows, size_t cols,
                                 const float *gamma, const float *beta, float eps), (x, residual, rows, cols, gamma, beta, eps))

SX_BODY void sx_rms_norm_body(float *x, size_t rows, size_t cols, const float *weight, float eps) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        double ss = sx_row_sq_dev(row, cols, 0.0f);
        float inv = (float)(1.0 / sqrt(ss / (double)cols + (double)eps));
        if (weight) {
            for (size_t c = 0; c < cols; c++) row[c] = row[c] * inv * weight[c];
        } else {
            for (size_t c = 0; c < cols; c++) row[c] = row[c] * inv;
        }
    }
}
SX_DISPATCH_VOID(void, sx_rms_norm, (float *x, size_t rows, size_t cols, const float *weight, float eps), (x, rows, cols, weight, eps))

SX_BODY void sx_gelu_erf_body(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + sx_erff1(v * 0.70710678118654752f));
    }
}
SX_DISPATCH_VOID(void, sx_gelu_erf, (float *x, size_t n), (x, n))

SX_BODY void sx_silu_body(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = v / (1.0f + sx_expf1(-v));
    }
}
SX_DISPATCH_VOID(void, sx_silu, (float *x, size_t n), (x, n))

SX_BODY void sx_softmax_rows_body(float *x, size_t rows, size_t cols, size_t ld, float scale) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * ld;
        float mlanes[SX_LANES];
        for (int l = 0; l < SX_LANES; l++) mlanes[l] = -INFINITY;
        size_t c = 0;
        for (; c + SX_LANES <= cols; c += SX_LANES)
            for (int l = 0; l < SX_LANES; l++) mlanes[l] = row[c + l] > mlanes[l] ? row[c + l] : mlanes[l];
        float m = -INFINITY;
        for (int l = 0; l < SX_LANES; l++) m = mlanes[l] > m ? mlanes[l] : m;
        for (; c < cols; c++) m = row[c] > m ? row[c] : m;

        float ms = m * scale;
        for (c = 0; c < cols; c++) row[c] = sx_expf1(row[c] * scale - ms);

        float slanes[SX_LANES] = {0};
        for (c = 0; c + SX_LANES <= cols; c += SX_LANES)
            for (int l = 0; l < SX_LANES; l++) slanes[l] += row[c + l];
        float sum = 0;
        for (int l = 0; l < SX_LANES; l++) sum += slanes[l];
        for (; c < cols; c++) sum += row[c];

        float inv = 1.0f / sum;
        for (c = 0; c < cols; c++) row[c] *= inv;
    }
}
SX_DISPATCH_VOID(void, sx_softmax_rows, (float *x, size_t rows, size_t cols, size_t ld, float scale), (x, rows, cols, ld, scale))

SX_BODY void sx_softmax_causal_body(float *x, size_t rows, size_t cols, size_t ld, float scale, size_t visible) {
    for (size_t r = 0; r < rows; r++) {
        size_t n = visible + r < cols ? visible + r : cols;
        float *row = x + r * ld;
        sx_softmax_rows_body(row, 1, n, ld, scale);
        for (size_t c = n; c < cols; c++) row[c] = 0.0f;
    }
}
SX_DISPATCH_VOID(void, sx_softmax_causal, (float *x, size_t rows, size_t cols, size_t ld, float scale, size_t visible), (x, rows, cols, ld, scale, visible))

SX_BODY void sx_rope_body(float *x, size_t rows, size_t heads, size_t head_dim, size_t ld,
                       const float *cos, const float *sin) {
    size_t half = head_dim / 2;
    for (size_t r = 0; r < rows; r++) {
        const float *c = cos + r * half, *s = sin + r * half;
        for (size_t h = 0; h < heads; h++) {
            float *a = x + r * ld + h * head_dim, *b = a + half;
            for (size_t i = 0; i < half; i++) {
                float x1 = a[i], x2 = b[i];
                a[i] = x1 * c[i] - x2 * s[i];
                b[i] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}
SX_DISPATCH_VOID(void, sx_rope, (float *x, size_t rows, size_t heads, size_t head_dim, size_t ld,
                       const float *cos, const float *sin), (x, rows, heads, head_dim, ld, cos, sin))

SX_BODY void sx_swiglu_body(float *x, size_t rows, size_t inter) {
    for (size_t r = 0; r < rows; r++) {
        float *g = x + r * 2 * inter, *u = g + inter;
        for (size_t i = 0; i < inter; i++) g[i] = g[i] / (1.0f + sx_expf1(-g[i])) * u[i];
    }
}
SX_DISPATCH_VOID(void, sx_swiglu, (float *x, size_t rows, size_t inter), (x, rows, inter))

SX_BODY void sx_f16_to_f32_body(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t h = src[i];
        uint32_t sign = (h & 0x8000u) << 16;
        uint32_t exp = (h >> 10) & 0x1f;
        uint32_t man = h & 0x3ffu;
        uint32_t bits;
        if (exp == 0x1f) {
            bits = sign | 0x7f800000u | (man << 13);          // inf / nan
        } else if (exp != 0) {
            bits = sign | ((exp + 112) << 23) | (man << 13);   // normal
        } else {
            // zero or subnormal: value = man * 2^-24
            float v = (float)man * 5.9604644775390625e-8f;
            uint32_t vb;
            memcpy(&vb, &v, sizeof vb);
            bits = sign | vb;
        }
        memcpy(dst + i, &bits, sizeof bits);
    }
}
SX_DISPATCH_VOID(void, sx_f16_to_f32, (const uint16_t *src, float *dst, size_t n), (src, dst, n))

SX_BODY void sx_bf16_to_f32_body(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        memcpy(dst + i, &bits, sizeof bits);
    }
}
SX_DISPATCH_VOID(void, sx_bf16_to_f32, (const uint16_t *src, float *dst, size_t n), (src, dst, n))

SX_BODY double sx_sum_squares_body(const float *x, size_t n) {
    return sx_row_sq_dev(x, n, 0.0f);
}
SX_DISPATCH_VALUE(double, sx_sum_squares, (const float *x, size_t n), (x, n))

SX_BODY void sx_scale_body(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
SX_DISPATCH_VOID(void, sx_scale, (float *x, size_t n, float s), (x, n, s))

// 16 partial sums of x[t] · w[t] by fma in t order (lane t mod 16), then added pairwise in a
// fixed tree: lanes l and l + 8, then l and l + 4, l + 2, l + 1.
SX_INLINE float sx_dot_fma16(const float *x, const float *w, size_t k) {
    float lanes[SX_LANES] = {0};
    size_t t = 0;
    for (; t + SX_LANES <= k; t += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) lanes[l] = fmaf(x[t + l], w[t + l], lanes[l]);
    for (int l = 0; t + l < k; l++) lanes[l] = fmaf(x[t + l], w[t + l], lanes[l]);
    for (int half = SX_LANES / 2; half >= 1; half /= 2)
        for (int l = 0; l < half; l++) lanes[l] = lanes[l] + lanes[l + half];
    return lanes[0];
}

SX_BODY void sx_matvec_f32_body(const float *x, const float *w, size_t ldw, size_t n, size_t k, float *y) {
    for (size_t j = 0; j < n; j++) y[j] = sx_dot_fma16(x, w + j * ldw, k);
}
SX_DISPATCH_VOID(void, sx_matvec_f32, (const float *x, const float *w, size_t ldw, size_t n, size_t k, float *y),
                 (x, w, ldw, n, k, y))

SX_BODY void sx_vecmat_f32_body(const float *p, const float *e, size_t lde, size_t n, size_t k, float *y) {
    for (size_t c = 0; c < k; c++) y[c] = 0.0f;
    for (size_t j = 0; j < n; j++) {
        const float *row = e + j * lde;
        float pj = p[j];
        for (size_t c = 0; c < k; c++) y[c] = fmaf(pj, row[c], y[c]);
    }
}
SX_DISPATCH_VOID(void, sx_vecmat_f32, (const float *p, const float *e, size_t lde, size_t n, size_t k, float *y),
                 (p, e, lde, n, k, y))

// ---- Vector-index kernels -------------------------------------------------------------------

SX_BODY float sx_dot_f32_body(const float *a, const float *b, size_t n) {
    float lanes[SX_LANES] = {0};
    size_t i = 0;
    for (; i + SX_LANES <= n; i += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) lanes[l] += a[i + l] * b[i + l];
    float s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
SX_DISPATCH_VALUE(float, sx_dot_f32, (const float *a, const float *b, size_t n), (a, b, n))

SX_BODY float sx_l2sq_f32_body(const float *a, const float *b, size_t n) {
    float lanes[SX_LANES] = {0};
    size_t i = 0;
    for (; i + SX_LANES <= n; i += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) {
            float d = a[i + l] - b[i + l];
            lanes[l] += d * d;
        }
    float s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}
SX_DISPATCH_VALUE(float, sx_l2sq_f32, (const float *a, const float *b, size_t n), (a, b, n))

SX_INLINE float sx_dot_f32_i8_1(const float *a, const int8_t *b, size_t n) {
    float lanes[SX_LANES] = {0};
    size_t i = 0;
    for (; i + SX_LANES <= n; i += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) lanes[l] += a[i + l] * (float)b[i + l];
    float s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; i < n; i++) s += a[i] * (float)b[i];
    return s;
}

SX_BODY float sx_dot_f32_i8_body(const float *a, const int8_t *b, size_t n) {
    return sx_dot_f32_i8_1(a, b, n);
}
SX_DISPATCH_VALUE(float, sx_dot_f32_i8, (const float *a, const int8_t *b, size_t n), (a, b, n))

SX_BODY void sx_dot_f32_i8_many_body(const float *a, const int8_t *codes, size_t stride,
                                  const uint32_t *ids, size_t count, size_t n, float *out) {
    if (count > 0) {
        const char *first = (const char *)(codes + (size_t)ids[0] * stride);
        for (size_t off = 0; off < n; off += 64) __builtin_prefetch(first + off);
    }
    for (size_t j = 0; j < count; j++) {
        if (j + 1 < count) {
            const char *next = (const char *)(codes + (size_t)ids[j + 1] * stride);
            for (size_t off = 0; off < n; off += 64) __builtin_prefetch(next + off);
        }
        out[j] = sx_dot_f32_i8_1(a, codes + (size_t)ids[j] * stride, n);
    }
}
SX_DISPATCH_VOID(void, sx_dot_f32_i8_many, (const float *a, const int8_t *codes, size_t stride,
                                  const uint32_t *ids, size_t count, size_t n, float *out), (a, codes, stride, ids, count, n, out))

static uint32_t sx_crc32c_table[256];
static int sx_crc32c_table_ready = 0;

static uint32_t sx_crc32c_soft(uint32_t crc, const unsigned char *p, size_t len) {
    if (!__atomic_load_n(&sx_crc32c_table_ready, __ATOMIC_ACQUIRE)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            sx_crc32c_table[i] = c;
        }
        __atomic_store_n(&sx_crc32c_table_ready, 1, __ATOMIC_RELEASE);
    }
    for (size_t i = 0; i < len; i++) crc = sx_crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t sx_crc32c_hw(uint32_t crc, const unsigned char *p, size_t len) {
    uint64_t c = crc;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    for (; i < len; i++) c32 = __builtin_ia32_crc32qi(c32, p[i]);
    return c32;
}
#endif

uint32_t sx_crc32c(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~sx_crc32c_hw(crc, p, len);
#endif
    return ~sx_crc32c_soft(crc, p, len);
}

SX_BODY float sx_sq_prepare_body(const float *x, const float *mid, const float *scale, float *out, size_t n) {
    float lanes[SX_LANES] = {0};
    size_t i = 0;
    for (; i + SX_LANES <= n; i += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) {
            float v = x[i + l];
            lanes[l] += v * mid[i + l];
            out[i + l] = v * scale[i + l];
        }
    float s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; i < n; i++) {
        float v = x[i];
        s += v * mid[i];
        out[i] = v * scale[i];
    }
    return s;
}
SX_DISPATCH_VALUE(float, sx_sq_prepare, (const float *x, const float *mid, const float *scale, float *out, size_t n), (x, mid, scale, out, n))

SX_BODY float sx_sq_decode_prepare_body(const int8_t *code, const float *mid, const float *scale, float *out, size_t n) {
    float lanes[SX_LANES] = {0};
    size_t i = 0;
    for (; i + SX_LANES <= n; i += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) {
            float v = mid[i + l] + scale[i + l] * (float)code[i + l];
            lanes[l] += v * mid[i + l];
            out[i + l] = v * scale[i + l];
        }
    float s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; i < n; i++) {
        float v = mid[i] + scale[i] * (float)code[i];
        s += v * mid[i];
        out[i] = v * scale[i];
    }
    return s;
}
SX_DISPATCH_VALUE(float, sx_sq_decode_prepare, (const int8_t *code, const float *mid, const float *scale, float *out, size_t n), (code, mid, scale, out, n))

int sx_vector_level(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
#if defined(__x86_64__)
        v = 1;
        // The whole feature levels the v3 and v4 builds may use (LZCNT, MOVBE, F16C... too).
        if (__builtin_cpu_supports("x86-64-v3")) v = 3;
        if (v == 3 && __builtin_cpu_supports("x86-64-v4")) v = 4;
#else
        v = 0;
#endif
        const char *force = getenv("SEXTANT_VECTOR_PATH");
        if (force && strcmp(force, "avx2") == 0 && v > 3) v = 3;
        if (force && strcmp(force, "portable") == 0 && v > 1) v = 1;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    int ceiling = sx_cpu_ceiling();
    if (ceiling == SX_CPU_AVX2 && v > 3) return 3;
    if (ceiling == SX_CPU_PORTABLE && v > 1) return 1;
    return v;
}

int sx_cpu_ceiling(void) {
    int v = __atomic_load_n(&sx_ceiling, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    v = SX_CPU_BEST;
    const char *force = getenv("SEXTANT_CPU_PATH");
    if (force && strcmp(force, "avx2") == 0) v = SX_CPU_AVX2;
    if (force && strcmp(force, "portable") == 0) v = SX_CPU_PORTABLE;
    int expected = -1;
    __atomic_compare_exchange_n(&sx_ceiling, &expected, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return __atomic_load_n(&sx_ceiling, __ATOMIC_RELAXED);
}

void sx_set_cpu_ceiling(int ceiling) {
    if (ceiling < SX_CPU_PORTABLE) ceiling = SX_CPU_PORTABLE;
    if (ceiling > SX_CPU_BEST) ceiling = SX_CPU_BEST;
    __atomic_store_n(&sx_ceiling, ceiling, __ATOMIC_RELAXED);
}
