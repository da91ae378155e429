import CKernels
import Dispatch

/// Numeric precision of the large matrix products.
public enum Precision: String, Sendable, CaseIterable {
    /// f32 weights and activations: the reference results (our AVX-512 kernel on weights packed
    /// at load where the CPU has AVX-512, else OpenBLAS sgemm; `SEXTANT_F32_PATH` forces a path).
    case f32
    /// bf16 weights and activations with f32 accumulation (AVX-512 BF16): about twice the
    /// throughput, vectors within cosine ~0.999 of f32. Falls back to f32 without the hardware.
    case bf16
    /// int8 weights and activations in blocks of 32 along k (the Q8_0 scheme), integer block sums
    /// scaled in f32 (AVX512_VNNI, AVX2, or portable code; every path gives the same results).
    /// Weights take 1.25 bytes each (f32: 4); vectors within cosine 0.999 of f32.
    case int8

    /// The precision of the attention's input projection (queries, keys, values) under int8:
    /// quantizing it costs the most accuracy of any layer. Encoders keep it in f32
    /// (all-MiniLM-L6-v2: cosine to f32 for the shortest texts 0.9982 with it in int8, 0.9989 in
    /// bf16, 0.9992 in f32, for a quarter of the work); decoders, whose products dominate their
    /// time, in bf16 where the CPU has AVX512_BF16 (cosine ≥ 0.9993 measured), else f32.
    public func attentionInput(decoder: Bool) -> Precision {
        guard self == .int8 else { return self }
        return decoder && sx_bf16_path() == SX_BF16_PATH_AVX512 ? .bf16 : .f32
    }

    /// Whether this machine has a fast bf16 path (AVX512_BF16, or AVX2 + FMA); without one
    /// `bf16` runs as f32.
    public static var bf16Supported: Bool { sx_bf16_path() >= SX_BF16_PATH_AVX2 }
}

/// The weight matrix W [n × k] of a linear layer (y = x · Wᵀ): packed as bf16 or int8, packed as
/// f32 for our f32 kernels, or kept as it is for OpenBLAS.
public final class LinearWeight: @unchecked Sendable {   // `packed` is written in init and only read after
    public let n: Int
    public let k: Int
    /// The f32 weights for OpenBLAS; released once packed.
    private let f32: FloatTensor?
    private let packed: UnsafeMutableRawPointer?
    /// The kernel for `packed`.
    private let gemm: @convention(c) (Int, Int, Int, UnsafePointer<Float>?, Int, UnsafeRawPointer?,
                                      UnsafeMutablePointer<Float>?, Int, Int32) -> Void
    /// Bytes of one packed panel of 32 output columns.
    private let panelBytes: Int

    public init(_ weight: FloatTensor, precision: Precision) {
        let (n, k) = (weight.shape[0], weight.shape[1])
        (self.n, self.k) = (n, k)
        func pack(_ bytes: Int, _ fill: (UnsafeMutableRawPointer) -> Void) -> UnsafeMutableRawPointer {
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            fill(p)
            return p
        }
        if precision == .int8 {
            packed = pack(sx_i8_packed_size(n, k)) { sx_i8_pack_weights(weight.pointer, n, k, $0) }
            gemm = sx_gemm_i8
            panelBytes = (k + 31) / 32 * 1280
            f32 = nil
        } else if precision == .bf16 && Precision.bf16Supported {
            packed = pack(sx_bf16_packed_size(n, k)) { sx_bf16_pack_weights(weight.pointer, n, k, $0) }
            gemm = sx_gemm_bf16
            panelBytes = (k + 1) / 2 * 128
            f32 = nil
        } else if sx_f32_path() != SX_F32_PATH_BLAS {
            packed = pack(sx_f32_packed_size(n, k)) { sx_f32_pack_weights(weight.pointer, n, k, $0.assumingMemoryBound(to: Float.self)) }
            gemm = sx_gemm_f32
            panelBytes = k * 128
            f32 = nil
        } else {
            packed = nil
            gemm = sx_gemm_f32
            panelBytes = 0
            f32 = weight
        }
    }

    deinit { packed?.deallocate() }

    /// Like `apply`, one product per sequence: rows `lengths[0]` of x are the first sequence,
    /// the next `lengths[1]` the second, and so on. BLAS kernels choose their blocking by the
    /// shape of a product, so a product over a whole batch would make a row's result depend on
    /// its neighbours; per sequence, a text gets bit-identical vectors in any batch.
    func apply(lengths: [Int], x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
               accumulate: Bool, threads: Int = 1) {
        var row = 0
        for len in lengths where len > 0 {
            apply(m: len, x: x + row * ldx, ldx: ldx, y: y + row * ldy, ldy: ldy, accumulate: accumulate, threads: threads)
            row += len
        }
    }

    /// y[m×n] = x[m×k] · Wᵀ (+ y when `accumulate`), columns split over `threads` threads.
    func apply(m: Int, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
               accumulate: Bool, threads: Int = 1) {
        guard let packed else {
            BLAS.matmulTransposedB(m: m, n: n, k: k, x: x, ldx: ldx, w: f32!.pointer, ldw: k, y: y, ldy: ldy,
                                   accumulate: accumulate, threads: threads)
            return
        }
        let panels = (n + 31) / 32
        let parts = min(threads, panels)
        if parts <= 1 {
            gemm(m, n, k, x, ldx, packed, y, ldy, accumulate ? 1 : 0)
            return
        }
        let perPart = (panels + parts - 1) / parts
        concurrentLoop(parts) { p in
            let p0 = p * perPart, p1 = min(panels, p0 + perPart)
            guard p0 < p1 else { return }
            let c0 = p0 * 32, c1 = min(n, p1 * 32)
            gemm(m, c1 - c0, k, x, ldx, packed + p0 * panelBytes, y + c0, ldy, accumulate ? 1 : 0)
        }
    }
}
