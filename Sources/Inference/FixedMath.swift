import CKernels

/// Scalar functions with the same bits on every CPU (libm's have FMA and SSE2 builds that may
/// differ in the last bit), for the few values a model derives from them.
public enum FixedMath {
    /// 1 / (1 + e^-x).
    public static func sigmoid(_ x: Double) -> Double { 1 / (1 + sx_exp_f64(-x)) }
}
