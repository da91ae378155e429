import Foundation
import Testing
@testable import Embedding
import Inference

/// `--precision int8` against the f32 reference outputs: cosine ≥ 0.999 to sentence-transformers
/// (BERT) and to transformers (decoders) on every golden text.
@Suite struct Int8EmbedderTests {
    @Test func bertStaysWithinCosine0999OfTheReference() throws {
        let embedder = try Embedder(folder: defaultModel, precision: .int8)
        let url = repoRoot.appendingPathComponent("fixtures/embeddings/all-MiniLM-L6-v2.golden.json")
        let golden = try JSONDecoder().decode(GoldenEmbeddings.self, from: Data(contentsOf: url))
        #expect(golden.cases.count >= 300)
        let vectors = embedder.embed(golden.cases.map(\.text))
        var worst = 1.0, sum = 0.0
        for (c, v) in zip(golden.cases, vectors) {
            let cos = cosine(c.embedding, v)
            worst = min(worst, cos)
            sum += cos
            if cos < 0.999 { Issue.record("cosine \(cos) for \(c.text.debugDescription.prefix(100))") }
        }
        // Not the f32 vectors either: the quantization is really applied.
        #expect(worst < 0.99999 && sum / Double(golden.cases.count) < 0.999999, "int8 gave f32's vectors (worst \(worst))")
    }

    @Test(arguments: decoderNames)
    func decodersStayWithinCosine0999OfTheReference(_ name: String) throws {
        let folder = repoRoot.appendingPathComponent("fixtures/decoders/\(name)")
        let (_, golden) = try loadDecoder(name)
        let embedder = try Embedder(folder: folder, precision: .int8)
        let vectors = embedder.embed(golden.passages.map(\.text))
        #expect(!golden.passages.isEmpty)
        for (p, v) in zip(golden.passages, vectors) {
            #expect(cosine(p.embedding, v) >= 0.999, "\(name): \(p.text.prefix(60).debugDescription)")
        }
    }
}
