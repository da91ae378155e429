import Foundation
import Testing
@testable import Embedding

/// Reference outputs of transformers for a tiny random-weight decoder
/// (fixtures/decoders/NAME.golden.json, made by tools/make-decoder-fixtures.py).
struct DecoderGolden: Decodable {
    struct Passage: Decodable { let text: String; let ids: [Int32]; let embedding: [Float] }
    struct ICLQuery: Decodable {
        let task: String; let examples: [Example]; let query: String; let prompt: String
        let ids: [Int32]; let embedding: [Float]
    }
    struct InstructQuery: Decodable {
        let format: String; let task: String; let query: String; let prompt: String
        let ids: [Int32]; let embedding: [Float]
    }
    struct Refine: Decodable { let text: String; let k: Int; let ids: [Int32]; let embedding: [Float] }
    let passages: [Passage]
    let icl_queries: [ICLQuery]
    let instruct_queries: [InstructQuery]
    let refine: [Refine]?
}

let decoderNames = ["tiny-mistral", "tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-sharded"]

func loadDecoder(_ name: String, format: PromptFormat? = nil) throws -> (Embedder, DecoderGolden) {
    let folder = repoRoot.appendingPathComponent("fixtures/decoders/\(name)")
    let golden = try JSONDecoder().decode(DecoderGolden.self,
                                          from: Data(contentsOf: repoRoot.appendingPathComponent("fixtures/decoders/\(name).golden.json")))
    return (try Embedder(folder: folder, promptFormat: format), golden)
}

@Suite struct DecoderEmbedderTests {
    @Test(arguments: decoderNames)
    func passagesMatchTransformers(_ name: String) throws {
        let (embedder, golden) = try loadDecoder(name)
        #expect(embedder.folder.isDecoder)
        #expect(embedder.folder.pooling == .lastToken)
        #expect(!golden.passages.isEmpty)
        let vectors = embedder.embed(golden.passages.map(\.text))
        for (p, v) in zip(golden.passages, vectors) {
            #expect(embedder.tokens(for: p.text) == p.ids, "\(name): ids of \(p.text.prefix(60).debugDescription)")
            #expect(cosine(p.embedding, v) >= 0.9999, "\(name): \(p.text.prefix(60).debugDescription)")
        }
    }

    @Test(arguments: decoderNames)
    func iclQueriesMatchTransformers(_ name: String) throws {
        let (embedder, golden) = try loadDecoder(name, format: .bgeICL)
        #expect(!golden.icl_queries.isEmpty)
        for q in golden.icl_queries {
            let kind = InputKind.query(instruct: q.task, examples: q.examples)
            #expect(embedder.prompt(for: q.query, kind: kind) == q.prompt)
            #expect(embedder.tokens(for: q.query, kind: kind) == q.ids, "\(name): ids of \(q.prompt.debugDescription)")
            // Embedded twice: the second time the examples come from the prefix cache.
            for _ in 0..<2 {
                let v = embedder.embed([q.query], kind: kind)[0]
                #expect(cosine(q.embedding, v) >= 0.9999, "\(name): \(q.prompt.debugDescription)")
            }
        }
    }

    @Test(arguments: decoderNames)
    func instructionFormatsMatchTransformers(_ name: String) throws {
        let golden = try loadDecoder(name).1
        #expect(!golden.instruct_queries.isEmpty)
        for q in golden.instruct_queries {
            let format = try #require(PromptFormat(rawValue: q.format))
            let embedder = try loadDecoder(name, format: format).0
            let kind = InputKind.query(instruct: q.task)
            #expect(embedder.prompt(for: q.query, kind: kind) == q.prompt)
            #expect(embedder.tokens(for: q.query, kind: kind) == q.ids)
            #expect(cosine(q.embedding, embedder.embed([q.query], kind: kind)[0]) >= 0.9999, "\(name): \(q.prompt.debugDescription)")
        }
    }

    @Test(arguments: decoderNames)
    func refinementMatchesTransformers(_ name: String) throws {
        let (embedder, golden) = try loadDecoder(name)
        guard let cases = golden.refine, !cases.isEmpty else {
            // A bare decoder (no LM head, untied) must refuse refinement clearly.
            #expect(throws: EmbeddingError.self) { try embedder.embedRefined(["x"], steps: 2) }
            return
        }
        for c in cases {
            #expect(embedder.tokenizer.tokenize(c.text) == c.ids)
            let v = try embedder.embedRefined([c.text], steps: c.k)[0]
            #expect(cosine(c.embedding, v) >= 0.9999, "\(name): k=\(c.k) \(c.text.prefix(60).debugDescription)")
        }
    }

    @Test func batchesMixPrefixedAndPlainLengths() throws {
        let (embedder, golden) = try loadDecoder("tiny-qwen3")
        let texts = golden.passages.map(\.text)
        let together = embedder.embed(texts)
        for (i, t) in texts.enumerated() {
            #expect(cosine(embedder.embed([t])[0], together[i]) > 0.99999)
        }
    }
}

@Suite struct DecoderEdgeTests {
    /// A copy of a fixture model folder whose config.json is edited by `edit`.
    func editedCopy(_ name: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
        let fm = FileManager.default
        let src = repoRoot.appendingPathComponent("fixtures/decoders/\(name)")
        let dst = fm.temporaryDirectory.appendingPathComponent("sextant-\(name)-\(UUID().uuidString)")
        try fm.copyItem(at: src, to: dst)
        let configURL = dst.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        return dst
    }

    @Test func unsupportedRopeScalingAndActivationAreNamed() throws {
        let yarn = try editedCopy("tiny-qwen3") { $0["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0] }
        let e1 = #expect(throws: (any Error).self) { try Embedder(folder: yarn) }
        #expect("\(e1!)".contains("yarn"))
        let gelu = try editedCopy("tiny-mistral") { $0["hidden_act"] = "gelu_pytorch_tanh" }
        let e2 = #expect(throws: (any Error).self) { try Embedder(folder: gelu) }
        #expect("\(e2!)".contains("gelu_pytorch_tanh"))
        let gemma = try editedCopy("tiny-llama") { $0["model_type"] = "gemma2"; $0["architectures"] = ["Gemma2ForCausalLM"] }
        let e3 = #expect(throws: (any Error).self) { try Embedder(folder: gemma) }
        #expect("\(e3!)".contains("Gemma2ForCausalLM"))
    }

    /// A long ICL query is cut, never its examples; the prompt still ends with the template and EOS.
    @Test func longQueriesAreCutButExamplesKept() throws {
        let (embedder, _) = try loadDecoder("tiny-qwen2", format: .bgeICL)
        let examples = [Example(query: "what is lift", response: "Lift is the force that holds an aircraft up."),
                        Example(query: "what is drag", response: "Drag is the force that resists motion through air.")]
        let long = String(repeating: "a very long question about wings and engines ", count: 400)
        let kind = InputKind.query(instruct: "Answer questions", examples: examples)
        let ids = embedder.tokens(for: long, kind: kind)
        #expect(ids.count <= embedder.maxTokens)
        #expect(ids.last == embedder.eosToken)
        let prefix = embedder.tokenizer.tokenize(PromptFormat.iclPrefix(task: "Answer questions", examples: examples))
        #expect(Array(ids.prefix(prefix.count - 1)) == Array(prefix.prefix(prefix.count - 1)))
        let suffix = embedder.tokenizer.tokenize("\n<response>")
        #expect(Array(ids.dropLast().suffix(suffix.count)) == suffix)
        #expect(embedder.embed([long], kind: kind)[0].count == embedder.dimensions)
    }
}
