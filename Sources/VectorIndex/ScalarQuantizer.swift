internal import CKernels

/// int8 scalar quantization with one range per dimension, fitted on a sample by quantiles.
///
/// A component x_i is coded as c_i = round((x_i − mid_i) / scale_i) in −127...127 and read
/// back as x̂_i = mid_i + scale_i · c_i. Each code carries two correction terms: `delta` =
/// ⟨x, x − x̂⟩ (the rounding error seen from the vector itself, which is what a near
/// neighbour's query sees too) and `normSq` = ‖x‖². A float query q is compared with a code as
/// ⟨q, x⟩ ≈ Σ q_i mid_i + Σ (q_i scale_i) c_i + delta.
struct ScalarQuantizer: Equatable {
    let dimensions: Int
    private(set) var mid: [Float]
    private(set) var scale: [Float]

    /// Fraction of a sample's values clipped at each end of a dimension's range.
    static let clippedTail = 0.001

    init(dimensions: Int, mid: [Float], scale: [Float]) {
        self.dimensions = dimensions
        self.mid = mid
        self.scale = scale
    }

    /// Fits the per-dimension ranges on `count` row-major vectors.
    init(fitting rows: UnsafePointer<Float>, count: Int, dimensions: Int) {
        precondition(count > 0)
        self.dimensions = dimensions
        mid = [Float](repeating: 0, count: dimensions)
        scale = [Float](repeating: 0, count: dimensions)
        var column = [Float](repeating: 0, count: count)
        let lowIndex = Int((Self.clippedTail * Double(count - 1)).rounded(.down))
        let highIndex = Int(((1 - Self.clippedTail) * Double(count - 1)).rounded(.up))
        for d in 0..<dimensions {
            for r in 0..<count { column[r] = rows[r * dimensions + d] }
            column.sort()
            let lo = column[lowIndex], hi = column[highIndex]
            mid[d] = (lo + hi) / 2
            scale[d] = hi > lo ? (hi - lo) / 254 : 0
        }
    }

    /// Writes the code of `x` and returns its corrections (delta, normSq).
    func encode(_ x: UnsafePointer<Float>, into code: UnsafeMutablePointer<Int8>) -> (delta: Float, normSq: Float) {
        var delta: Float = 0, normSq: Float = 0
        for i in 0..<dimensions {
            let v = x[i]
            var c: Float = 0
            if scale[i] > 0 { c = ((v - mid[i]) / scale[i]).rounded() }
            c = min(127, max(-127, c))
            code[i] = Int8(c)
            let back = mid[i] + scale[i] * c
            delta += v * (v - back)
            normSq += v * v
        }
        return (delta, normSq)
    }

    /// Reads a code back as floats.
    func decode(_ code: UnsafePointer<Int8>, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<dimensions { out[i] = mid[i] + scale[i] * Float(code[i]) }
    }

    /// Prepares a float query for comparison with codes: `scaled` gets q_i · scale_i, the
    /// result is Σ q_i mid_i.
    func prepare(_ q: UnsafePointer<Float>, scaled: UnsafeMutablePointer<Float>) -> Float {
        mid.withUnsafeBufferPointer { m in
            scale.withUnsafeBufferPointer { s in sx_sq_prepare(q, m.baseAddress!, s.baseAddress!, scaled, dimensions) }
        }
    }

    /// Prepares the decoded code as a query (see `prepare`).
    func prepare(code: UnsafePointer<Int8>, scaled: UnsafeMutablePointer<Float>) -> Float {
        mid.withUnsafeBufferPointer { m in
            scale.withUnsafeBufferPointer { s in sx_sq_decode_prepare(code, m.baseAddress!, s.baseAddress!, scaled, dimensions) }
        }
    }
}
