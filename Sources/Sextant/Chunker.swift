/// A piece of a document to embed, with where it sits in the text.
public struct Chunk: Sendable, Equatable {
    public var text: String
    /// UTF-8 byte range in the document text.
    public var byteRange: Range<Int>
    /// 1-based first and last line.
    public var lineRange: ClosedRange<Int>
    /// Enclosing headings, outermost first, joined by " > ".
    public var headingPath: String
}

/// Cuts text into chunks of at most `maxTokens` tokens (as the model counts them), preferring
/// heading, then paragraph, then sentence, then word boundaries; consecutive chunks of one
/// section share up to `overlapTokens` tokens.
public struct Chunker {
    public let maxTokens: Int
    public let overlapTokens: Int
    /// Tokens of a piece of text (no special tokens).
    public let count: (String) -> Int

    public init(maxTokens: Int, overlapTokens: Int, count: @escaping (String) -> Int) {
        self.maxTokens = max(1, maxTokens)
        self.overlapTokens = max(0, min(overlapTokens, maxTokens / 2))
        self.count = count
    }

    /// A unit the chunks are made of: a paragraph, or a piece of an oversized one.
    struct Unit {
        var start: Int          // byte offsets in the UTF-8 text
        var end: Int
        var firstLine: Int
        var lastLine: Int
        var tokens: Int
        var headingPath: [String]
        var isHeading: Bool
    }

    public func chunks(of text: String, markdown: Bool) -> [Chunk] {
        let bytes = Array(text.utf8)
        let units = self.units(bytes, markdown: markdown)
        var chunks: [Chunk] = []
        var current: [Unit] = []
        var used = 0

        func emit() {
            guard let first = current.first, let last = current.last else { return }
            let slice = String(decoding: bytes[first.start..<last.end], as: UTF8.self)
            chunks.append(Chunk(text: slice, byteRange: first.start..<last.end, lineRange: first.firstLine...last.lastLine,
                                headingPath: current.last(where: { !$0.isHeading })?.headingPath.joined(separator: " > ")
                                    ?? first.headingPath.joined(separator: " > ")))
        }

        for unit in units {
            let newSection = unit.isHeading && !current.isEmpty && !(current.allSatisfy(\.isHeading))
            if newSection || (used + unit.tokens > maxTokens && !current.isEmpty) {
                emit()
                // Overlap: carry the tail of the previous chunk within the same section.
                var carried: [Unit] = []
                var carriedTokens = 0
                if !newSection {
                    for u in current.reversed() where !u.isHeading {
                        if carriedTokens + u.tokens > overlapTokens || carriedTokens + u.tokens + unit.tokens > maxTokens { break }
                        carried.insert(u, at: 0)
                        carriedTokens += u.tokens
                    }
                }
                current = carried
                used = carriedTokens
            }
            current.append(unit)
            used += unit.tokens
        }
        emit()
        return chunks
    }

    /// Paragraphs (blank-line separated; markdown headings on their own), split further when a
    /// paragraph alone exceeds `maxTokens`.
    func units(_ bytes: [UInt8], markdown: Bool) -> [Unit] {
        var units: [Unit] = []
        var headings: [String] = []
        var line = 1
        var i = 0
        let n = bytes.count
        while i < n {
            // Skip blank lines.
            while i < n, bytes[i] == 0x0A || bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0D {
                if bytes[i] == 0x0A { line += 1 }
                i += 1
            }
            guard i < n else { break }
            let start = i, startLine = line
            // A markdown heading is a unit of its own line.
            if markdown, bytes[i] == UInt8(ascii: "#") {
                var level = 0
                while i < n, bytes[i] == UInt8(ascii: "#") { level += 1; i += 1 }
                if level <= 6, i < n, bytes[i] == 0x20 {
                    while i < n, bytes[i] != 0x0A { i += 1 }
                    let title = String(decoding: bytes[(start + level + 1)..<i], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    headings = Array(headings.prefix(level - 1)) + [title]
                    let text = String(decoding: bytes[start..<i], as: UTF8.self)
                    units.append(Unit(start: start, end: i, firstLine: startLine, lastLine: startLine,
                                      tokens: count(text), headingPath: headings, isHeading: true))
                    continue
                }
                i = start
            }
            // A paragraph runs to the next blank line (or heading line in markdown).
            var end = i
            while i < n {
                if bytes[i] == 0x0A {
                    var j = i + 1
                    while j < n, bytes[j] == 0x20 || bytes[j] == 0x09 || bytes[j] == 0x0D { j += 1 }
                    if j >= n || bytes[j] == 0x0A || (markdown && bytes[j] == UInt8(ascii: "#")) { break }
                    line += 1
                }
                i += 1
                end = i
            }
            end = i
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            let tokens = count(text)
            let unit = Unit(start: start, end: end, firstLine: startLine, lastLine: line, tokens: tokens, headingPath: headings, isHeading: false)
            if tokens <= maxTokens {
                units.append(unit)
            } else {
                units.append(contentsOf: split(unit, bytes))
            }
        }
        return units
    }

    /// Splits an oversized unit at sentence ends, then at spaces, then at any character.
    func split(_ unit: Unit, _ bytes: [UInt8]) -> [Unit] {
        // Candidate cut positions (byte offsets where a piece may end), by preference.
        var sentenceEnds: [Int] = [], spaces: [Int] = [], characters: [Int] = []
        for j in (unit.start + 1)..<unit.end {
            let c = bytes[j]
            if c & 0xC0 != 0x80 { characters.append(j) }
            if c == 0x0A || c == 0x20 {
                spaces.append(j + 1)
                let p = bytes[j - 1]
                if c == 0x0A || p == UInt8(ascii: ".") || p == UInt8(ascii: "!") || p == UInt8(ascii: "?") { sentenceEnds.append(j + 1) }
            }
        }
        func fits(_ from: Int, _ to: Int) -> Bool { count(String(decoding: bytes[from..<to], as: UTF8.self)) <= maxTokens }
        /// The farthest cut in `list` after `from` that keeps the piece within the limit.
        func farthest(_ list: [Int], from: Int) -> Int? {
            var lo = list.partitionPoint { $0 <= from }, hi = list.count - 1
            guard lo <= hi, fits(from, list[lo]) else { return nil }
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if fits(from, list[mid]) { lo = mid } else { hi = mid - 1 }
            }
            return list[lo]
        }
        var pieces: [Unit] = []
        var start = unit.start
        var line = unit.firstLine
        while start < unit.end {
            let end: Int
            if fits(start, unit.end) {
                end = unit.end
            } else {
                end = farthest(sentenceEnds, from: start) ?? farthest(spaces, from: start)
                    ?? farthest(characters, from: start) ?? characters.first { $0 > start } ?? unit.end
            }
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            let lines = bytes[start..<end].filter { $0 == 0x0A }.count
            pieces.append(Unit(start: start, end: end, firstLine: line, lastLine: line + max(0, lines - (bytes[end - 1] == 0x0A ? 1 : 0)),
                               tokens: count(text), headingPath: unit.headingPath, isHeading: false))
            line += lines
            start = end
        }
        return pieces
    }
}

extension Array where Element == Int {
    /// The first index whose element fails `belongs` (elements are sorted so that it is a prefix).
    func partitionPoint(_ belongs: (Int) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if belongs(self[mid]) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
