import Foundation
import Testing
@testable import Embedding

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let defaultModel = repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2")

/// The default model, loaded once for all tests.
let sharedEmbedder: Result<Embedder, Error> = Result {
    guard FileManager.default.fileExists(atPath: defaultModel.path) else {
        throw EmbeddingError(.modelNotFound, "the default model is missing at \(defaultModel.path): run tools/setup.sh")
    }
    return try Embedder(folder: defaultModel)
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y)
    }
    return dot / max((na * nb).squareRoot(), 1e-30)
}

/// A copy of the default model folder (weights linked, not copied) to damage in a test.
func modelCopy() throws -> URL {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("sextant-model-\(UUID().uuidString)")
    try fm.createDirectory(at: dir, withIntermediateDirectories: true)
    for name in try fm.contentsOfDirectory(atPath: defaultModel.path) {
        let src = defaultModel.appendingPathComponent(name)
        if name == "model.safetensors" {
            try fm.createSymbolicLink(at: dir.appendingPathComponent(name), withDestinationURL: src)
        } else {
            try fm.copyItem(at: src, to: dir.appendingPathComponent(name))
        }
    }
    return dir
}

struct GoldenEmbeddings: Decodable {
    struct Case: Decodable { let text: String; let embedding: [Float] }
    struct Query: Decodable { let text: String; let instruct: String; let input: String; let embedding: [Float] }
    let dims: Int
    let cases: [Case]
    let queries: [Query]
}

@Suite struct EmbedderTests {
    /// Cosine ≥ 0.99999 with sentence-transformers on every golden string
    /// (fixtures/embeddings, made by tools/make-goldens.py).
    @Test func parityWithSentenceTransformers() throws {
        let embedder = try sharedEmbedder.get()
        let url = repoRoot.appendingPathComponent("fixtures/embeddings/all-MiniLM-L6-v2.golden.json")
        let golden = try JSONDecoder().decode(GoldenEmbeddings.self, from: Data(contentsOf: url))
        #expect(golden.dims == embedder.dimensions)
        #expect(golden.cases.count >= 300)
        let vectors = embedder.embed(golden.cases.map(\.text))
        var worst = 1.0
        for (c, v) in zip(golden.cases, vectors) {
            let cos = cosine(c.embedding, v)
            worst = min(worst, cos)
            if cos < 0.99999 { Issue.record("cosine \(cos) for \(c.text.debugDescription.prefix(100))") }
        }
        #expect(worst >= 0.99999)

        #expect(!golden.queries.isEmpty)
        for q in golden.queries {
            #expect(embedder.prompt(for: q.text, kind: .query(instruct: q.instruct)) == q.input)
            let v = embedder.embed([q.text], kind: .query(instruct: q.instruct))[0]
            #expect(cosine(q.embedding, v) >= 0.99999, "query \(q.input)")
        }
    }

    @Test func batchingDoesNotChangeVectors() throws {
        let embedder = try sharedEmbedder.get()
        let texts = (0..<40).map { i in String(repeating: "word\(i) and some text ", count: 1 + (i * 7) % 60) }
        let together = embedder.embed(texts)
        for i in [0, 13, 39] {
            let alone = embedder.embed([texts[i]])[0]
            #expect(cosine(alone, together[i]) > 0.999999)
        }
        // Vectors are unit length and in input order.
        for v in together { #expect(abs(cosine(v, v) - 1) < 1e-9 && abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4) }
        #expect(cosine(together[0], together[1]) < 0.999)
    }

    @Test func longInputsAreTruncatedToTheModelLimit() throws {
        let embedder = try sharedEmbedder.get()
        #expect(embedder.maxTokens == 256)
        let long = String(repeating: "lorem ipsum dolor sit amet ", count: 2000)
        #expect(embedder.tokens(for: long).count == 256)
        let v = embedder.embed([long, "short"])
        #expect(v[0].count == 384 && v[1].count == 384)
    }

    @Test func batchPlanRespectsTheTokenBudget() {
        let lengths = [5, 300, 0, 120, 120, 7, 256]
        let batches = Embedder.batches(lengths: lengths, budget: 256)
        #expect(batches.flatMap { $0 }.sorted() == [0, 1, 3, 4, 5, 6])   // every non-empty input once
        for b in batches where b.count > 1 {
            #expect(b.reduce(0) { $0 + lengths[$1] } <= 256)
        }
        #expect(batches.first == [1])   // longest first, alone when over budget
    }

    @Test func missingOrUnsupportedModelsGiveOneClearError() throws {
        let missing = #expect(throws: EmbeddingError.self) {
            try Embedder(folder: URL(fileURLWithPath: "/nonexistent/model"))
        }
        #expect(missing?.message.contains("tools/setup.sh") == true)

        _ = try sharedEmbedder.get()
        let dir = try modelCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.json")
        let original = try Data(contentsOf: config)

        try Data(#"{"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"]}"#.utf8).write(to: config)
        let arch = #expect(throws: EmbeddingError.self) { try Embedder(folder: dir) }
        #expect(arch?.message.contains("GPTNeoXForCausalLM") == true)

        try Data("{ broken".utf8).write(to: config)
        let broken = #expect(throws: EmbeddingError.self) { try Embedder(folder: dir) }
        #expect(broken?.message.contains("config.json") == true)

        // A config whose vocabulary disagrees with the weights: the tensor shape error names both.
        let json = String(decoding: original, as: UTF8.self).replacingOccurrences(of: "\"vocab_size\": 30522", with: "\"vocab_size\": 1000")
        try Data(json.utf8).write(to: config)
        #expect(throws: (any Error).self) { try Embedder(folder: dir) }
        try original.write(to: config)

        // A truncated weights file.
        let weights = dir.appendingPathComponent("model.safetensors")
        try FileManager.default.removeItem(at: weights)
        let head = try FileHandle(forReadingFrom: defaultModel.appendingPathComponent("model.safetensors")).read(upToCount: 1_000_000)!
        try head.write(to: weights)
        #expect(throws: (any Error).self) { try Embedder(folder: dir) }
    }
}
