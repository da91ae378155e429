import Foundation
import Testing

/// Same bits on every CPU: `sextant embed` on every code path this CPU has (SEXTANT_CPU_PATH =
/// best, avx2, portable) must reproduce, bit for bit, the vectors the portable path gave when
/// the fixtures were made (tools/make-bit-fixtures.py), for each architecture and precision. A
/// kernel whose rounding depends on the CPU, its vector width or a library's choice fails here on
/// the machine where it differs.
@Suite struct BitFixtureTests {
    static let models = ["all-MiniLM-L6-v2": "models/all-MiniLM-L6-v2", "tiny-xlmr-embed": "fixtures/rerankers/tiny-xlmr-embed",
                         "tiny-llama": "fixtures/decoders/tiny-llama", "tiny-mistral": "fixtures/decoders/tiny-mistral",
                         "tiny-qwen2": "fixtures/decoders/tiny-qwen2", "tiny-qwen3": "fixtures/decoders/tiny-qwen3"]
    static let precisions = ["f32", "bf16", "int8"]

    /// The ceilings that give this CPU distinct paths (the best one, AVX2 below AVX-512, portable).
    static let ceilings: [String] = {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ").map(String.init)) } ?? []
        var all = ["best"]
        if flags.contains("avx512f") && flags.contains("avx2") { all.append("avx2") }
        if flags.contains("avx2") || flags.contains("avx512f") { all.append("portable") }
        return all
    }()

    /// The bit patterns of `sextant embed`'s vectors (each float parsed from its shortest form,
    /// which Float(String) rounds exactly).
    static func vectorBits(_ stdout: String) -> [[UInt32]] {
        stdout.split(separator: "\n").map { line in
            guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return [] }
            return line[line.index(after: open)..<close].split(separator: ",").map { Float(String($0))?.bitPattern ?? 0x7fc0_0001 }
        }
    }

    @Test(arguments: models.keys.sorted(), precisions)
    func everyPathReproducesThePortableBits(_ model: String, _ precision: String) throws {
        let fixture = try Data(contentsOf: repoRoot.appendingPathComponent("fixtures/bits/\(model).\(precision).f32le"))
        let input = try Data(contentsOf: repoRoot.appendingPathComponent("fixtures/bits/texts.jsonl"))
        let texts = input.split(separator: UInt8(ascii: "\n")).count
        #expect(texts >= 300)
        let expected: [UInt32] = fixture.withUnsafeBytes { raw in
            (0..<fixture.count / 4).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
        }
        #expect(expected.count % texts == 0 && !expected.isEmpty, "\(model) \(precision): fixture size \(fixture.count) for \(texts) texts")
        let dims = expected.count / texts
        for ceiling in Self.ceilings {
            let r = try runSextant(["embed", "--model", Self.models[model]!, "--precision", precision], input: input,
                                   environment: ["SEXTANT_CPU_PATH": ceiling])
            #expect(r.status == 0, "\(r.stderr)")
            let rows = Self.vectorBits(r.stdout)
            #expect(rows.count == texts, "\(model) \(precision) \(ceiling): \(rows.count) vectors for \(texts) texts")
            var differing: [Int] = []
            var worst: Float = 0
            for (i, row) in rows.enumerated() where i < texts {
                let want = expected[i * dims..<(i + 1) * dims]
                guard row.count != dims || !row.elementsEqual(want) else { continue }
                differing.append(i)
                for (a, b) in zip(row, want) { worst = max(worst, abs(Float(bitPattern: a) - Float(bitPattern: b))) }
            }
            #expect(differing.isEmpty, """
                \(model) \(precision) on path \(ceiling): \(differing.count) of \(texts) vectors differ from the portable bits \
                (first texts \(differing.prefix(5)), largest difference \(worst)); on \(CPUModel.name)
                """)
        }
    }

    /// `sextant cpu` reports the ceiling and the paths under it; a path variable with a value the
    /// kernels do not know is one clear error, before any work, instead of being ignored.
    @Test func ceilingsAreReportedAndUnknownValuesRefused() throws {
        for ceiling in Self.ceilings {
            let r = try runSextant(["cpu", "--json"], environment: ["SEXTANT_CPU_PATH": ceiling])
            #expect(r.status == 0, "\(r.stderr)")
            let fields = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: String] ?? [:]
            #expect(fields["ceiling"] == ceiling, "\(r.stdout)")
            if ceiling == "portable" { #expect(fields["f32_gemm"]?.hasPrefix("portable") == true && fields["int8_gemm"] == "portable") }
            if ceiling == "avx2" { #expect(fields["f32_gemm"]?.hasPrefix("AVX2") == true && fields["int8_gemm"]?.hasPrefix("AVX2") == true) }
        }
        for (name, value) in [("SEXTANT_CPU_PATH", "AVX2"), ("SEXTANT_I8_PATH", "vnni"), ("SEXTANT_F32_PATH", "blas"),
                              ("SEXTANT_VECTOR_PATH", " portable")] {
            let r = try runSextant(["embed"], input: Data("{\"text\": \"a\"}\n".utf8), environment: [name: value])
            #expect(r.status != 0 && r.stdout.isEmpty, "\(name)=\(value) was accepted")
            #expect(r.stderr.hasPrefix("error: \(name)") && r.stderr.contains("avx2, portable or best")
                    && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }
}

enum CPUModel {
    static let name: String = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1).last ?? "") } ?? "?"
}
