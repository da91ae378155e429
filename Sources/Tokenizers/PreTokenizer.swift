/// A piece of text during pre-tokenization; `atOrigin` is true when it starts at the very
/// beginning of the input (Metaspace's `prepend_scheme: first` depends on it).
struct Word {
    var scalars: ArraySlice<Unicode.Scalar>
    var atOrigin: Bool
}

/// Splitting normalized text into words ("pre_tokenizer" of `tokenizer.json`).
enum PreTokenizer: Sendable {
    /// Split on whitespace (dropped) and isolate each punctuation character.
    case bert
    /// Split on whitespace only.
    case whitespaceSplit
    /// Split by a pattern.
    case split(SplitPattern, SplitBehavior, invert: Bool)
    /// GPT-2 byte-level: optional prefix space, optional GPT-2 regex split, bytes mapped to
    /// printable characters.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// SentencePiece style: spaces become `replacement`, which is prepended per `prependScheme`;
    /// optionally split before each replacement character.
    case metaspace(replacement: Unicode.Scalar, prependScheme: String, split: Bool)
    case sequence([PreTokenizer])

    /// GPT-2's pre-tokenization pattern.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    /// The `\w+|[^\w\s]+` pattern of the `Whitespace` pre-tokenizer.
    static let whitespacePattern = #"\w+|[^\w\s]+"#

    static func parse(_ json: [String: Any]) throws -> PreTokenizer {
        let type = json["type"] as? String ?? "<missing>"
        switch type {
        case "BertPreTokenizer": return .bert
        case "WhitespaceSplit": return .whitespaceSplit
        case "Whitespace":
            return .split(try SplitPattern(json: ["Regex": whitespacePattern], context: "Whitespace"), .isolated, invert: true)
        case "Split":
            let behaviorName = json["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerError(.unsupported, "Split behavior '\(behaviorName)' is not supported")
            }
            return .split(try SplitPattern(json: json["pattern"], context: "pre_tokenizer Split"), behavior,
                          invert: json["invert"] as? Bool ?? false)
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: json["add_prefix_space"] as? Bool ?? true,
                              useRegex: json["use_regex"] as? Bool ?? true)
        case "Metaspace":
            let rep = (json["replacement"] as? String ?? json["str_rep"] as? String ?? "▁").unicodeScalars.first ?? "▁"
            var scheme = json["prepend_scheme"] as? String
            if scheme == nil { scheme = (json["add_prefix_space"] as? Bool ?? true) ? "always" : "never" }
            guard ["always", "first", "never"].contains(scheme!) else {
                throw TokenizerError(.unsupported, "Metaspace prepend_scheme '\(scheme!)' is not supported")
            }
            return .metaspace(replacement: rep, prependScheme: scheme!, split: json["split"] as? Bool ?? true)
        case "Sequence":
            guard let items = json["pretokenizers"] as? [[String: Any]] else {
                throw TokenizerError(.malformed, "pre_tokenizer Sequence has no 'pretokenizers' list")
            }
            return .sequence(try items.map(parse))
        default:
            throw TokenizerError(.unsupported, "pre_tokenizer type '\(type)' is not supported "
                + "(supported: BertPreTokenizer, WhitespaceSplit, Whitespace, Split, ByteLevel, Metaspace, Sequence)")
        }
    }

    private static let gpt2Split = try! SplitPattern(json: ["Regex": gpt2Pattern], context: "ByteLevel")

    func split(_ words: [Word]) -> [Word] {
        switch self {
        case .bert, .whitespaceSplit:
            let isolatePunctuation = { if case .bert = self { return true } else { return false } }()
            var out: [Word] = []
            for word in words {
                let w = word.scalars
                var start = w.startIndex
                for i in w.indices {
                    let s = w[i]
                    if s.isRustWhitespace {
                        if start < i { out.append(Word(scalars: w[start..<i], atOrigin: word.atOrigin && start == w.startIndex)) }
                        start = i + 1
                    } else if isolatePunctuation && s.isBertPunctuation {
                        if start < i { out.append(Word(scalars: w[start..<i], atOrigin: word.atOrigin && start == w.startIndex)) }
                        out.append(Word(scalars: w[i...i], atOrigin: word.atOrigin && i == w.startIndex))
                        start = i + 1
                    }
                }
                if start < w.endIndex { out.append(Word(scalars: w[start..<w.endIndex], atOrigin: word.atOrigin && start == w.startIndex)) }
            }
            return out
        case let .split(pattern, behavior, invert):
            return words.flatMap { word in
                pattern.split(word.scalars, behavior: behavior, invert: invert).map {
                    Word(scalars: $0, atOrigin: word.atOrigin && $0.startIndex == word.scalars.startIndex)
                }
            }
        case let .byteLevel(addPrefixSpace, useRegex):
            return words.flatMap { word -> [Word] in
                var scalars = word.scalars
                if addPrefixSpace && scalars.first != " " {
                    scalars = ([" "] + Array(scalars))[...]
                }
                let pieces = useRegex ? Self.gpt2Split.split(scalars, behavior: .isolated) : [scalars]
                return pieces.map { Word(scalars: ByteLevel.encode($0)[...], atOrigin: word.atOrigin) }
            }
        case let .metaspace(replacement, scheme, splitOnReplacement):
            return words.flatMap { word -> [Word] in
                var scalars = word.scalars.map { $0 == " " ? replacement : $0 }
                if scalars.first != replacement && (scheme == "always" || (scheme == "first" && word.atOrigin)) {
                    scalars.insert(replacement, at: 0)
                }
                guard splitOnReplacement else { return [Word(scalars: scalars[...], atOrigin: word.atOrigin)] }
                var out: [Word] = []
                var start = 0
                for i in scalars.indices where scalars[i] == replacement && i > start {
                    out.append(Word(scalars: scalars[start..<i], atOrigin: word.atOrigin && start == 0))
                    start = i
                }
                if start < scalars.count { out.append(Word(scalars: scalars[start...], atOrigin: word.atOrigin && start == 0)) }
                return out
            }
        case let .sequence(steps):
            return steps.reduce(words) { $1.split($0) }
        }
    }
}

/// GPT-2's reversible map from bytes to printable characters.
enum ByteLevel {
    static let table: [Unicode.Scalar] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var codes = printable
        var extra = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, c) in zip(printable, codes) { table[b] = Unicode.Scalar(UInt32(c))! }
        return table
    }()

    /// The byte-level characters of the UTF-8 encoding of `text`.
    static func encode(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for s in text {
            if s.value < 0x80 {
                out.append(table[Int(s.value)])
            } else {
                for b in String(Character(s)).utf8 { out.append(table[Int(b)]) }
            }
        }
        return out
    }
}
