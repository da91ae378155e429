import CKernels
import Foundation
import Testing
@testable import Inference

@Suite struct KernelTests {
    @Test func erfMatchesLibm() {
        let xs = stride(from: -6.0 as Float, through: 6.0, by: 0.001).map { $0 }
        var ys = [Float](repeating: 0, count: xs.count)
        sx_erf(xs, &ys, xs.count)
        var worst: Double = 0
        for (x, y) in zip(xs, ys) { worst = max(worst, abs(Double(y) - erf(Double(x)))) }
        #expect(worst < 4e-7, "max |erf error| = \(worst)")   // a few f32 ulp near ±1
    }

    @Test func expMatchesLibmRelatively() {
        let xs = stride(from: -80.0 as Float, through: 80.0, by: 0.01).map { $0 }
        var ys = [Float](repeating: 0, count: xs.count)
        sx_exp(xs, &ys, xs.count)
        var worst: Double = 0
        for (x, y) in zip(xs, ys) {
            let e = exp(Double(x))
            worst = max(worst, abs(Double(y) - e) / e)
        }
        #expect(worst < 5e-7, "max relative exp error = \(worst)")
    }

    @Test func softmaxRowsSumToOneAndMatchDefinition() {
        let cols = 37
        var x = (0..<(3 * cols)).map { Float(sin(Double($0)) * 10) }
        let original = x
        sx_softmax_rows(&x, 3, cols, cols, 0.5)
        for r in 0..<3 {
            let row = original[(r * cols)..<((r + 1) * cols)].map { Double($0) * 0.5 }
            let m = row.max()!
            let denom = row.reduce(0) { $0 + exp($1 - m) }
            for c in 0..<cols {
                #expect(abs(Double(x[r * cols + c]) - exp(row[c] - m) / denom) < 1e-6)
            }
        }
    }

    @Test func layerNormMatchesDefinition() {
        let cols = 50
        var x = (0..<(2 * cols)).map { Float($0 % 7) - 3 }
        let residual = (0..<(2 * cols)).map { Float($0) * 0.01 }
        let gamma = (0..<cols).map { 1 + Float($0) * 0.1 }
        let beta = (0..<cols).map { Float($0) * -0.05 }
        let before = zip(x, residual).map { Double($0) + Double($1) }
        sx_add_layer_norm(&x, residual, 2, cols, gamma, beta, 1e-12)
        for r in 0..<2 {
            let row = Array(before[(r * cols)..<((r + 1) * cols)])
            let mean = row.reduce(0, +) / Double(cols)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(cols)
            for c in 0..<cols {
                let expected = (row[c] - mean) / variance.squareRoot() * Double(gamma[c]) + Double(beta[c])
                #expect(abs(Double(x[r * cols + c]) - expected) < 1e-5)
            }
        }
    }

    @Test func halfPrecisionConversions() {
        // f16: 1.0, -2.0, 65504 (max), smallest subnormal 2^-24, +inf, 0.
        let f16: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x0000]
        var out = [Float](repeating: 0, count: f16.count)
        sx_f16_to_f32(f16, &out, f16.count)
        #expect(out == [1.0, -2.0, 65504, Float(pow(2.0, -24.0)), .infinity, 0])
        // bf16: the upper half of an f32.
        let values: [Float] = [1.5, -3.25, 0.15625, 1e30]
        let bf16 = values.map { UInt16($0.bitPattern >> 16) }
        sx_bf16_to_f32(bf16, &out, bf16.count)
        #expect(Array(out.prefix(4)) == values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) })
    }
}

/// The bf16 GEMM on every path this CPU can run (AVX512_BF16, AVX2 + FMA, portable): bit-identical
/// to each other (denormal and near-denormal sums included), close to a float64 reference over the
/// same bf16-rounded inputs, and each path's rows independent of the batch they are computed in.
@Suite struct BF16GemmTests {
    static func bf16(_ x: Float) -> Float {
        var u = x.bitPattern
        u = u &+ 0x7fff &+ ((u >> 16) & 1)
        return Float(bitPattern: u & 0xffff0000)
    }

    struct Case { let m: Int, n: Int, k: Int }
    static let cases = [Case(m: 1, n: 1, k: 1), Case(m: 2, n: 31, k: 7), Case(m: 3, n: 32, k: 64), Case(m: 5, n: 33, k: 385),
                        Case(m: 13, n: 100, k: 384), Case(m: 49, n: 64, k: 1536), Case(m: 97, n: 40, k: 2)]

    /// The paths to check here: name and function (nil where this CPU lacks it).
    static func paths() -> [(String, (Int, Int, Int, UnsafePointer<Float>, Int, UnsafeRawPointer, UnsafeMutablePointer<Float>, Int, Int32) -> Void)] {
        var all: [(String, (Int, Int, Int, UnsafePointer<Float>, Int, UnsafeRawPointer, UnsafeMutablePointer<Float>, Int, Int32) -> Void)] = [
            ("default", { sx_gemm_bf16($0, $1, $2, $3, $4, $5, $6, $7, $8) }),
            ("portable", { sx_gemm_bf16_portable($0, $1, $2, $3, $4, $5, $6, $7, $8) }),
        ]
        if sx_gemm_bf16_avx2(0, 0, 0, nil, 0, nil, nil, 0, 0) == 0 {
            all.append(("avx2", { _ = sx_gemm_bf16_avx2($0, $1, $2, $3, $4, $5, $6, $7, $8) }))
        }
        return all
    }

    @Test func everyPathMatchesTheReference() throws {
        var rng = SystemRandomNumberGenerator()
        for c in Self.cases {
            let x = (0..<c.m * c.k).map { _ in Float.random(in: -2...2, using: &rng) }
            let w = (0..<c.n * c.k).map { _ in Float.random(in: -1...1, using: &rng) }
            let packed = UnsafeMutableRawPointer.allocate(byteCount: sx_bf16_packed_size(c.n, c.k), alignment: 64)
            defer { packed.deallocate() }
            sx_bf16_pack_weights(w, c.n, c.k, packed)
            var reference = [Double](repeating: 0, count: c.m * c.n), scale = reference
            for i in 0..<c.m {
                for j in 0..<c.n {
                    for p in 0..<c.k {
                        let prod = Double(Self.bf16(x[i * c.k + p])) * Double(Self.bf16(w[j * c.k + p]))
                        reference[i * c.n + j] += prod
                        scale[i * c.n + j] += abs(prod)
                    }
                }
            }
            for (name, gemm) in Self.paths() {
                for accumulate in [0, 1] as [Int32] {
                    var y = [Float](repeating: accumulate == 1 ? 0.5 : .nan, count: c.m * c.n)
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in gemm(c.m, c.n, c.k, xp.baseAddress!, c.k, packed, yp.baseAddress!, c.n, accumulate) }
                    }
                    var worst = 0.0
                    for i in 0..<y.count {
                        let expected = reference[i] + (accumulate == 1 ? 0.5 : 0)
                        // Relative to every magnitude summed: with accumulate, the 0.5 already in y too
                        // (its addition rounds at 0.5's scale, not at the products').
                        worst = max(worst, abs(Double(y[i]) - expected) / (scale[i] + (accumulate == 1 ? 0.5 : 0) + 1e-30))
                    }
                    #expect(worst < 1e-5, "\(name) m \(c.m) n \(c.n) k \(c.k) accumulate \(accumulate): relative error \(worst)")
                }
            }
        }
    }

    /// Magnitudes from normal to denormal, so that products and partial sums cross the denormal
    /// range that vdpbf16ps flushes: every path must flush them alike.
    @Test(arguments: [Float(1), 1e-19, 1e-20, 3e-39])
    func everyPathGivesTheSameBits(_ magnitude: Float) throws {
        var rng = SystemRandomNumberGenerator()
        for c in Self.cases {
            let x = (0..<c.m * c.k).map { _ in Float.random(in: -2...2, using: &rng) * magnitude }
            let w = (0..<c.n * c.k).map { _ in Float.random(in: -1...1, using: &rng) * (magnitude < 1e-30 ? 1e30 : magnitude) }
            let packed = UnsafeMutableRawPointer.allocate(byteCount: sx_bf16_packed_size(c.n, c.k), alignment: 64)
            defer { packed.deallocate() }
            sx_bf16_pack_weights(w, c.n, c.k, packed)
            for accumulate in [0, 1] as [Int32] {
                var results: [(String, [UInt32])] = []
                for (name, gemm) in Self.paths() {
                    var y = [Float](repeating: accumulate == 1 ? magnitude * magnitude * 0.5 : .nan, count: c.m * c.n)
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in gemm(c.m, c.n, c.k, xp.baseAddress!, c.k, packed, yp.baseAddress!, c.n, accumulate) }
                    }
                    results.append((name, y.map(\.bitPattern)))
                }
                for (name, bits) in results.dropFirst() {
                    #expect(bits == results[0].1, "\(name) differs from \(results[0].0): m \(c.m) n \(c.n) k \(c.k) magnitude \(magnitude)")
                }
            }
        }
    }

    @Test func rowsDoNotDependOnTheBatch() throws {
        var rng = SystemRandomNumberGenerator()
        let (m, n, k) = (37, 96, 385)
        let x = (0..<m * k).map { _ in Float.random(in: -2...2, using: &rng) }
        let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: sx_bf16_packed_size(n, k), alignment: 64)
        defer { packed.deallocate() }
        sx_bf16_pack_weights(w, n, k, packed)
        for (name, gemm) in Self.paths() {
            var all = [Float](repeating: 0, count: m * n)
            x.withUnsafeBufferPointer { xp in all.withUnsafeMutableBufferPointer { gemm(m, n, k, xp.baseAddress!, k, packed, $0.baseAddress!, n, 0) } }
            for i in 0..<m {
                var row = [Float](repeating: 0, count: n)
                x.withUnsafeBufferPointer { xp in row.withUnsafeMutableBufferPointer { gemm(1, n, k, xp.baseAddress! + i * k, k, packed, $0.baseAddress!, n, 0) } }
                #expect(row == Array(all[i * n..<(i + 1) * n]), "\(name): row \(i) alone differs from the batch")
            }
        }
    }
}
