internal import CKernels

/// Full-precision distances (SIMD kernels in CKernels) and input checks.
public enum Distance {
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        sx_dot_f32(a, b, n)
    }

    @inline(__always)
    static func l2sq(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        sx_l2sq_f32(a, b, n)
    }

    /// Distance of two prepared vectors (normalized already under cosine).
    @inline(__always)
    static func prepared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, _ metric: Metric) -> Float {
        switch metric {
        case .cosine: return 1 - dot(a, b, n)
        case .innerProduct: return -dot(a, b, n)
        case .l2: return l2sq(a, b, n)
        }
    }

    /// The exact distance of two raw vectors under `metric` (cosine normalizes them).
    public static func exact(_ a: [Float], _ b: [Float], metric: Metric) -> Float {
        precondition(a.count == b.count, "vectors of different lengths")
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                let n = a.count
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return 0 }
                switch metric {
                case .cosine:
                    let na = dot(x, x, n), nb = dot(y, y, n)
                    return 1 - dot(x, y, n) / (na.squareRoot() * nb.squareRoot())
                case .innerProduct: return -dot(x, y, n)
                case .l2: return l2sq(x, y, n)
                }
            }
        }
    }

    /// Checks a vector (length, finite components) and returns it ready for the index:
    /// normalized to unit length under cosine, unchanged otherwise.
    static func prepare(_ v: [Float], dimensions: Int, metric: Metric) throws -> [Float] {
        guard v.count == dimensions else {
            throw VectorIndexError(.dimensionMismatch, "vector has \(v.count) dimensions, the index \(dimensions)")
        }
        for x in v where !x.isFinite {
            throw VectorIndexError(.invalidVector, "vector has a NaN or infinite component")
        }
        guard metric == .cosine else { return v }
        var out = v
        let norm = out.withUnsafeBufferPointer { p in sx_sum_squares(p.baseAddress!, p.count) }.squareRoot()
        guard norm > 0, norm.isFinite else {
            throw VectorIndexError(.invalidVector, "a zero vector has no direction under cosine")
        }
        let inv = Float(1 / norm)
        out.withUnsafeMutableBufferPointer { p in sx_scale(p.baseAddress!, p.count, inv) }
        return out
    }
}
