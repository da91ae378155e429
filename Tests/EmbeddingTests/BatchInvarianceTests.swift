import Foundation
import Testing
@testable import Embedding
import Inference

/// A vector depends on the text and the model only: not on the other texts of its batch, its
/// position in the packed batch, the order of the inputs or the number of threads.
@Suite struct BatchInvarianceTests {
    /// A small deterministic generator for shuffles (SplitMix64).
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    /// Embeds every text alone, then in shuffled calls of several sizes with 1 and 2 threads;
    /// returns the texts whose vectors were not bit-identical to the lone one.
    static func mismatches(texts: [String], kind: InputKind = .passage, make: (Int) throws -> Embedder) throws -> [String] {
        let single = try make(1)
        let alone = texts.map { bits(single.embed([$0], kind: kind)[0]) }
        var bad: Set<String> = []
        var rng = SeededGenerator(state: 42)
        for threads in [1, 2] {
            let embedder = threads == 1 ? single : try make(threads)
            for size in [2, 7, 32, texts.count] {
                let order = Array(texts.indices).shuffled(using: &rng)
                for start in stride(from: 0, to: order.count, by: size) {
                    let members = Array(order[start..<min(order.count, start + size)])
                    let vectors = embedder.embed(members.map { texts[$0] }, kind: kind)
                    for (i, v) in zip(members, vectors) where bits(v) != alone[i] { bad.insert(texts[i]) }
                }
            }
        }
        return bad.sorted()
    }

    /// The golden strings (300+, many scripts and lengths) with the default BERT model.
    @Test func bertVectorsAreBatchInvariant() throws {
        let url = repoRoot.appendingPathComponent("fixtures/embeddings/all-MiniLM-L6-v2.golden.json")
        let golden = try JSONDecoder().decode(GoldenEmbeddings.self, from: Data(contentsOf: url))
        let texts = Array(Set(golden.cases.map(\.text))).sorted()
        #expect(texts.count >= 300)
        let bad = try Self.mismatches(texts: texts) { try Embedder(folder: defaultModel, threads: $0) }
        #expect(bad.isEmpty, "\(bad.count) texts changed with the batch, e.g. \(bad.prefix(3))")
    }

    /// The same text twice in one call gets the same vector (the first symptom users saw).
    @Test func duplicatesInOneCallAreIdentical() throws {
        let embedder = try sharedEmbedder.get()
        let text = "Simmer vegetables in stock and season with salt."
        let v = embedder.embed([text, "Knead the dough.", "A swept wing.", text, text])
        #expect(Self.bits(v[0]) == Self.bits(v[3]))
        #expect(Self.bits(v[0]) == Self.bits(v[4]))
    }

    /// bf16 linear layers and int8 ones (on whichever path this CPU and SEXTANT_CPU_PATH give).
    @Test(arguments: [Precision.bf16, .int8])
    func bertLowPrecisionVectorsAreBatchInvariant(_ precision: Precision) throws {
        let url = repoRoot.appendingPathComponent("fixtures/embeddings/all-MiniLM-L6-v2.golden.json")
        let golden = try JSONDecoder().decode(GoldenEmbeddings.self, from: Data(contentsOf: url))
        let texts = Array(Set(golden.cases.map(\.text))).sorted().prefix(120)
        let bad = try Self.mismatches(texts: Array(texts)) { try Embedder(folder: defaultModel, threads: $0, precision: precision) }
        #expect(bad.isEmpty, "\(precision): \(bad.count) texts changed with the batch, e.g. \(bad.prefix(3))")
    }

    /// Decoders (Mistral, Llama, Qwen2, Qwen3): passages and instruction queries, f32, bf16 and int8.
    @Test(arguments: decoderNames, [Precision.f32, .bf16, .int8])
    func decoderVectorsAreBatchInvariant(_ name: String, _ precision: Precision) throws {
        let (_, golden) = try loadDecoder(name)
        let folder = repoRoot.appendingPathComponent("fixtures/decoders/\(name)")
        var texts = golden.passages.map(\.text) + golden.icl_queries.map(\.query) + golden.instruct_queries.map(\.query)
        texts = Array(Set(texts.filter { !$0.isEmpty })).sorted()
        #expect(texts.count >= 10)
        let bad = try Self.mismatches(texts: texts) { try Embedder(folder: folder, threads: $0, precision: precision) }
        #expect(bad.isEmpty, "\(name) \(precision): \(bad.count) texts changed with the batch, e.g. \(bad.prefix(3))")
    }

    /// ICL queries whose examples come from the prefix cache stay within 1e-6 of the same prompt
    /// computed in one pass, and are bit-identical from one call to the next.
    @Test(arguments: decoderNames)
    func prefixCachedQueriesMatchOnePass(_ name: String) throws {
        let (embedder, golden) = try loadDecoder(name, format: .bgeICL)
        #expect(!golden.icl_queries.isEmpty)
        for q in golden.icl_queries {
            let kind = InputKind.query(instruct: q.task, examples: q.examples)
            let cached = embedder.embed([q.query], kind: kind)[0]
            let again = embedder.embed([q.query, "another query"], kind: kind)[0]
            let onePass = embedder.embed(tokenized: [embedder.tokens(for: q.query, kind: kind)])[0]
            #expect(Self.bits(cached) == Self.bits(again), "\(name): \(q.query.debugDescription)")
            let worst = zip(cached, onePass).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-6, "\(name): \(q.query.debugDescription) differs by \(worst) from one pass")
        }
    }
}
