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
