import CKernels
import Foundation
import Testing
@testable import Inference

/// The packed f32 GEMM: every path (AVX-512, AVX2 + FMA, portable) gives bit-identical results,
/// close to a double-precision reference, the same for a row alone as in any batch.
@Suite struct F32GemmTests {
    static let cases = [(1, 1, 1), (2, 31, 7), (3, 32, 64), (5, 33, 385), (13, 100, 384), (25, 64, 1536), (97, 40, 2), (130, 70, 257)]

    /// The paths this CPU has (a lacking one would fall back, so it is left out).
    static var paths: [(String, Int32)] {
        var all: [(String, Int32)] = [("portable", SX_F32_PATH_PORTABLE)]
        #if arch(x86_64)
        let hasAVX2 = sx_bf16_path() >= SX_BF16_PATH_AVX2   // AVX2 + FMA
        if hasAVX2 { all.append(("avx2", SX_F32_PATH_AVX2)) }
        if sx_vector_level() >= 4 { all.append(("avx512", SX_F32_PATH_AVX512)) }
        #endif
        return all
    }

    static func run(_ path: Int32, _ m: Int, _ n: Int, _ k: Int, _ x: [Float], _ packed: UnsafeRawPointer, accumulate: Int32,
                    start: Float) -> [Float] {
        var y = [Float](repeating: start, count: m * n)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { sx_gemm_f32_path(path, m, n, k, xp.baseAddress!, k, packed, $0.baseAddress!, n, accumulate) }
        }
        return y
    }

    @Test func everyPathIsIdenticalAndMatchesTheReference() throws {
        var rng = SystemRandomNumberGenerator()
        #expect(Self.paths.count >= 2 || sx_vector_level() < 3, "this x86 CPU should have at least the AVX2 path")
        for (m, n, k) in Self.cases {
            let x = (0..<m * k).map { _ in Float.random(in: -2...2, using: &rng) }
            let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let packed = UnsafeMutableRawPointer.allocate(byteCount: sx_f32_packed_size(n, k), alignment: 64)
            defer { packed.deallocate() }
            sx_f32_pack_weights(w, n, k, packed.assumingMemoryBound(to: Float.self))
            for accumulate in [0, 1] as [Int32] {
                let start: Float = accumulate == 1 ? 0.5 : .nan
                let results = Self.paths.map { ($0.0, Self.run($0.1, m, n, k, x, packed, accumulate: accumulate, start: start)) }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0, scale = 0.0
                        for p in 0..<k { let prod = Double(x[i * k + p]) * Double(w[j * k + p]); sum += prod; scale += abs(prod) }
                        let expected = sum + (accumulate == 1 ? 0.5 : 0)
                        worst = max(worst, abs(Double(results[0].1[i * n + j]) - expected) / (scale + (accumulate == 1 ? 0.5 : 0) + 1e-30))
                    }
                }
                // f32 sums of k products: the error is at most about k rounding steps of the absolute sum.
                #expect(worst < Double(k + 1) * 1.2e-7, "m \(m) n \(n) k \(k) accumulate \(accumulate): relative error \(worst)")
                for (name, y) in results.dropFirst() {
                    #expect(y.map(\.bitPattern) == results[0].1.map(\.bitPattern), "\(name) differs from portable: m \(m) n \(n) k \(k)")
                }
            }
        }
        // The default entry point is one of those paths.
        do {
            let (m, n, k) = (7, 45, 300)
            let x = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let packed = UnsafeMutableRawPointer.allocate(byteCount: sx_f32_packed_size(n, k), alignment: 64)
            defer { packed.deallocate() }
            sx_f32_pack_weights(w, n, k, packed.assumingMemoryBound(to: Float.self))
            var y = [Float](repeating: 0, count: m * n)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { sx_gemm_f32(m, n, k, xp.baseAddress!, k, packed, $0.baseAddress!, n, 0) } }
            #expect(y == Self.run(SX_F32_PATH_PORTABLE, m, n, k, x, packed, accumulate: 0, start: 0))
        }
    }

    @Test func rowsDoNotDependOnTheBatchOrTheirPlace() throws {
        var rng = SystemRandomNumberGenerator()
        let (m, n, k) = (101, 96, 700)
        let x = (0..<m * k).map { _ in Float.random(in: -2...2, using: &rng) }
        let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: sx_f32_packed_size(n, k), alignment: 64)
        defer { packed.deallocate() }
        sx_f32_pack_weights(w, n, k, packed.assumingMemoryBound(to: Float.self))
        for (name, path) in Self.paths {
            let all = Self.run(path, m, n, k, x, packed, accumulate: 0, start: 0)
            for i in [0, 1, 11, 12, 13, 50, 95, 96, 100] {
                let alone = Self.run(path, 1, n, k, Array(x[i * k..<(i + 1) * k]), packed, accumulate: 0, start: 0)
                #expect(alone == Array(all[i * n..<(i + 1) * n]), "\(name): row \(i) alone differs from the batch")
                let pair = Self.run(path, 2, n, k, Array(x[i * k..<(i + 1) * k]) + Array(x[0..<k]), packed, accumulate: 0, start: 0)
                #expect(Array(pair[0..<n]) == alone, "\(name): row \(i) first of two differs")
            }
        }
    }
}
