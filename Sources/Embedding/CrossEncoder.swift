import Foundation
import Inference
import Tokenizers

/// A reranker that reads the query and each passage together and scores the pair, exactly as
/// the reference computes it:
/// - **cross-encoders** (`BertForSequenceClassification`, `XLMRobertaForSequenceClassification`,
///   as sentence-transformers' `CrossEncoder.predict`): the pair through the tokenizer's pair
///   template, `longest_first` truncation, the classifier's one logit, then the model's
///   activation (sigmoid unless its config names `Identity`);
/// - **LLM rerankers** (Qwen3-Reranker on a Qwen3/Qwen2/Llama/Mistral decoder with an LM head):
///   the model's judge prompt with the instruction, query and document, scored by the
///   probability of "yes" against "no" at the last position.
public final class CrossEncoder: @unchecked Sendable {   // immutable after init; scratch per call
    public enum Kind: String, Sendable {
        case classifier = "cross-encoder"
        case yesNo = "llm-reranker"
    }

    public let folder: ModelFolder
    public let kind: Kind
    /// Tokens per pair, special tokens (and the LLM prompt) included.
    public let maxLength: Int
    public let threads: Int
    /// Whether scores pass through a sigmoid (cross-encoders with one label, by default).
    public let sigmoid: Bool
    private let tokenizer: Tokenizer
    private let encoder: BertModel?
    private let decoder: DecoderModel?
    private let yesNo: (yes: Int32, no: Int32)
    private let promptPrefix: [Int32]
    private let promptSuffix: [Int32]
    /// Tokens per batch (pairs are sorted by length and packed up to this many tokens).
    private let batchTokens = 4096

    /// Qwen3-Reranker's default instruction.
    public static let defaultInstruction = "Given a web search query, retrieve relevant passages that answer the query"
    static let judgePrefix = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
    static let judgeSuffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

    /// Loads a reranker folder; a folder that holds an embedding model, a head with several
    /// labels or an architecture not supported is one clear error (found before any weight is read).
    public init(folder url: URL, threads: Int? = nil, precision: Precision = .f32, maxLength: Int? = nil) throws {
        let folder = try ModelFolder(url: url)
        self.folder = folder
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        tokenizer = try folder.loadTokenizer()
        let inspected = try Self.inspect(folder, tokenizer: tokenizer, weights: try WeightStore(folder: url))
        kind = inspected.kind
        sigmoid = inspected.sigmoid
        let model = try folder.loadModel(precision: precision)
        guard Int(tokenizer.idLimit) <= model.vocabSize else {
            throw EmbeddingError(.badConfig, "\(url.path): tokenizer.json has ids up to \(tokenizer.idLimit - 1) but the model's vocab_size is "
                + "\(model.vocabSize): tokenizer and weights do not belong together")
        }
        switch (kind, model) {
        case (.classifier, let bert as BertModel) where bert.classifier != nil:
            encoder = bert
            decoder = nil
            yesNo = (0, 0)
            promptPrefix = []
            promptSuffix = []
            self.maxLength = min(maxLength ?? folder.maxSequenceLength, bert.maxPositions)
        case (.yesNo, let llm as DecoderModel) where llm.hasLanguageModelHead:
            encoder = nil
            decoder = llm
            yesNo = (tokenizer.id(of: "yes")!, tokenizer.id(of: "no")!)   // checked by inspect
            promptPrefix = tokenizer.tokenize(Self.judgePrefix)
            promptSuffix = tokenizer.tokenize(Self.judgeSuffix)
            self.maxLength = min(maxLength ?? min(folder.maxSequenceLength, 8192), llm.maxPositions)
            guard self.maxLength > promptPrefix.count + promptSuffix.count else {
                throw EmbeddingError(.badInput, "max length \(self.maxLength) leaves no room for the reranker's prompt (\(promptPrefix.count + promptSuffix.count) tokens)")
            }
        default:
            throw EmbeddingError(.unsupportedModel, "\(url.path): the weights do not hold the \(kind.rawValue) the configs describe")
        }
    }

    /// Checks that a folder holds a reranker Sextant runs, from its configs, tokenizer and tensor
    /// names only (no weight is read): what `task add --rerank` checks before saving a task.
    public static func validate(folder url: URL) throws {
        let folder = try ModelFolder(url: url)
        _ = try inspect(folder, tokenizer: try folder.loadTokenizer(), weights: try WeightStore(folder: url))
    }

    /// Which kind of reranker a folder holds, and whether its scores go through a sigmoid.
    static func inspect(_ folder: ModelFolder, tokenizer: Tokenizer, weights: WeightStore) throws -> (kind: Kind, sigmoid: Bool) {
        let path = folder.url.path
        if let vocab = folder.config["vocab_size"] as? Int, Int(tokenizer.idLimit) > vocab {
            throw EmbeddingError(.badConfig, "\(path): tokenizer.json has ids up to \(tokenizer.idLimit - 1) but the model's vocab_size is "
                + "\(vocab): tokenizer and weights do not belong together")
        }
        let isEmbedder = FileManager.default.fileExists(atPath: folder.url.appendingPathComponent("modules.json").path)
            && folder.architectures.allSatisfy { !$0.hasSuffix("ForSequenceClassification") }
        if folder.isDecoder {
            guard !isEmbedder else {
                throw EmbeddingError(.unsupportedModel, "\(path): \(folder.name) is an embedding model (modules.json with pooling), not a reranker")
            }
            let tied = folder.config["tie_word_embeddings"] as? Bool ?? false
            guard weights.contains("lm_head.weight") || tied else {
                throw EmbeddingError(.unsupportedModel, "\(path): an LLM reranker needs an LM head (lm_head.weight or tied embeddings)")
            }
            guard tokenizer.id(of: "yes") != nil, tokenizer.id(of: "no") != nil else {
                throw EmbeddingError(.unsupportedModel, "\(path)/tokenizer.json: no 'yes' and 'no' tokens, so this is not a yes/no LLM reranker")
            }
            return (.yesNo, true)
        }
        let encoderFamily = ["bert", "roberta", "xlm-roberta"].contains(folder.modelType)
            || folder.architectures.contains { $0.hasPrefix("Bert") || $0.hasPrefix("XLMRoberta") || $0.hasPrefix("Roberta") }
        guard encoderFamily else {
            let named = folder.architectures.isEmpty ? "model_type '\(folder.modelType)'" : "architecture \(folder.architectures.joined(separator: ", "))"
            throw EmbeddingError(.unsupportedModel, "\(path): \(named) is not a reranker Sextant runs (supported: Bert/XLMRobertaForSequenceClassification "
                + "cross-encoders; Qwen3/Qwen2/Llama/Mistral yes/no LLM rerankers)")
        }
        guard let head = ["classifier.out_proj.weight", "classifier.weight"].first(where: weights.contains),
              let labels = weights.shape(of: head)?.first else {
            throw EmbeddingError(.unsupportedModel, "\(path): \(folder.name) is an embedding model (an encoder without a classification head), "
                + "not a reranker: give it as --model, or give a cross-encoder (…ForSequenceClassification) as the reranker")
        }
        guard labels == 1 else {
            let id2label = folder.config["id2label"] as? [String: Any] ?? [:]
            let names = (0..<labels).compactMap { id2label[String($0)] as? String }
            throw EmbeddingError(.unsupportedModel, "\(path): the classifier has \(labels) labels (\(names.joined(separator: ", "))); "
                + "a reranker scores with one label")
        }
        let sigmoid = try usesSigmoid(config: folder.config,
                                      stConfig: try ModelFolder.json(folder.url.appendingPathComponent("config_sentence_transformers.json")) ?? [:],
                                      path: path)
        return (.classifier, sigmoid)
    }

    /// sentence-transformers' activation for a one-label CrossEncoder: sigmoid unless the folder
    /// names another: `activation_fn` in `config_sentence_transformers.json` (v6), in
    /// `config.json`'s `sentence_transformers` (v4-5), or the older `sbert_ce_default_activation_function`.
    /// Another activation is refused.
    static func usesSigmoid(config: [String: Any], stConfig: [String: Any], path: String) throws -> Bool {
        let named = stConfig["activation_fn"] as? String
            ?? ((config["sentence_transformers"] as? [String: Any])?["activation_fn"] as? String)
            ?? config["sbert_ce_default_activation_function"] as? String
        guard let named else { return true }
        if named.hasSuffix(".Sigmoid") { return true }
        if named.hasSuffix(".Identity") { return false }
        throw EmbeddingError(.unsupportedModel, "\(path): the cross-encoder's activation \(named) is not supported (supported: Sigmoid, Identity)")
    }

    /// The token ids the model reads for one pair (after truncation), and their type ids.
    public func tokens(query: String, passage: String, instruction: String? = nil) -> (ids: [Int32], typeIds: [Int32]) {
        switch kind {
        case .classifier:
            return tokenizer.encodePair(query, passage, maxLength: maxLength)!
        case .yesNo:
            let body = "<Instruct>: \(instruction ?? Self.defaultInstruction)\n<Query>: \(query)\n<Document>: \(passage)"
            let room = maxLength - promptPrefix.count - promptSuffix.count
            let ids = promptPrefix + tokenizer.tokenize(body).prefix(room) + promptSuffix
            return (ids, [Int32](repeating: 0, count: ids.count))
        }
    }

    /// The raw scores (logits; for LLM rerankers log P(yes) - log P(no)) of each passage with
    /// the query, in passage order.
    public func logits(query: String, passages: [String], instruction: String? = nil) -> [Double] {
        logitsCountingTokens(query: query, passages: passages, instruction: instruction).logits
    }

    /// `logits`, and the number of tokens the model read (for usage reports).
    public func logitsCountingTokens(query: String, passages: [String], instruction: String? = nil) -> (logits: [Double], tokens: Int) {
        let pairs = passages.map { tokens(query: query, passage: $0, instruction: instruction) }
        var out = [Double](repeating: 0, count: pairs.count)
        let batches = Embedder.batches(lengths: pairs.map(\.ids.count), budget: batchTokens)
        let lock = NSLock()
        var next = 0
        concurrentLoop(min(threads, batches.count)) { _ in
            let scratch = Scratch()
            while true {
                lock.lock()
                let b = next
                next += 1
                lock.unlock()
                guard b < batches.count else { return }
                let members = batches[b]
                let gemmThreads = max(1, threads / max(1, batches.count))
                let values = score(members.map { pairs[$0] }, scratch: scratch, threads: gemmThreads)
                lock.lock()
                for (j, i) in members.enumerated() { out[i] = values[j] }
                lock.unlock()
            }
        }
        return (out, pairs.reduce(0) { $0 + $1.ids.count })
    }

    /// Scores as the reference reports them: the logits through the model's activation
    /// (sigmoid: in 0...1; for LLM rerankers P(yes) against P(no)).
    public func scores(query: String, passages: [String], instruction: String? = nil) -> [Double] {
        scoresCountingTokens(query: query, passages: passages, instruction: instruction).scores
    }

    /// `scores`, and the number of tokens the model read (for usage reports).
    public func scoresCountingTokens(query: String, passages: [String], instruction: String? = nil) -> (scores: [Double], tokens: Int) {
        let (raw, tokens) = logitsCountingTokens(query: query, passages: passages, instruction: instruction)
        return (sigmoid ? raw.map(FixedMath.sigmoid) : raw, tokens)
    }

    private func score(_ pairs: [(ids: [Int32], typeIds: [Int32])], scratch: Scratch, threads: Int) -> [Double] {
        if let encoder {
            return encoder.classify(pairs.map(\.ids), typeIds: pairs.map(\.typeIds), scratch: scratch, threads: threads).map { Double($0[0]) }
        }
        let decoder = decoder!
        let h = decoder.hiddenSize
        var hidden = [Float](repeating: 0, count: pairs.count * h)
        hidden.withUnsafeMutableBufferPointer {
            decoder.encode(pairs.map(\.ids), pooling: .lastToken, scratch: scratch, output: $0.baseAddress!, threads: threads)
        }
        return hidden.withUnsafeBufferPointer { buf in
            (0..<pairs.count).map { i in
                let l = decoder.logits(of: buf.baseAddress! + i * h, tokens: [yesNo.yes, yesNo.no])!
                return l[0] - l[1]
            }
        }
    }
}
