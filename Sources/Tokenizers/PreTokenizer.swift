/// Splitting normalized text into words ("pre_tokenizer" of `tokenizer.json`).
enum PreTokenizer: Sendable {
    /// Split on whitespace (dropped) and isolate each punctuation character.
    case bert
    /// Split on whitespace only.
    case whitespaceSplit
    case sequence([PreTokenizer])

    static func parse(_ json: [String: Any]) throws -> PreTokenizer {
        let type = json["type"] as? String ?? "<missing>"
        switch type {
        case "BertPreTokenizer": return .bert
        case "WhitespaceSplit": return .whitespaceSplit
        case "Sequence":
            guard let items = json["pretokenizers"] as? [[String: Any]] else {
                throw TokenizerError(.malformed, "pre_tokenizer Sequence has no 'pretokenizers' list")
            }
            return .sequence(try items.map(parse))
        default:
            throw TokenizerError(.unsupported, "pre_tokenizer type '\(type)' is not supported "
                + "(supported: BertPreTokenizer, WhitespaceSplit, Sequence)")
        }
    }

    func split(_ words: [ArraySlice<Unicode.Scalar>]) -> [ArraySlice<Unicode.Scalar>] {
        switch self {
        case .bert, .whitespaceSplit:
            let isolatePunctuation = { if case .bert = self { return true } else { return false } }()
            var out: [ArraySlice<Unicode.Scalar>] = []
            for word in words {
                var start = word.startIndex
                for i in word.indices {
                    let s = word[i]
                    if s.isRustWhitespace {
                        if start < i { out.append(word[start..<i]) }
                        start = i + 1
                    } else if isolatePunctuation && s.isBertPunctuation {
                        if start < i { out.append(word[start..<i]) }
                        out.append(word[i...i])
                        start = i + 1
                    }
                }
                if start < word.endIndex { out.append(word[start..<word.endIndex]) }
            }
            return out
        case let .sequence(steps):
            return steps.reduce(words) { $1.split($0) }
        }
    }
}
