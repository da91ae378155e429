import Foundation

/// Reads the `"vocab": {token: id, ...}` object of a `tokenizer.json` straight from its bytes.
///
/// Foundation's JSON parser returns `[String: Any]`, whose `String` keys compare by canonical
/// equivalence: a vocabulary holding both a precomposed and a decomposed "é" would lose one of
/// them. This reader keeps every key's exact scalars.
enum VocabularyJSON {
    /// The entries of the first `"vocab"` object in `data`, or nil if there is none.
    static func entries(in data: Data) throws -> [([Unicode.Scalar], Int32)]? {
        let bytes = [UInt8](data)
        let key = Array("\"vocab\"".utf8)
        var i = 0
        search: while i + key.count <= bytes.count {
            guard bytes[i] == UInt8(ascii: "\""), Array(bytes[i..<(i + key.count)]) == key else { i += 1; continue }
            var j = i + key.count
            skipSpace(bytes, &j)
            guard j < bytes.count, bytes[j] == UInt8(ascii: ":") else { i += 1; continue search }
            j += 1
            skipSpace(bytes, &j)
            guard j < bytes.count, bytes[j] == UInt8(ascii: "{") else { i += 1; continue search }
            return try parseObject(bytes, at: j)
        }
        return nil
    }

    /// The `[[piece, score], ...]` list of the first `"vocab"` key followed by a list (a Unigram
    /// model's), with exact pieces and scores parsed to the nearest double (as serde_json does:
    /// Viterbi ties between equal-scoring segmentations are decided by those last bits).
    static func unigramEntries(in data: Data) throws -> [([Unicode.Scalar], Double)]? {
        let bytes = [UInt8](data)
        let key = Array("\"vocab\"".utf8)
        var i = 0
        while i + key.count <= bytes.count {
            guard bytes[i] == UInt8(ascii: "\""), Array(bytes[i..<(i + key.count)]) == key else { i += 1; continue }
            var j = i + key.count
            skipSpace(bytes, &j)
            guard j < bytes.count, bytes[j] == UInt8(ascii: ":") else { i += 1; continue }
            j += 1
            skipSpace(bytes, &j)
            guard j < bytes.count, bytes[j] == UInt8(ascii: "[") else { i += 1; continue }
            return try parsePairs(bytes, at: j)
        }
        return nil
    }

    private static func parsePairs(_ b: [UInt8], at start: Int) throws -> [([Unicode.Scalar], Double)] {
        var i = start + 1
        var result: [([Unicode.Scalar], Double)] = []
        skipSpace(b, &i)
        if i < b.count, b[i] == UInt8(ascii: "]") { return result }
        while true {
            skipSpace(b, &i)
            guard i < b.count, b[i] == UInt8(ascii: "[") else { throw malformed("a Unigram vocab entry is not a [piece, score] pair") }
            i += 1
            skipSpace(b, &i)
            let piece = try parseString(b, &i)
            skipSpace(b, &i)
            guard i < b.count, b[i] == UInt8(ascii: ",") else { throw malformed("a Unigram vocab entry is not a [piece, score] pair") }
            i += 1
            skipSpace(b, &i)
            let numberStart = i
            while i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: ".")
                    || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") || (b[i] >= 0x30 && b[i] <= 0x39) { i += 1 }
            guard let score = Double(String(decoding: b[numberStart..<i], as: UTF8.self)), score.isFinite else {
                throw malformed("Unigram vocab entry '\(String(String.UnicodeScalarView(piece)))' has no valid score")
            }
            skipSpace(b, &i)
            guard i < b.count, b[i] == UInt8(ascii: "]") else { throw malformed("a Unigram vocab entry is not a [piece, score] pair") }
            i += 1
            result.append((piece, score))
            skipSpace(b, &i)
            guard i < b.count else { throw malformed("the vocab list is not closed") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "]") { return result }
            throw malformed("expected ',' or ']' in the vocab list")
        }
    }

    private static func skipSpace(_ b: [UInt8], _ i: inout Int) {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private static func parseObject(_ b: [UInt8], at start: Int) throws -> [([Unicode.Scalar], Int32)] {
        var i = start + 1
        var result: [([Unicode.Scalar], Int32)] = []
        skipSpace(b, &i)
        if i < b.count, b[i] == UInt8(ascii: "}") { return result }
        while true {
            skipSpace(b, &i)
            let token = try parseString(b, &i)
            skipSpace(b, &i)
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw malformed("expected ':' after a vocab key") }
            i += 1
            skipSpace(b, &i)
            var negative = false
            if i < b.count, b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
            var value: Int64 = 0
            let digitsStart = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39, value < Int64(Int32.max) {
                value = value * 10 + Int64(b[i] - 0x30)
                i += 1
            }
            guard i > digitsStart, !negative, let id = Int32(exactly: value) else {
                throw malformed("vocab entry '\(String(String.UnicodeScalarView(token)))' has no valid integer id")
            }
            result.append((token, id))
            skipSpace(b, &i)
            guard i < b.count else { throw malformed("the vocab object is not closed") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { return result }
            throw malformed("expected ',' or '}' in the vocab object")
        }
    }

    /// A JSON string starting at `b[i]` (a quote), with escapes decoded into scalars.
    private static func parseString(_ b: [UInt8], _ i: inout Int) throws -> [Unicode.Scalar] {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw malformed("expected a string key in the vocab object") }
        i += 1
        var raw: [UInt8] = []
        var scalars: [Unicode.Scalar] = []
        func flush() throws {
            guard !raw.isEmpty else { return }
            guard let s = String(validating: raw, as: UTF8.self) else { throw malformed("a vocab key is not valid UTF-8") }
            scalars.append(contentsOf: s.unicodeScalars)
            raw.removeAll(keepingCapacity: true)
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; try flush(); return scalars }
            if c != UInt8(ascii: "\\") { raw.append(c); i += 1; continue }
            try flush()
            guard i + 1 < b.count else { break }
            let e = b[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "u"):
                var unit = try hex4(b, &i)
                if (0xD800..<0xDC00).contains(unit), i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let low = try hex4(b, &i)
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                }
                scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
            default: scalars.append(Unicode.Scalar(e))   // \" \\ \/
            }
        }
        throw malformed("a vocab key is not terminated")
    }

    private static func hex4(_ b: [UInt8], _ i: inout Int) throws -> UInt32 {
        guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<(i + 4)], as: UTF8.self), radix: 16) else {
            throw malformed("bad \\u escape in the vocab object")
        }
        i += 4
        return v
    }

    private static func malformed(_ m: String) -> TokenizerError { TokenizerError(.malformed, m) }
}
