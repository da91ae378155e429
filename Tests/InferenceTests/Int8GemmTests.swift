import CKernels
import Foundation
import Testing
@testable import Inference

/// The int8 GEMM (blocks of 32 along k for weights and activations, each rotated by the 32 × 32
/// Hadamard matrix before it is quantized): every path (VNNI, AVX2,
/// portable) gives bit-identical results, equal to a reference quantization written here, the same
/// for a row alone as in any batch or column split.
@Suite struct Int8GemmTests {
    /// A seeded generator (SplitMix64), so that a failure can be reproduced.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let cases = [(1, 1, 1), (2, 31, 7), (3, 32, 64), (5, 33, 385), (7, 100, 384), (13, 64, 1536), (97, 40, 2), (20, 70, 257)]

    /// The paths this CPU has.
    static var paths: [(String, Int32)] {
        (["portable", "avx2", "vnni"] as [String]).enumerated().compactMap { i, name in
            Int32(i) <= sx_i8_path() ? (name, Int32(i)) : nil
        }
    }

    static func pack(_ w: [Float], _ n: Int, _ k: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: sx_i8_packed_size(n, k), alignment: 64)
        sx_i8_pack_weights(w, n, k, p)
        return p
    }

    static func run(_ path: Int32, _ m: Int, _ n: Int, _ k: Int, _ x: [Float], _ packed: UnsafeRawPointer,
                    accumulate: Int32 = 0, start: Float = 0) -> [Float] {
        var y = [Float](repeating: start, count: m * n)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { sx_gemm_i8_path(path, m, n, k, xp.baseAddress!, k, packed, $0.baseAddress!, n, accumulate) }
        }
        return y
    }

    /// The rotation of one block (zero-padded to 32) by the Sylvester Hadamard matrix, as the
    /// fast Walsh-Hadamard transform in Float: stages h = 1, 2, 4, 8, 16 in that order.
    static func rotate(_ block: ArraySlice<Float>) -> [Float] {
        var v = Array(block) + [Float](repeating: 0, count: 32 - block.count)
        var h = 1
        while h < 32 {
            for t in 0..<32 where t & h == 0 { (v[t], v[t + h]) = (v[t] + v[t + h], v[t] - v[t + h]) }
            h *= 2
        }
        return v
    }

    /// Quantization of one row: per block of 32, rotated, scale amax/127 and values
    /// rint(v·127/amax) of the rotated block (`rotated` keeps the rotated values).
    static func quantize(_ v: ArraySlice<Float>) -> (q: [Int], scales: [Float], rotated: [Float]) {
        let v = Array(v)
        var q: [Int] = [], scales: [Float] = [], rotated: [Float] = []
        for b in stride(from: 0, to: v.count, by: 32) {
            let block = rotate(v[b..<min(v.count, b + 32)])
            let amax = block.map(abs).max() ?? 0
            let inv: Float = amax > 0 ? 127 / amax : 0
            q += block.map { Int(($0 * inv).rounded(.toNearestOrEven)) }
            scales.append(amax / 127)
            rotated += block
        }
        return (q, scales, rotated)
    }

    @Test func everyPathIsIdenticalAndMatchesTheReferenceQuantization() throws {
        var rng = Seeded(state: 20261130)
        #if arch(x86_64)
        #expect(Self.paths.count >= 2 || sx_vector_level() < 3, "this x86 CPU should have at least the AVX2 path")
        #endif
        for (m, n, k) in Self.cases {
            // Activations with an outlier column, as transformer activations have.
            let x = (0..<m * k).map { i in Float.random(in: -2...2, using: &rng) * (i % k == 5 ? 30 : 1) }
            let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let packed = Self.pack(w, n, k)
            defer { packed.deallocate() }
            let qx = (0..<m).map { Self.quantize(x[$0 * k..<($0 + 1) * k]) }
            let qw = (0..<n).map { Self.quantize(w[$0 * k..<($0 + 1) * k]) }
            for accumulate in [0, 1] as [Int32] {
                let start: Float = accumulate == 1 ? 0.5 : .nan
                let results = Self.paths.map { ($0.0, Self.run($0.1, m, n, k, x, packed, accumulate: accumulate, start: start)) }
                var worstRef = 0.0, worstF32 = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        // The quantized product in double precision: block sums are exact integers.
                        var sum = 0.0, scale = 0.0
                        // The weights' scale carries the 1/32 of H·Hᵀ = 32·I.
                        for b in 0..<qx[i].scales.count {
                            var block = 0
                            for t in b * 32..<b * 32 + 32 { block += qx[i].q[t] * qw[j].q[t] }
                            let term = Double(block) * Double(qx[i].scales[b] * (qw[j].scales[b] / 32))
                            sum += term
                            scale += abs(term)
                        }
                        // x·w = (xH)·(wH)/32. Rounding moves each rotated value by at most half a
                        // step (amax/254) of its block: |x'w' - q'| <= |x'|·sw/2 + |w'|·sx/2 + sx·sw/4.
                        var exact = 0.0, bound = 0.0
                        for p in 0..<k { exact += Double(x[i * k + p]) * Double(w[j * k + p]) }
                        for p in 0..<qx[i].rotated.count {
                            let (xv, wv) = (Double(qx[i].rotated[p]), Double(qw[j].rotated[p]))
                            let (sx, sw) = (Double(qx[i].scales[p / 32]), Double(qw[j].scales[p / 32]))
                            bound += (abs(xv) * sw / 2 + abs(wv) * sx / 2 + sx * sw / 4) / 32
                        }
                        let extra = accumulate == 1 ? 0.5 : 0
                        let got = Double(results[0].1[i * n + j])
                        worstRef = max(worstRef, abs(got - sum - extra) / (scale + extra + 1e-30))
                        worstF32 = max(worstF32, abs(got - exact - extra) / (bound * 1.001 + scale * 1e-6 + 1e-30))
                    }
                }
                let blocks = Double((k + 31) / 32)
                #expect(worstRef < (blocks + 2) * 1.2e-7, "m \(m) n \(n) k \(k): relative error \(worstRef) to the quantized product")
                // Against the unquantized product: within the rounding bound of the quantization.
                #expect(worstF32 <= 1, "m \(m) n \(n) k \(k): error \(worstF32) times the quantization bound")
                for (name, y) in results.dropFirst() {
                    #expect(y.map(\.bitPattern) == results[0].1.map(\.bitPattern), "\(name) differs from portable: m \(m) n \(n) k \(k)")
                }
            }
        }
    }

    @Test func rowsAndColumnsDoNotDependOnTheBatchTheirPlaceOrTheSplit() throws {
        var rng = Seeded(state: 20261130)
        let (m, n, k) = (101, 96, 700)
        let x = (0..<m * k).map { _ in Float.random(in: -2...2, using: &rng) }
        let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
        let packed = Self.pack(w, n, k)
        defer { packed.deallocate() }
        let panelBytes = (k + 31) / 32 * 1280
        for (name, path) in Self.paths {
            let all = Self.run(path, m, n, k, x, packed)
            for i in [0, 1, 5, 6, 7, 50, 95, 96, 100] {
                let alone = Self.run(path, 1, n, k, Array(x[i * k..<(i + 1) * k]), packed)
                #expect(alone == Array(all[i * n..<(i + 1) * n]), "\(name): row \(i) alone differs from the batch")
                let pair = Self.run(path, 2, n, k, Array(x[i * k..<(i + 1) * k]) + Array(x[0..<k]), packed)
                #expect(Array(pair[0..<n]) == alone, "\(name): row \(i) first of two differs")
            }
            // Columns 32..<96 computed alone (as a thread given panels 1 and 2 does) are the same.
            var y = [Float](repeating: 0, count: m * n)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer {
                    sx_gemm_i8_path(path, m, 64, k, xp.baseAddress!, k, packed + panelBytes, $0.baseAddress! + 32, n, 0)
                }
            }
            for i in 0..<m { #expect(y[i * n + 32..<i * n + 96] == all[i * n + 32..<i * n + 96], "\(name): row \(i), columns split") }
        }
    }

    @Test func zeroAndNonFiniteInputs() throws {
        let (n, k) = (3, 40)
        let w = (0..<n * k).map { Float($0 % 7) - 3 }
        let packed = Self.pack(w, n, k)
        defer { packed.deallocate() }
        // A row of zeros gives zeros; a NaN in a block is clamped the same way on every path.
        var x = [Float](repeating: 0, count: 2 * k)
        x[k + 3] = .nan
        x[k + 4] = 1
        let results = Self.paths.map { Self.run($0.1, 2, n, k, x, packed) }
        #expect(results[0][0..<n].allSatisfy { $0 == 0 })
        for y in results.dropFirst() { #expect(y.map(\.bitPattern) == results[0].map(\.bitPattern)) }
    }
}
