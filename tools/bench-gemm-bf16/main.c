// Correctness test and benchmark of sx_gemm_bf16 (Sources/CKernels/gemm_bf16.c).
//
//   tools/bench-gemm-bf16/build.sh && .build-gemm-bf16/bench-gemm-bf16 [check] [bench] [portable]
//
// check: random shapes (odd k, n and m tails, padded strides, several k blocks) against a double
//        precision reference; also exercises `accumulate` and verifies that nothing outside the
//        m × n window of y is written and nothing outside the m × k window of x is read.
// bench: GFLOP/s of sx_gemm_bf16 vs single-threaded OpenBLAS cblas_sgemm (x · Wᵀ) on the BERT
//        (all-MiniLM-L6-v2) shapes, best of several interleaved trials.
// portable: also run the correctness checks on the portable (non-AVX-512) path.
#include "CKernels.h"
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void openblas_set_num_threads(int);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);   // CPU time of this thread: robust to a shared, busy machine
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// xorshift64* — deterministic test data.
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}
static float rng_uniform(void) { return (float)((rng_next() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }
static size_t rng_below(size_t n) { return (size_t)(rng_next() % n); }

// Round to bf16 (nearest even) and back, as the kernel sees its inputs.
static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void *xalloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

typedef void (*gemm_fn)(size_t, size_t, size_t, const float *, size_t, const void *, float *, size_t, int);

typedef struct {
    double max_err_bf;    // max |y - ref(bf16 inputs)| / Σ|x·w|  (kernel bugs; f32 summation only)
    double max_err_f32;   // max |y - ref(f32 inputs)| / Σ|x·w|   (bf16 rounding of x and W)
    double max_rel_f32;   // max |y - ref| / |ref| over elements with |ref| ≥ rms(ref)
    double rel_rms;       // sqrt(Σ (y - ref)² / Σ ref²), relative RMS error of the whole product
    double min_cos;       // min over rows of cosine(y row, exact f32 ref row)
    double max_err_acc;   // accumulate = 1 vs y0 + (accumulate = 0), normalized
    int untouched_ok;     // y outside the window unchanged
    int finite_ok;        // no NaN (x outside its window is NaN-filled, so reading it shows up)
} check_result;

static check_result check_shape(gemm_fn gemm, size_t m, size_t n, size_t k, size_t ldx, size_t ldy) {
    check_result res = {0, 0, 0, 0, 1.0, 0, 1, 1};
    float *x = xalloc(sizeof(float) * (m * ldx + 1));
    float *w = xalloc(sizeof(float) * n * k);
    float *y = xalloc(sizeof(float) * (m + 1) * ldy);
    float *y0 = xalloc(sizeof(float) * (m + 1) * ldy);
    float *yacc = xalloc(sizeof(float) * (m + 1) * ldy);
    double *ref_bf = xalloc(sizeof(double) * m * n);
    double *ref = xalloc(sizeof(double) * m * n);
    double *mag = xalloc(sizeof(double) * m * n);
    void *packed = xalloc(sx_bf16_packed_size(n, k));

    for (size_t i = 0; i < m * ldx + 1; i++) x[i] = NAN;        // padding must never be read
    for (size_t i = 0; i < m; i++)
        for (size_t p = 0; p < k; p++) x[i * ldx + p] = rng_uniform();
    for (size_t i = 0; i < n * k; i++) w[i] = rng_uniform();
    sx_bf16_pack_weights(w, n, k, packed);

    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0, sb = 0, a = 0;
            for (size_t p = 0; p < k; p++) {
                double xv = x[i * ldx + p], wv = w[j * k + p];
                s += xv * wv;
                sb += (double)bf16_round((float)xv) * (double)bf16_round((float)wv);
                a += fabs(xv * wv);
            }
            ref[i * n + j] = s;
            ref_bf[i * n + j] = sb;
            mag[i * n + j] = a > 0 ? a : 1;
        }

    // accumulate = 0 over a sentinel-filled y (one extra row below to catch row overruns).
    const float sentinel = -12345.5f;
    for (size_t i = 0; i < (m + 1) * ldy; i++) y[i] = sentinel;
    gemm(m, n, k, x, ldx, packed, y, ldy, 0);
    for (size_t i = 0; i < m + 1; i++)
        for (size_t j = 0; j < ldy; j++) {
            float v = y[i * ldy + j];
            if (i < m && j < n) {
                if (!isfinite(v)) res.finite_ok = 0;
            } else if (v != sentinel) {
                res.untouched_ok = 0;
            }
        }

    double rms = 0;
    for (size_t i = 0; i < m * n; i++) rms += ref[i] * ref[i];
    double err2 = 0;
    rms = sqrt(rms / (double)(m * n));
    for (size_t i = 0; i < m; i++) {
        double dot = 0, ny = 0, nr = 0;
        for (size_t j = 0; j < n; j++) {
            double v = y[i * ldy + j], r = ref[i * n + j];
            double e1 = fabs(v - ref_bf[i * n + j]) / mag[i * n + j];
            double e2 = fabs(v - r) / mag[i * n + j];
            if (!(e1 <= res.max_err_bf)) res.max_err_bf = e1;   // NaN propagates as failure
            if (!(e2 <= res.max_err_f32)) res.max_err_f32 = e2;
            err2 += (v - r) * (v - r);
            if (fabs(r) >= rms && fabs(v - r) / fabs(r) > res.max_rel_f32) res.max_rel_f32 = fabs(v - r) / fabs(r);
            dot += v * r;
            ny += v * v;
            nr += r * r;
        }
        double c = (ny > 0 && nr > 0) ? dot / sqrt(ny * nr) : 1.0;
        if (c < res.min_cos) res.min_cos = c;
    }
    res.rel_rms = rms > 0 ? sqrt(err2 / (double)(m * n)) / rms : 0;

    // accumulate = 1 onto random y0: must equal y0 + (x · Wᵀ) up to f32 rounding.
    for (size_t i = 0; i < (m + 1) * ldy; i++) y0[i] = (i / ldy < m && i % ldy < n) ? rng_uniform() * 4 : sentinel;
    memcpy(yacc, y0, sizeof(float) * (m + 1) * ldy);
    gemm(m, n, k, x, ldx, packed, yacc, ldy, 1);
    for (size_t i = 0; i < m + 1; i++)
        for (size_t j = 0; j < ldy; j++) {
            float v = yacc[i * ldy + j];
            if (i < m && j < n) {
                double want = (double)y0[i * ldy + j] + (double)y[i * ldy + j];
                double e = fabs(v - want) / (mag[i * n + j] + fabs(y0[i * ldy + j]));
                if (!(e <= res.max_err_acc)) res.max_err_acc = e;
            } else if (v != sentinel) {
                res.untouched_ok = 0;
            }
        }

    free(x); free(w); free(y); free(y0); free(yacc); free(ref_bf); free(ref); free(mag); free(packed);
    return res;
}

static int run_checks(gemm_fn gemm, const char *name) {
    // Fixed edge shapes, then random ones. Tiles are 12 rows × 32 columns, x blocks 96 rows,
    // k blocks up to 128 pairs (256 values), so these cover every tail combination.
    size_t fixed[][3] = {
        {1, 1, 1},     {1, 1, 2},     {2, 3, 3},      {12, 32, 2},   {13, 33, 5},   {11, 31, 255},
        {96, 64, 256}, {97, 65, 257}, {95, 48, 258},  {100, 16, 513}, {193, 384, 384}, {25, 1152, 384},
        {7, 384, 1536}, {50, 100, 1537}, {300, 17, 31}, {4, 1536, 384}, {200, 40, 1},
    };
    size_t nfixed = sizeof fixed / sizeof fixed[0];
    size_t nrandom = 60;
    check_result worst = {0, 0, 0, 0, 1.0, 0, 1, 1};
    int fails = 0;
    for (size_t t = 0; t < nfixed + nrandom; t++) {
        size_t m, n, k;
        if (t < nfixed) {
            m = fixed[t][0]; n = fixed[t][1]; k = fixed[t][2];
        } else {
            m = 1 + rng_below(220);
            n = 1 + rng_below(300);
            k = 1 + rng_below(t % 4 == 0 ? 1700 : 600);
        }
        size_t ldx = k + (t % 3 == 0 ? 0 : rng_below(9));
        size_t ldy = n + (t % 2 == 0 ? 0 : rng_below(9));
        check_result r = check_shape(gemm, m, n, k, ldx, ldy);
        // f32 summation of k products: error well below 1e-5 of Σ|x·w|. bf16 rounding of both inputs
        // (unit roundoff u = 2^-8): at most (2u + u²) ≈ 7.8e-3 of Σ|x·w| per element.
        int ok = r.untouched_ok && r.finite_ok && r.max_err_bf < 1e-5 && r.max_err_f32 < 7.9e-3 &&
                 r.max_err_acc < 1e-5;
        if (!ok) {
            fails++;
            printf("  FAIL %s m=%zu n=%zu k=%zu ldx=%zu ldy=%zu: err_bf=%.3g err_f32=%.3g err_acc=%.3g "
                   "untouched=%d finite=%d\n", name, m, n, k, ldx, ldy, r.max_err_bf, r.max_err_f32,
                   r.max_err_acc, r.untouched_ok, r.finite_ok);
        }
        if (r.max_err_bf > worst.max_err_bf) worst.max_err_bf = r.max_err_bf;
        if (r.max_err_f32 > worst.max_err_f32) worst.max_err_f32 = r.max_err_f32;
        if (r.max_rel_f32 > worst.max_rel_f32) worst.max_rel_f32 = r.max_rel_f32;
        if (r.rel_rms > worst.rel_rms) worst.rel_rms = r.rel_rms;
        if (r.min_cos < worst.min_cos) worst.min_cos = r.min_cos;
        if (r.max_err_acc > worst.max_err_acc) worst.max_err_acc = r.max_err_acc;
    }
    printf("%s: %zu shapes, %d failures\n", name, nfixed + nrandom, fails);
    printf("  max |y - ref(bf16-rounded inputs)| / sum|x*w| = %.3g   (kernel arithmetic; limit 1e-5)\n", worst.max_err_bf);
    printf("  max |y - ref(f32 inputs)| / sum|x*w|          = %.3g   (bf16 rounding; limit 7.9e-3)\n", worst.max_err_f32);
    printf("  max |y - ref| / |ref| (elements |ref| >= rms)  = %.3g\n", worst.max_rel_f32);
    printf("  relative RMS error ||y - ref|| / ||ref||        = %.3g   (worst shape)\n", worst.rel_rms);
    printf("  min row cosine(y, f32 ref)                     = %.7f\n", worst.min_cos);
    printf("  accumulate=1 vs y0 + (accumulate=0), max err   = %.3g   (limit 1e-5)\n", worst.max_err_acc);
    return fails;
}

// ---------------------------------------------------------------------------------------------

static void run_bench(void) {
    openblas_set_num_threads(1);
    const size_t ms[] = {512, 2048, 4096};
    const size_t nks[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
    const int trials = 7;
    const double trial_seconds = 0.12;
    printf("\nsx_bf16_supported() = %d; single thread; best of %d interleaved trials of >= %.2f s\n",
           sx_bf16_supported(), trials, trial_seconds);
    printf("%6s %6s %6s | %12s %12s | %6s | %10s\n", "m", "n", "k", "sgemm GF/s", "bf16 GF/s", "ratio",
           "min cos");
    double log_sum = 0;
    int count = 0;
    for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
        for (size_t b = 0; b < sizeof nks / sizeof nks[0]; b++) {
            size_t m = ms[a], n = nks[b][0], k = nks[b][1];
            float *x = xalloc(sizeof(float) * m * k);
            float *w = xalloc(sizeof(float) * n * k);
            float *ys = xalloc(sizeof(float) * m * n);
            float *yb = xalloc(sizeof(float) * m * n);
            void *packed = xalloc(sx_bf16_packed_size(n, k));
            for (size_t i = 0; i < m * k; i++) x[i] = rng_uniform();
            for (size_t i = 0; i < n * k; i++) w[i] = rng_uniform() * 0.1f;
            sx_bf16_pack_weights(w, n, k, packed);
            double flops = 2.0 * (double)m * (double)n * (double)k;
            double best_s = 1e30, best_b = 1e30;
            for (int t = 0; t < trials; t++) {
                int reps = 0;
                double t0 = now(), el;
                do {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, x,
                                (int)k, w, (int)k, 0.0f, ys, (int)n);
                    reps++;
                } while ((el = now() - t0) < trial_seconds);
                if (el / reps < best_s) best_s = el / reps;
                reps = 0;
                t0 = now();
                do {
                    sx_gemm_bf16(m, n, k, x, k, packed, yb, n, 0);
                    reps++;
                } while ((el = now() - t0) < trial_seconds);
                if (el / reps < best_b) best_b = el / reps;
            }
            double min_cos = 1;
            for (size_t i = 0; i < m; i++) {
                double d = 0, p = 0, q = 0;
                for (size_t j = 0; j < n; j++) {
                    d += (double)ys[i * n + j] * yb[i * n + j];
                    p += (double)ys[i * n + j] * ys[i * n + j];
                    q += (double)yb[i * n + j] * yb[i * n + j];
                }
                double c = d / sqrt(p * q);
                if (c < min_cos) min_cos = c;
            }
            double gs = flops / best_s * 1e-9, gb = flops / best_b * 1e-9;
            printf("%6zu %6zu %6zu | %12.1f %12.1f | %5.2fx | %10.7f\n", m, n, k, gs, gb, gb / gs, min_cos);
            fflush(stdout);
            log_sum += log(gb / gs);
            count++;
            free(x); free(w); free(ys); free(yb); free(packed);
        }
    printf("geometric mean ratio: %.2fx\n", exp(log_sum / count));
}

int main(int argc, char **argv) {
    int do_check = 0, do_bench = 0, do_portable = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "check")) do_check = 1;
        else if (!strcmp(argv[i], "bench")) do_bench = 1;
        else if (!strcmp(argv[i], "portable")) do_portable = 1;
        else { fprintf(stderr, "usage: %s [check] [bench] [portable]\n", argv[0]); return 2; }
    }
    if (!do_check && !do_bench && !do_portable) do_check = do_bench = 1;
    int fails = 0;
    if (do_check) {
        printf("sx_bf16_supported() = %d\n", sx_bf16_supported());
        fails += run_checks(sx_gemm_bf16, "sx_gemm_bf16");
    }
    if (do_portable) fails += run_checks(sx_gemm_bf16_portable, "sx_gemm_bf16_portable");
    if (do_bench) run_bench();
    return fails ? 1 : 0;
}
