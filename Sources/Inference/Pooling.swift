import CKernels

/// How one vector is made from a sequence's hidden states.
public enum Pooling: String, Sendable, CaseIterable {
    /// Mean over all tokens of the sequence.
    case mean
    /// The first token (`[CLS]`).
    case cls
    /// The last token (decoder embedders: the appended EOS).
    case lastToken

    /// Pools `length` rows of `dims` floats at `states` into `out`.
    func pool(_ states: UnsafePointer<Float>, length: Int, dims: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .cls:
            out.update(from: states, count: dims)
        case .lastToken:
            out.update(from: states + (length - 1) * dims, count: dims)
        case .mean:
            out.initialize(repeating: 0, count: dims)
            for t in 0..<length {
                let row = states + t * dims
                for c in 0..<dims { out[c] += row[c] }
            }
            sx_scale(out, dims, 1 / Float(max(length, 1)))
        }
    }
}

/// Scales `vector` to unit L2 norm (a zero vector stays zero).
public func normalizeL2(_ vector: UnsafeMutablePointer<Float>, count: Int) {
    let norm = sx_sum_squares(vector, count).squareRoot()
    if norm > 0 { sx_scale(vector, count, Float(1 / norm)) }
}
