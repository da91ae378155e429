import Foundation
import Testing
@testable import Embedding
import Inference

/// XLM-RoBERTa embeddings, cross-encoders and LLM rerankers against tiny random-weight models
/// whose reference outputs sentence-transformers / transformers computed
/// (tools/make-reranker-fixtures.py → fixtures/rerankers).
@Suite struct CrossEncoderTests {
    static let dir = repoRoot.appendingPathComponent("fixtures/rerankers")

    struct EmbedGolden: Decodable {
        struct Text: Decodable { let text: String; let ids: [Int32]; let embedding: [Float]; let normalized: [Float] }
        let max_seq_length: Int
        let texts: [Text]
    }

    @Test func xlmRobertaEmbeddingsMatchSentenceTransformers() throws {
        let golden = try JSONDecoder().decode(EmbedGolden.self, from: Data(contentsOf: Self.dir.appendingPathComponent("tiny-xlmr-embed.golden.json")))
        let embedder = try Embedder(folder: Self.dir.appendingPathComponent("tiny-xlmr-embed"), threads: 2)
        #expect(embedder.maxTokens == golden.max_seq_length)
        let vectors = embedder.embed(golden.texts.map(\.text))
        #expect(golden.texts.count >= 20)
        for (t, v) in zip(golden.texts, vectors) {
            #expect(embedder.tokens(for: t.text) == t.ids, "ids of \(t.text.prefix(40).debugDescription)")
            #expect(cosine(t.normalized, v) >= 0.9999, "\(t.text.prefix(40).debugDescription): cosine \(cosine(t.normalized, v))")
        }
    }

    struct CrossGolden: Decodable {
        struct Pair: Decodable { let query: String; let passage: String; let ids: [Int32]; let type_ids: [Int32]?; let logits: [Double]; let score: Double }
        let max_length: Int
        let pairs: [Pair]
    }

    @Test(arguments: ["tiny-bert-cross", "tiny-xlmr-cross"])
    func crossEncoderScoresMatchCrossEncoderPredict(_ name: String) throws {
        let golden = try JSONDecoder().decode(CrossGolden.self, from: Data(contentsOf: Self.dir.appendingPathComponent("\(name).golden.json")))
        let model = try CrossEncoder(folder: Self.dir.appendingPathComponent(name), threads: 2)
        #expect(model.kind == .classifier && model.maxLength == golden.max_length)
        #expect(golden.pairs.count >= 20)
        // Passages of one query are scored in one call (batched); each pair on its own too.
        for (query, group) in Dictionary(grouping: golden.pairs, by: \.query) {
            let scores = model.scores(query: query, passages: group.map(\.passage))
            let logits = model.logits(query: query, passages: group.map(\.passage))
            for (i, p) in group.enumerated() {
                let tokens = model.tokens(query: p.query, passage: p.passage)
                #expect(tokens.ids == p.ids, "\(name): ids of \(p.query.prefix(30)) / \(p.passage.prefix(30))")
                if let types = p.type_ids { #expect(tokens.typeIds == types, "\(name): type ids") }
                #expect(abs(scores[i] - p.score) <= 1e-4, "\(name): score \(scores[i]) vs \(p.score) for \(p.query.debugDescription) / \(p.passage.prefix(40).debugDescription) \(p.ids.count) ids")
                #expect(abs(logits[i] - p.logits[0]) <= 1e-4, "\(name): logit \(logits[i]) vs \(p.logits[0])")
            }
        }
        // The scores spread: a check that the fixture can tell a wrong model from a right one.
        let spread = (golden.pairs.map(\.score).max() ?? 0) - (golden.pairs.map(\.score).min() ?? 0)
        #expect(spread > 1e-3)
    }

    struct YesNoGolden: Decodable {
        struct Pair: Decodable {
            let instruction: String; let query: String; let passage: String; let ids: [Int32]
            let logit_yes: Double; let logit_no: Double; let score: Double
        }
        let max_length: Int
        let pairs: [Pair]
    }

    @Test func qwen3RerankerScoresMatchTheReference() throws {
        let golden = try JSONDecoder().decode(YesNoGolden.self, from: Data(contentsOf: Self.dir.appendingPathComponent("tiny-qwen3-reranker.golden.json")))
        let model = try CrossEncoder(folder: Self.dir.appendingPathComponent("tiny-qwen3-reranker"), threads: 2, maxLength: golden.max_length)
        #expect(model.kind == .yesNo)
        #expect(golden.pairs.count >= 10)
        for p in golden.pairs {
            #expect(model.tokens(query: p.query, passage: p.passage, instruction: p.instruction).ids == p.ids, "ids of \(p.query.prefix(30))")
        }
        let grouped = Dictionary(grouping: golden.pairs) { "\($0.instruction)\u{0}\($0.query)" }
        for (_, group) in grouped {
            let scores = model.scores(query: group[0].query, passages: group.map(\.passage), instruction: group[0].instruction)
            let logits = model.logits(query: group[0].query, passages: group.map(\.passage), instruction: group[0].instruction)
            for (i, p) in group.enumerated() {
                #expect(abs(scores[i] - p.score) <= 1e-4, "score \(scores[i]) vs \(p.score) for \(p.query.prefix(30))")
                #expect(abs(logits[i] - (p.logit_yes - p.logit_no)) <= 1e-3)
            }
        }
        let spread = (golden.pairs.map(\.score).max() ?? 0) - (golden.pairs.map(\.score).min() ?? 0)
        #expect(spread > 1e-3)
    }

    /// The activation as sentence-transformers 6 (config_sentence_transformers.json), 4-5
    /// (config.json's sentence_transformers) and older versions (config.json) record it.
    @Test func activationFromEveryConfigLayout() throws {
        #expect(try CrossEncoder.usesSigmoid(config: [:], stConfig: [:], path: "m"))
        #expect(try !CrossEncoder.usesSigmoid(config: [:], stConfig: ["activation_fn": "torch.nn.modules.linear.Identity"], path: "m"))
        #expect(try !CrossEncoder.usesSigmoid(config: ["sentence_transformers": ["activation_fn": "torch.nn.modules.linear.Identity"]], stConfig: [:], path: "m"))
        #expect(try !CrossEncoder.usesSigmoid(config: ["sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"], stConfig: [:], path: "m"))
        #expect(try CrossEncoder.usesSigmoid(config: ["sbert_ce_default_activation_function": "torch.nn.modules.activation.Sigmoid"], stConfig: [:], path: "m"))
        let e = #expect(throws: EmbeddingError.self) {
            try CrossEncoder.usesSigmoid(config: [:], stConfig: ["activation_fn": "torch.nn.modules.activation.Tanh"], path: "m")
        }
        #expect(e?.message.contains("Tanh") == true)
    }

    /// The check `task add --rerank` runs (configs, tokenizer and tensor names only) agrees with loading.
    @Test func validateWithoutLoading() throws {
        for name in ["tiny-bert-cross", "tiny-xlmr-cross", "tiny-qwen3-reranker"] {
            try CrossEncoder.validate(folder: Self.dir.appendingPathComponent(name))
        }
        let e1 = #expect(throws: EmbeddingError.self) { try CrossEncoder.validate(folder: defaultModel) }
        #expect(e1?.message.contains("embedding model") == true)
        let e2 = #expect(throws: EmbeddingError.self) { try CrossEncoder.validate(folder: Self.dir.appendingPathComponent("tiny-bert-cross-3")) }
        #expect(e2?.message.contains("3 labels") == true)
        let e3 = #expect(throws: EmbeddingError.self) { try CrossEncoder.validate(folder: Self.dir.appendingPathComponent("tiny-xlmr-embed")) }
        #expect(e3?.message.contains("embedding model") == true)
    }

    @Test func foldersThatAreNotRerankersAreOneClearError() throws {
        // An embedding model (no classification head).
        let e1 = #expect(throws: EmbeddingError.self) { try CrossEncoder(folder: defaultModel) }
        #expect(e1?.message.contains("embedding model") == true)
        // A classifier with three labels.
        let e2 = #expect(throws: EmbeddingError.self) { try CrossEncoder(folder: Self.dir.appendingPathComponent("tiny-bert-cross-3")) }
        #expect(e2?.message.contains("3 labels") == true)
        // A missing folder.
        #expect(throws: EmbeddingError.self) { try CrossEncoder(folder: Self.dir.appendingPathComponent("no-such-model")) }
        // A tokenizer that does not belong to the weights (ids beyond the model's vocabulary).
        let fm = FileManager.default
        let mixed = fm.temporaryDirectory.appendingPathComponent("sextant-cross-\(UUID().uuidString)")
        try fm.copyItem(at: Self.dir.appendingPathComponent("tiny-bert-cross"), to: mixed)
        try fm.removeItem(at: mixed.appendingPathComponent("tokenizer.json"))
        try fm.copyItem(at: defaultModel.appendingPathComponent("tokenizer.json"), to: mixed.appendingPathComponent("tokenizer.json"))
        let e4 = #expect(throws: EmbeddingError.self) { try CrossEncoder(folder: mixed) }
        #expect(e4?.message.contains("do not belong together") == true)
    }
}
