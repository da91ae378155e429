/// A worked example for in-context-learning queries: a query and a passage that answers it.
public struct Example: Sendable, Equatable, Codable {
    public var query: String
    public var response: String

    public init(query: String, response: String) {
        self.query = query
        self.response = response
    }
}

/// How a model expects queries (instruction, examples) and passages to be written.
public enum PromptFormat: String, Sendable, CaseIterable, Codable {
    /// bge-en-icl: `<instruct>{task}\n<query>{q}\n<response>{p}` examples, joined by blank lines,
    /// then `<instruct>{task}\n<query>{query}\n<response>`. Passages unchanged.
    case bgeICL = "bge-icl"
    /// Qwen3-Embedding: `Instruct: {task}\nQuery:{query}`.
    case qwen3
    /// e5-mistral, gte-Qwen2: `Instruct: {task}\nQuery: {query}`.
    case e5Instruct = "e5-instruct"
    /// e5: `query: ` / `passage: ` prefixes.
    case e5
    /// bge (v1.5) English: the query instruction is a prefix, passages unchanged.
    case bge
    /// The `prompts` of `config_sentence_transformers.json` (`query`, `passage`/`document`).
    case stPrompts = "st-prompts"
    /// No template: an instruction, if given, is prepended as `instruction + " " + query`.
    case none

    /// The task used when a query comes without an instruction.
    public var defaultTask: String? {
        switch self {
        case .bgeICL, .qwen3, .e5Instruct: "Given a web search query, retrieve relevant passages that answer the query"
        case .bge: "Represent this sentence for searching relevant passages:"
        default: nil
        }
    }

    /// Guesses the format from a model folder's name and sentence-transformers prompts.
    public static func detect(name: String, prompts: [String: String]) -> PromptFormat {
        let n = name.lowercased()
        if n.contains("bge-en-icl") || n.contains("bge-icl") { return .bgeICL }
        if n.contains("qwen3-embedding") { return .qwen3 }
        if n.contains("e5-mistral") || n.contains("gte-qwen") || n.contains("sfr-embedding") { return .e5Instruct }
        if n.contains("e5") { return .e5 }
        if n.hasPrefix("bge-") && (n.contains("-en") || n.contains("small") || n.contains("base") || n.contains("large")) { return .bge }
        if !prompts.isEmpty { return .stPrompts }
        return .none
    }

    /// The examples block of bge-en-icl that precedes the query, or "" without examples.
    public static func iclPrefix(task: String, examples: [Example]) -> String {
        guard !examples.isEmpty else { return "" }
        return examples.map { "<instruct>\(task)\n<query>\($0.query)\n<response>\($0.response)" }
            .joined(separator: "\n\n") + "\n\n"
    }

    /// The text the model sees for a query.
    /// - Returns: the fixed prefix (bge-icl examples; cacheable) and the whole prompt.
    public func query(_ text: String, instruct: String?, examples: [Example], prompts: [String: String]) -> (prefix: String, prompt: String) {
        let task = (instruct?.isEmpty == false ? instruct : nil) ?? defaultTask
        switch self {
        case .bgeICL:
            let prefix = Self.iclPrefix(task: task ?? "", examples: examples)
            return (prefix, prefix + "<instruct>\(task ?? "")\n<query>\(text)\n<response>")
        case .qwen3:
            return ("", "Instruct: \(task ?? "")\nQuery:\(text)")
        case .e5Instruct:
            return ("", "Instruct: \(task ?? "")\nQuery: \(text)")
        case .e5:
            return ("", "query: " + text)
        case .bge:
            return ("", Self.joined(task, text))
        case .stPrompts:
            if let instruct, !instruct.isEmpty { return ("", Self.joined(instruct, text)) }
            return ("", (prompts["query"] ?? "") + text)
        case .none:
            return ("", Self.joined(instruct, text))
        }
    }

    /// The text the model sees for a passage.
    public func passage(_ text: String, prompts: [String: String]) -> String {
        switch self {
        case .e5: "passage: " + text
        case .stPrompts: (prompts["passage"] ?? prompts["document"] ?? "") + text
        default: text
        }
    }

    /// `prefix + " " + text`, without doubling a trailing space; just `text` without a prefix.
    private static func joined(_ prefix: String?, _ text: String) -> String {
        guard let prefix, !prefix.isEmpty else { return text }
        return prefix.last!.isWhitespace ? prefix + text : prefix + " " + text
    }
}
