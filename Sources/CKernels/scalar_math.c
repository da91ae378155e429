// exp, log, pow, sin/cos and tanh in plain double arithmetic with one fixed order of operations
// (the target is built with -ffp-contract=off), so their results are the same on every x86-64 CPU.
// libm has FMA and SSE2 builds of these that can differ in the last bit. Used for the few scalar
// values a model derives from them (RoPE tables, classifier heads, sigmoid scores). Range
// reduction in the style of Cody and Waite, then Taylor polynomials on the reduced range; errors
// are a few ulp of a double (sin/cos for |x| < 1.6e6, where the reduction is exact; tanh within
// 1e-13 relative, its worst just above 0.01, where 1 - 2/(e^2x + 1) starts to cancel); exp
// overflows to infinity from x > 709.78 (a hair early). NaN in gives NaN out.
#include "CKernels.h"
#include <math.h>

static const double sx_ln2_hi = 6.93147180369123816490e-01;   // ln 2, 32 bits (exact n · hi)
static const double sx_ln2_lo = 1.90821492927058770002e-10;

double sx_exp_f64(double x) {
    if (x != x) return x;
    if (x > 709.78) return INFINITY;
    if (x < -745.2) return 0.0;
    double n = floor(x * 1.44269504088896338700e+00 + 0.5);
    double r = (x - n * sx_ln2_hi) - n * sx_ln2_lo;    // |r| <= 0.35
    // e^r = Σ r^i / i!, i <= 14 (the next term is < 1e-18 relative).
    double p = 1.0 / 87178291200.0;
    static const double inv_fact[14] = {
        1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
        1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0,
    };
    for (int i = 0; i < 14; i++) p = p * r + inv_fact[i];
    return ldexp(p, (int)n);
}

double sx_log_f64(double x) {
    if (x != x || x < 0) return NAN;
    if (x == 0) return -INFINITY;
    if (isinf(x)) return x;
    int e;
    double m = frexp(x, &e);                            // x = m · 2^e, m in [0.5, 1)
    if (m < 0.70710678118654752440) { m *= 2; e -= 1; }  // m in [0.707, 1.414)
    double s = (m - 1) / (m + 1), s2 = s * s;            // |s| <= 0.1716
    // log m = 2 (s + s^3/3 + s^5/5 + ...), to s^23 (the next term is < 1e-19).
    double p = 1.0 / 23;
    for (int i = 21; i >= 1; i -= 2) p = p * s2 + 1.0 / i;
    double logm = 2 * s * p;
    return (double)e * sx_ln2_hi + ((double)e * sx_ln2_lo + logm);
}

double sx_pow_f64(double base, double e) {
    if (e == 0) return 1.0;
    return sx_exp_f64(e * sx_log_f64(base));
}

void sx_sincos_f64(double x, double *s, double *c) {
    // x = k · π/2 + r, |r| <= π/4, with π/2 in three parts of 33 bits (exact k · part for |k| < 2^20).
    static const double p1 = 1.57079632673412561417e+00, p2 = 6.07710050630396597660e-11,
                        p3 = 2.02226624871116645580e-21;
    double k = floor(x * 6.36619772367581382433e-01 + 0.5);
    double r = ((x - k * p1) - k * p2) - k * p3;
    double r2 = r * r;
    // sin r = r Σ (-1)^i r^2i / (2i+1)!, cos r = Σ (-1)^i r^2i / (2i)!, to r^17 and r^18.
    double sp = -1.0 / 355687428096000.0, cp = 1.0 / 6402373705728000.0;
    static const double sin_c[8] = {
        1.0 / 1307674368000.0, -1.0 / 6227020800.0, 1.0 / 39916800.0, -1.0 / 362880.0,
        1.0 / 5040.0, -1.0 / 120.0, 1.0 / 6.0, 0,
    };
    static const double cos_c[8] = {
        -1.0 / 20922789888000.0, 1.0 / 87178291200.0, -1.0 / 479001600.0, 1.0 / 3628800.0,
        -1.0 / 40320.0, 1.0 / 720.0, -1.0 / 24.0, 0.5,
    };
    for (int i = 0; i < 7; i++) sp = sp * r2 + sin_c[i];
    for (int i = 0; i < 8; i++) cp = cp * r2 + cos_c[i];
    // sin r = r - r·r2·S with S = 1/3! - r2/5! + ..., and cos r = 1 - r2·C with C = 1/2! - r2/4! + ...
    double sinr = r - r * r2 * sp;
    double cosr = 1.0 - r2 * cp;
    switch ((long)k & 3) {
    case 0: *s = sinr; *c = cosr; break;
    case 1: *s = cosr; *c = -sinr; break;
    case 2: *s = -sinr; *c = -cosr; break;
    default: *s = -cosr; *c = sinr; break;
    }
}

double sx_tanh_f64(double x) {
    double a = fabs(x);
    double t;
    if (a > 22) t = 1.0;
    else if (a < 0x1p-27) t = a;
    else if (a < 0.01) {
        // tanh a = a - a^3/3 + 2a^5/15 - 17a^7/315 (the next term is < 1e-17 relative here),
        // where 1 - 2/(e^2a + 1) would cancel.
        double a2 = a * a;
        t = a + a * a2 * (-1.0 / 3 + a2 * (2.0 / 15 + a2 * (-17.0 / 315)));
    } else {
        double e = sx_exp_f64(2 * a);
        t = 1.0 - 2.0 / (e + 1.0);
    }
    return x < 0 ? -t : t;
}
