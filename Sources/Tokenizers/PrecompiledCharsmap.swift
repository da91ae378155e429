import Foundation

/// SentencePiece's precompiled normalization rules (the `Precompiled` normalizer of
/// `tokenizer.json`, e.g. nmt_nfkc in XLM-RoBERTa's): a double-array trie (Darts) from UTF-8
/// byte strings to offsets of their replacements in a blob of NUL-terminated strings.
///
/// As HF `tokenizers` applies it: per grapheme cluster shorter than 6 bytes, the replacement of
/// its first matching prefix if any; otherwise per character, the replacement or the character.
struct PrecompiledCharsmap: Sendable {
    private let units: [UInt32]
    private let replacements: [UInt8]

    /// Parses the charsmap: a little-endian u32 trie size in bytes, the trie, the replacements.
    init(base64: String) throws {
        guard let data = Data(base64Encoded: base64) else {
            throw TokenizerError(.malformed, "Precompiled normalizer: precompiled_charsmap is not base64")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 4 else { throw TokenizerError(.malformed, "Precompiled normalizer: the charsmap is truncated") }
        let trieSize = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        guard trieSize % 4 == 0, trieSize >= 4, 4 + trieSize <= bytes.count else {
            throw TokenizerError(.malformed, "Precompiled normalizer: the charsmap's trie size \(trieSize) does not fit its \(bytes.count) bytes")
        }
        units = stride(from: 4, to: 4 + trieSize, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
        replacements = Array(bytes[(4 + trieSize)...])
    }

    /// The replacement of the shortest prefix of `key` that has one (Darts' common prefix search).
    private func replacement(_ key: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }
        func label(_ u: UInt32) -> UInt32 { u & ((1 << 31) | 0xFF) }
        func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
        var pos = offset(units[0])
        for byte in key {
            pos ^= Int(byte)
            guard pos < units.count else { return nil }
            let unit = units[pos]
            guard label(unit) == UInt32(byte) else { return nil }
            pos ^= offset(unit)
            guard pos < units.count else { return nil }
            if hasLeaf(unit) {
                let start = Int(units[pos] & 0x7FFF_FFFF)
                guard start < replacements.count else { return nil }
                var end = start
                while end < replacements.count, replacements[end] != 0 { end += 1 }
                return replacements[start..<end]
            }
        }
        return nil
    }

    func apply(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s = String()
        s.unicodeScalars.append(contentsOf: text)
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 8)
        for grapheme in s {
            let g = Array(String(grapheme).utf8)
            if g.count < 6, let r = replacement(g[...]) {
                out.append(contentsOf: r)
                continue
            }
            for scalar in grapheme.unicodeScalars {
                let part = Array(String(scalar).utf8)
                if let r = replacement(part[...]) { out.append(contentsOf: r) } else { out.append(contentsOf: part) }
            }
        }
        return Array(String(decoding: out, as: UTF8.self).unicodeScalars)
    }
}
