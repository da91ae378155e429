/// One item of a pair template: the first or second sequence, or special tokens, with a type id.
enum TemplatePiece: Sendable, Equatable {
    case sequence(second: Bool, typeId: Int32)
    case special([Int32], typeId: Int32)
}

/// What is added around encoded sequences ("post_processor" of `tokenizer.json`).
struct PostProcessor: Sendable {
    /// Token ids before and after a single sequence.
    var prefix: [Int32] = []
    var suffix: [Int32] = []
    /// The template of a pair (nil when the post-processor defines none).
    var pair: [TemplatePiece]? = nil

    static let none = PostProcessor()

    /// Every token id the post-processor can add.
    var addedIds: [Int32] {
        prefix + suffix + (pair ?? []).flatMap { piece -> [Int32] in if case let .special(ids, _) = piece { ids } else { [] } }
    }

    /// A token or type id from the file: a non-negative 32-bit integer, else the file is malformed.
    static func templateId(_ value: Int) throws -> Int32 {
        guard value >= 0, let id = Int32(exactly: value) else {
            throw TokenizerError(.malformed, "post_processor: id \(value) is not a valid token id")
        }
        return id
    }

    static func parse(_ json: [String: Any], tokenId: (String) -> Int32?) throws -> PostProcessor {
        let type = json["type"] as? String ?? "<missing>"
        switch type {
        case "TemplateProcessing":
            guard let single = json["single"] as? [[String: Any]] else {
                throw TokenizerError(.malformed, "TemplateProcessing has no 'single' template")
            }
            let specials = json["special_tokens"] as? [String: Any] ?? [:]
            var result = PostProcessor()
            var seenSequence = false
            for item in single {
                if item["Sequence"] != nil {
                    seenSequence = true
                } else if let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String {
                    let ids: [Int32]
                    if let entry = specials[name] as? [String: Any], let list = entry["ids"] as? [Int] {
                        ids = try list.map(templateId)
                    } else if let id = tokenId(name) {
                        ids = [id]
                    } else {
                        throw TokenizerError(.malformed, "template special token '\(name)' has no id")
                    }
                    if seenSequence { result.suffix += ids } else { result.prefix += ids }
                } else {
                    throw TokenizerError(.malformed, "TemplateProcessing item \(item) is neither Sequence nor SpecialToken")
                }
            }
            if let pair = json["pair"] as? [[String: Any]] {
                result.pair = try pair.map { item in
                    if let seq = item["Sequence"] as? [String: Any] {
                        return .sequence(second: (seq["id"] as? String) == "B", typeId: try templateId(seq["type_id"] as? Int ?? 0))
                    }
                    if let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String {
                        let typeId = try templateId(special["type_id"] as? Int ?? 0)
                        if let entry = specials[name] as? [String: Any], let list = entry["ids"] as? [Int] {
                            return .special(try list.map(templateId), typeId: typeId)
                        }
                        guard let id = tokenId(name) else { throw TokenizerError(.malformed, "template special token '\(name)' has no id") }
                        return .special([id], typeId: typeId)
                    }
                    throw TokenizerError(.malformed, "TemplateProcessing pair item \(item) is neither Sequence nor SpecialToken")
                }
            }
            return result
        case "BertProcessing", "RobertaProcessing":
            func pair(_ key: String) throws -> Int32 {
                guard let p = json[key] as? [Any], p.count == 2, let id = p[1] as? Int else {
                    throw TokenizerError(.malformed, "\(type) has no '\(key)' [token, id] pair")
                }
                return try templateId(id)
            }
            let (cls, sep) = (try pair("cls"), try pair("sep"))
            // BERT: [CLS] A [SEP] B [SEP], B's part typed 1. RoBERTa: <s> A </s> </s> B </s>, all typed 0.
            let template: [TemplatePiece] = type == "BertProcessing"
                ? [.special([cls], typeId: 0), .sequence(second: false, typeId: 0), .special([sep], typeId: 0),
                   .sequence(second: true, typeId: 1), .special([sep], typeId: 1)]
                : [.special([cls], typeId: 0), .sequence(second: false, typeId: 0), .special([sep, sep], typeId: 0),
                   .sequence(second: true, typeId: 0), .special([sep], typeId: 0)]
            return PostProcessor(prefix: [cls], suffix: [sep], pair: template)
        case "ByteLevel":
            return .none   // only adjusts offsets; ids are unchanged
        case "Sequence":
            guard let items = json["processors"] as? [[String: Any]] else {
                throw TokenizerError(.malformed, "post_processor Sequence has no 'processors' list")
            }
            var result = PostProcessor()
            for item in items {
                let p = try parse(item, tokenId: tokenId)
                // Each processor wraps what the previous ones produced.
                result.prefix = p.prefix + result.prefix
                result.suffix += p.suffix
                if let pair = p.pair { result.pair = pair }
            }
            return result
        default:
            throw TokenizerError(.unsupported, "post_processor type '\(type)' is not supported "
                + "(supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)")
        }
    }
}
