#include "CKernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#define SX_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SX_CLONES
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

SX_CLONES void sx_erf(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = sx_erff1(x[i]);
}

SX_CLONES void sx_exp(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = sx_expf1(x[i]);
}

SX_CLONES void sx_add_bias_rows(float *y, size_t rows, size_t cols, size_t ld, const float *bias) {
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * ld;
        for (size_t c = 0; c < cols; c++) row[c] += bias[c];
    }
}

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

SX_CLONES void sx_add_layer_norm(float *x, const float *residual, size_t rows, size_t cols,
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

SX_CLONES void sx_rms_norm(float *x, size_t rows, size_t cols, const float *weight, float eps) {
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

SX_CLONES void sx_gelu_erf(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + sx_erff1(v * 0.70710678118654752f));
    }
}

SX_CLONES void sx_silu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = v / (1.0f + sx_expf1(-v));
    }
}

SX_CLONES void sx_softmax_rows(float *x, size_t rows, size_t cols, size_t ld, float scale) {
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

SX_CLONES void sx_softmax_causal(float *x, size_t rows, size_t cols, size_t ld, float scale, size_t visible) {
    for (size_t r = 0; r < rows; r++) {
        size_t n = visible + r < cols ? visible + r : cols;
        float *row = x + r * ld;
        sx_softmax_rows(row, 1, n, ld, scale);
        for (size_t c = n; c < cols; c++) row[c] = 0.0f;
    }
}

SX_CLONES void sx_rope(float *x, size_t rows, size_t heads, size_t head_dim, size_t ld,
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

SX_CLONES void sx_swiglu(float *x, size_t rows, size_t inter) {
    for (size_t r = 0; r < rows; r++) {
        float *g = x + r * 2 * inter, *u = g + inter;
        for (size_t i = 0; i < inter; i++) g[i] = g[i] / (1.0f + sx_expf1(-g[i])) * u[i];
    }
}

SX_CLONES void sx_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
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

SX_CLONES void sx_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        memcpy(dst + i, &bits, sizeof bits);
    }
}

SX_CLONES double sx_sum_squares(const float *x, size_t n) {
    return sx_row_sq_dev(x, n, 0.0f);
}

SX_CLONES void sx_scale(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

// ---- Vector-index kernels -------------------------------------------------------------------

SX_CLONES float sx_dot_f32(const float *a, const float *b, size_t n) {
    float lanes[SX_LANES] = {0};
    size_t i = 0;
    for (; i + SX_LANES <= n; i += SX_LANES)
        for (int l = 0; l < SX_LANES; l++) lanes[l] += a[i + l] * b[i + l];
    float s = 0;
    for (int l = 0; l < SX_LANES; l++) s += lanes[l];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

SX_CLONES float sx_l2sq_f32(const float *a, const float *b, size_t n) {
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

SX_CLONES float sx_dot_f32_i8(const float *a, const int8_t *b, size_t n) {
    return sx_dot_f32_i8_1(a, b, n);
}

SX_CLONES void sx_dot_f32_i8_many(const float *a, const int8_t *codes, size_t stride,
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

SX_CLONES float sx_sq_prepare(const float *x, const float *mid, const float *scale, float *out, size_t n) {
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

SX_CLONES float sx_sq_decode_prepare(const int8_t *code, const float *mid, const float *scale, float *out, size_t n) {
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

int sx_vector_level(void) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd")) return 4;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2")) return 3;
    return 1;
#else
    return 0;
#endif
}
