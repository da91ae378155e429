import CKernels

/// The two matrix products of attention on our f32 kernel, so that they have one order of
/// operations on every CPU: keys and values are packed (per head) like a weight matrix, then
/// multiplied as x · Wᵀ.
enum AttentionProducts {
    /// Floats needed to pack `rows` keys or values of `width` floats.
    static func packedCount(rows: Int, width: Int) -> Int { sx_f32_packed_size(rows, width) / MemoryLayout<Float>.size }

    /// Packs `n` keys of `d` floats (row stride `ldk`) for `scores`.
    static func packKeys(_ k: UnsafePointer<Float>, ldk: Int, n: Int, d: Int, into packed: UnsafeMutablePointer<Float>) {
        sx_f32_pack_rows(k, ldk, n, d, packed)
    }

    /// Packs `n` values of `d` floats (row stride `ldv`) for `context`.
    static func packValues(_ v: UnsafePointer<Float>, ldv: Int, n: Int, d: Int, into packed: UnsafeMutablePointer<Float>) {
        sx_f32_pack_columns(v, ldv, d, n, packed)
    }

    /// out[m × n] = q[m × d] · Kᵀ on keys packed by `packKeys`.
    static func scores(m: Int, n: Int, d: Int, q: UnsafePointer<Float>, ldq: Int, keys: UnsafePointer<Float>,
                       out: UnsafeMutablePointer<Float>, ldo: Int) {
        sx_gemm_f32(m, n, d, q, ldq, keys, out, ldo, 0)
    }

    /// out[m × d] = p[m × n] · V on values packed by `packValues`.
    static func context(m: Int, n: Int, d: Int, p: UnsafePointer<Float>, ldp: Int, values: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, ldo: Int) {
        sx_gemm_f32(m, d, n, p, ldp, values, out, ldo, 0)
    }
}
