import Foundation
import Inference
import Tokenizers

/// What a model folder in Hugging Face / sentence-transformers layout says about how to embed:
/// `config.json`, `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`,
/// `config_sentence_transformers.json`, `tokenizer_config.json`.
public struct ModelFolder: @unchecked Sendable {   // `config` ([String: Any] from JSONSerialization) is never mutated
    public let url: URL
    /// The folder's name, e.g. `all-MiniLM-L6-v2`.
    public var name: String { url.lastPathComponent }
    /// Model type from `config.json` (`bert`, …).
    public let modelType: String
    /// Architectures listed in `config.json`.
    public let architectures: [String]
    /// Token limit per input, special tokens included.
    public let maxSequenceLength: Int
    public let pooling: Pooling
    /// Whether vectors are L2-normalized (a `Normalize` module in `modules.json`).
    public let normalize: Bool
    /// Named prompts of `config_sentence_transformers.json` (e.g. `query` → `"query: "`).
    public let prompts: [String: String]
    let config: [String: Any]
    var configPath: String { url.appendingPathComponent("config.json").path }

    public init(url: URL) throws {
        self.url = url
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
            throw EmbeddingError(.modelNotFound, "\(url.path): no such model folder (run tools/setup.sh to fetch the default model, or pass --model DIR)")
        }
        guard let config = try Self.json(url.appendingPathComponent("config.json"), required: true) else {
            throw EmbeddingError(.badConfig, "unreachable")
        }
        self.config = config
        modelType = config["model_type"] as? String ?? "<missing>"
        architectures = config["architectures"] as? [String] ?? []

        isDecoder = DecoderModel.accepts(config: config)
        // modules.json: pooling folder and Normalize, as sentence-transformers reads them.
        // Without it: mean pooling for encoders; for decoders the method of bge-en-icl and
        // Qwen3-Embedding (EOS appended, last token, normalized).
        var pooling: Pooling = isDecoder ? .lastToken : .mean
        var normalize = true
        if let modules = try Self.jsonArray(url.appendingPathComponent("modules.json")) {
            normalize = modules.contains { ($0["type"] as? String)?.hasSuffix("Normalize") == true }
            if let poolingModule = modules.first(where: { ($0["type"] as? String)?.hasSuffix("Pooling") == true }),
               let path = poolingModule["path"] as? String,
               let poolingConfig = try Self.json(url.appendingPathComponent(path).appendingPathComponent("config.json"), required: true) {
                pooling = try Self.pooling(from: poolingConfig, path: url.appendingPathComponent(path).path)
            }
        }
        self.pooling = pooling
        self.normalize = normalize

        // RoBERTa-family tables reserve padding_idx + 1 rows before the first position.
        isRoberta = ["xlm-roberta", "roberta"].contains(modelType)
        let maxPositions = (config["max_position_embeddings"] as? Int ?? 512) - (isRoberta ? (config["pad_token_id"] as? Int ?? 1) + 1 : 0)
        // Decoders: at most 8192 tokens by default (attention memory and CPU time grow with it).
        var maxLength = isDecoder ? min(maxPositions, 8192) : maxPositions
        if let st = try Self.json(url.appendingPathComponent("sentence_bert_config.json")),
           let m = st["max_seq_length"] as? Int, m > 0 {
            maxLength = min(m, maxPositions)
        } else if let tc = try Self.json(url.appendingPathComponent("tokenizer_config.json")),
                  let m = tc["model_max_length"] as? Int, m > 0 {
            maxLength = min(m, maxPositions)
        }
        maxSequenceLength = maxLength

        let stConfig = try Self.json(url.appendingPathComponent("config_sentence_transformers.json"))
        prompts = stConfig?["prompts"] as? [String: String] ?? [:]
        tokenizerConfig = try Self.json(url.appendingPathComponent("tokenizer_config.json")) ?? [:]
        promptFormat = PromptFormat.detect(name: url.lastPathComponent, prompts: prompts)
        appendEOS = pooling == .lastToken
    }

    /// Whether `config.json` describes a decoder-only LLM.
    public let isDecoder: Bool
    /// Whether it is an XLM-RoBERTa / RoBERTa encoder (BERT with offset positions).
    public let isRoberta: Bool
    /// The prompt format detected from the folder (name, prompts).
    public let promptFormat: PromptFormat
    /// Whether inputs end with the EOS token (last-token pooling).
    public let appendEOS: Bool
    let tokenizerConfig: [String: Any]

    /// Loads `tokenizer.json`, with `add_bos_token` / `add_eos_token` of `tokenizer_config.json`
    /// applied as transformers applies them to Llama-style tokenizers.
    func loadTokenizer() throws -> Tokenizer {
        var tokenizer = try Tokenizer(contentsOf: url.appendingPathComponent("tokenizer.json"))
        let addBOS = tokenizerConfig["add_bos_token"] as? Bool
        let addEOS = tokenizerConfig["add_eos_token"] as? Bool
        let tokenizerClass = tokenizerConfig["tokenizer_class"] as? String ?? ""
        if (addBOS != nil || addEOS != nil) && (tokenizerClass.hasPrefix("Llama") || tokenizerClass.hasPrefix("Gemma")) {
            let bos = specialTokenId("bos_token", in: tokenizer)
            let eos = specialTokenId("eos_token", in: tokenizer)
            let (prefix, suffix) = tokenizer.template
            tokenizer = tokenizer.withTemplate(
                prefix: addBOS == nil ? prefix : (addBOS! ? (bos.map { [$0] } ?? []) : []),
                suffix: addEOS == nil ? suffix : (addEOS! ? (eos.map { [$0] } ?? []) : []))
        }
        return tokenizer
    }

    /// The id of a special token named in `tokenizer_config.json` (a string or {"content": ...}),
    /// falling back to `config.json`'s `<name>_id`.
    func specialTokenId(_ name: String, in tokenizer: Tokenizer) -> Int32? {
        let entry = tokenizerConfig[name]
        if let s = entry as? String ?? (entry as? [String: Any])?["content"] as? String, let id = tokenizer.id(of: s) {
            return id
        }
        if let id = config[name + "_id"] as? Int { return Int32(id) }
        if let ids = config[name + "_id"] as? [Int], let first = ids.first { return Int32(first) }
        return nil
    }

    private static func pooling(from json: [String: Any], path: String) throws -> Pooling {
        if let mode = json["pooling_mode"] as? String {
            switch mode {
            case "mean": return .mean
            case "cls": return .cls
            case "lasttoken": return .lastToken
            default: break
            }
        }
        if json["pooling_mode_cls_token"] as? Bool == true { return .cls }
        if json["pooling_mode_lasttoken"] as? Bool == true { return .lastToken }
        if json["pooling_mode_mean_tokens"] as? Bool == true { return .mean }
        throw EmbeddingError(.unsupportedModel, "\(path)/config.json: pooling mode is not supported (supported: mean, cls, lasttoken)")
    }

    static func json(_ url: URL, required: Bool = false) throws -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            if required { throw EmbeddingError(.badConfig, "\(url.path): missing or unreadable") }
            return nil
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw EmbeddingError(.badConfig, "\(url.path): not a valid JSON object")
        }
        return object
    }

    static func jsonArray(_ url: URL) throws -> [[String: Any]]? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        guard let array = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            throw EmbeddingError(.badConfig, "\(url.path): not a JSON array of objects")
        }
        return array
    }

    /// Builds the transformer that `config.json` names.
    func loadModel(precision: Precision = .f32) throws -> EmbeddingModel {
        let isBert = modelType == "bert" || isRoberta || architectures.contains { $0.hasPrefix("Bert") }
        guard isBert || isDecoder else {
            let named = architectures.isEmpty ? "model_type '\(modelType)'" : "architecture \(architectures.joined(separator: ", "))"
            throw EmbeddingError(.unsupportedModel, "\(configPath): \(named) is not supported (supported: BERT and XLM-RoBERTa encoders; "
                + "decoders \(DecoderModel.supportedArchitectures.joined(separator: ", ")))")
        }
        let weights = try WeightStore(folder: url)
        if isDecoder { return try DecoderModel(config: config, configPath: configPath, weights: weights, precision: precision) }
        return try BertModel(config: config, configPath: configPath, weights: weights, precision: precision)
    }
}
