/// What is added around a single encoded sequence ("post_processor" of `tokenizer.json`).
struct PostProcessor: Sendable {
    /// Token ids before and after the sequence.
    var prefix: [Int32] = []
    var suffix: [Int32] = []

    static let none = PostProcessor()

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
                        ids = list.map { Int32($0) }
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
            return result
        case "BertProcessing", "RobertaProcessing":
            func pair(_ key: String) throws -> Int32 {
                guard let p = json[key] as? [Any], p.count == 2, let id = p[1] as? Int else {
                    throw TokenizerError(.malformed, "\(type) has no '\(key)' [token, id] pair")
                }
                return Int32(id)
            }
            return PostProcessor(prefix: [try pair("cls")], suffix: [try pair("sep")])
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
            }
            return result
        default:
            throw TokenizerError(.unsupported, "post_processor type '\(type)' is not supported "
                + "(supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)")
        }
    }
}
