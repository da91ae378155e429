import CKernels
import Dispatch

/// Numeric precision of the large matrix products. Each gives the same bits on every x86-64 CPU
/// and code path (AVX-512, AVX2, portable); only the speed differs.
public enum Precision: String, Sendable, CaseIterable {
    /// f32 weights and activations: the reference results (weights packed at load for our f32
    /// kernel, with one fixed order of fused multiply-adds).
    case f32
    /// bf16 weights and activations with f32 accumulation, in the arithmetic of AVX512_BF16's
    /// `vdpbf16ps`: about 1.6x f32's throughput where the CPU has it, vectors within cosine
    /// ~0.9999 of f32. Other CPUs run the same arithmetic on AVX2 (about f32's speed) or portable
    /// code (slow).
    case bf16
    /// int8 weights and activations in blocks of 32 along k, each block rotated by a Hadamard
    /// matrix before it is quantized (one scale per block); exact integer block sums scaled in
    /// f32 (AVX512_VNNI, AVX2, or portable code): vectors within cosine ~0.9995 of f32. Weights
    /// take 1.25 bytes each (f32: 4).
    case int8

    /// The precision of the attention's input projection (queries, keys, values) under int8:
    /// quantizing it costs the most accuracy of any layer, so it stays in f32 for encoders
    /// (a quarter of their work) and in bf16 for decoders, whose products dominate their time.
    /// The same on every CPU, so that a model gives one set of vectors everywhere.
    public func attentionInput(decoder: Bool) -> Precision {
        guard self == .int8 else { return self }
        return decoder ? .bf16 : .f32
    }

    /// Whether this machine has a fast bf16 path (AVX512_BF16, or AVX2 + FMA); without one
    /// `bf16` runs on the portable code, many times slower.
    public static var bf16Supported: Bool { sx_bf16_path() >= SX_BF16_PATH_AVX2 }
}

/// The weight matrix W [n × k] of a linear layer (y = x · Wᵀ), packed at load as f32, bf16 or int8
/// for our kernels.
public final class LinearWeight: @unchecked Sendable {   // `packed` is written in init and only read after
    public let n: Int
    public let k: Int
    private let packed: UnsafeMutableRawPointer
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
            panelBytes = sx_i8_packed_size(32, k)
        } else if precision == .bf16 {
            packed = pack(sx_bf16_packed_size(n, k)) { sx_bf16_pack_weights(weight.pointer, n, k, $0) }
            gemm = sx_gemm_bf16
            panelBytes = (k + 1) / 2 * 128
        } else {
            packed = pack(sx_f32_packed_size(n, k)) { sx_f32_pack_weights(weight.pointer, n, k, $0.assumingMemoryBound(to: Float.self)) }
            gemm = sx_gemm_f32
            panelBytes = k * 128
        }
    }

    deinit { packed.deallocate() }

    /// `apply` over the packed rows of a batch of sequences (`lengths` rows each). Every kernel
    /// computes a row's outputs from that row alone, in an order fixed by k, so a text gets the
    /// same bits whatever batch it is in.
    func apply(lengths: [Int], x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
               accumulate: Bool, threads: Int = 1) {
        let m = lengths.reduce(0, +)
        if m > 0 { apply(m: m, x: x, ldx: ldx, y: y, ldy: ldy, accumulate: accumulate, threads: threads) }
    }

    /// y[m×n] = x[m×k] · Wᵀ (+ y when `accumulate`), columns split over `threads` threads.
    func apply(m: Int, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
               accumulate: Bool, threads: Int = 1) {
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
