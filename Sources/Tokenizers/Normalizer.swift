import Foundation

/// Text normalization steps of `tokenizer.json` ("normalizer").
enum Normalizer: Sendable {
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case lowercase
    case stripAccents
    case nfd, nfc, nfkd, nfkc
    /// Prepends a string to non-empty text (SentencePiece's leading "▁").
    case prepend([Unicode.Scalar])
    /// Replaces every match of a pattern.
    case replace(SplitPattern, [Unicode.Scalar])
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])
    /// SentencePiece's compiled rules (see `PrecompiledCharsmap`).
    case precompiled(PrecompiledCharsmap)
    /// SentencePiece's NMT cleanup: control characters dropped, some spaces made plain spaces.
    case nmt

    static func parse(_ json: [String: Any]) throws -> Normalizer {
        let type = json["type"] as? String ?? "<missing>"
        switch type {
        case "BertNormalizer":
            let lowercase = json["lowercase"] as? Bool ?? true
            // `strip_accents: null` means: strip accents when lowercasing (BERT's rule).
            let strip = (json["strip_accents"] as? Bool) ?? lowercase
            return .bert(cleanText: json["clean_text"] as? Bool ?? true,
                         handleChineseChars: json["handle_chinese_chars"] as? Bool ?? true,
                         stripAccents: strip, lowercase: lowercase)
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "NFD": return .nfd
        case "NFC": return .nfc
        case "NFKD": return .nfkd
        case "NFKC": return .nfkc
        case "Prepend":
            return .prepend(Array((json["prepend"] as? String ?? "").unicodeScalars))
        case "Replace":
            return .replace(try SplitPattern(json: json["pattern"], context: "normalizer Replace"),
                            Array((json["content"] as? String ?? "").unicodeScalars))
        case "Strip":
            return .strip(left: json["strip_left"] as? Bool ?? true, right: json["strip_right"] as? Bool ?? true)
        case "Precompiled":
            guard let map = json["precompiled_charsmap"] as? String else {
                throw TokenizerError(.malformed, "Precompiled normalizer has no precompiled_charsmap string")
            }
            // An empty charsmap (some conversions write one) normalizes nothing.
            return map.isEmpty ? .sequence([]) : .precompiled(try PrecompiledCharsmap(base64: map))
        case "Nmt": return .nmt
        case "Sequence":
            guard let items = json["normalizers"] as? [[String: Any]] else {
                throw TokenizerError(.malformed, "normalizer Sequence has no 'normalizers' list")
            }
            return .sequence(try items.map(parse))
        default:
            throw TokenizerError(.unsupported, "normalizer type '\(type)' is not supported "
                + "(supported: BertNormalizer, Lowercase, StripAccents, NFD, NFC, NFKD, NFKC, Prepend, Replace, Strip, Precompiled, Nmt, Sequence)")
        }
    }

    func apply(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case let .bert(cleanText, handleChinese, stripAccents, lowercase):
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count + 8)
            for s in text {
                if cleanText {
                    if s.value == 0 || s.value == 0xFFFD || s.isBertControl { continue }
                    if s.isRustWhitespace { out.append(" "); continue }
                }
                if handleChinese && s.isCJKIdeograph {
                    out.append(" "); out.append(s); out.append(" ")
                } else {
                    out.append(s)
                }
            }
            if stripAccents { out = Normalizer.stripAccents.apply(out) }
            if lowercase { out = Normalizer.lowercase.apply(out) }
            return out
        case .lowercase:
            if text.allSatisfy({ $0.isASCII }) {
                return text.map { s in (0x41...0x5A).contains(s.value) ? Unicode.Scalar(s.value + 32)! : s }
            }
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count)
            for s in text {
                if s.isASCII {
                    out.append((0x41...0x5A).contains(s.value) ? Unicode.Scalar(s.value + 32)! : s)
                } else {
                    out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                }
            }
            return out
        case .stripAccents:
            if text.allSatisfy({ $0.isASCII }) { return text }
            return Normalizer.nfd.apply(text).filter { $0.properties.generalCategory != .nonspacingMark }
        case .nfd: return Normalizer.unicodeForm(text) { $0.decomposedStringWithCanonicalMapping }
        case .nfc: return Normalizer.unicodeForm(text) { $0.precomposedStringWithCanonicalMapping }
        case .nfkd: return Normalizer.unicodeForm(text) { $0.decomposedStringWithCompatibilityMapping }
        // NFKD then NFC: Foundation's one-step NFKC leaves some compositions out on Linux
        // (half-width "ｶﾞ" stayed カ + U+3099 instead of ガ).
        case .nfkc: return Normalizer.unicodeForm(text) { $0.decomposedStringWithCompatibilityMapping.precomposedStringWithCanonicalMapping }
        case let .prepend(prefix):
            return text.isEmpty ? text : prefix + text
        case let .replace(pattern, content):
            let matches = pattern.matches(in: text[...])
            if matches.isEmpty { return text }
            var out: [Unicode.Scalar] = []
            var at = 0
            for m in matches {
                out.append(contentsOf: text[at..<m.lowerBound])
                out.append(contentsOf: content)
                at = m.upperBound
            }
            out.append(contentsOf: text[at...])
            return out
        case let .strip(left, right):
            var slice = text[...]
            if left { while let f = slice.first, f.isRustWhitespace { slice.removeFirst() } }
            if right { while let l = slice.last, l.isRustWhitespace { slice.removeLast() } }
            return Array(slice)
        case let .sequence(steps):
            return steps.reduce(text) { $1.apply($0) }
        case let .precompiled(map):
            return map.apply(text)
        case .nmt:
            return text.compactMap { s in
                switch s.value {
                case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x8F, 0x9F: return nil
                case 0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B...0x200F, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD: return " "
                default: return s
                }
            }
        }
    }

    private static func unicodeForm(_ text: [Unicode.Scalar], _ form: (String) -> String) -> [Unicode.Scalar] {
        if text.allSatisfy({ $0.isASCII }) { return text }
        var s = String()
        s.unicodeScalars.append(contentsOf: text)
        return Array(form(s).unicodeScalars)
    }
}
