/// How a search ranks chunks.
public enum SearchMode: String, Sendable, CaseIterable, Codable {
    /// Embedding similarity (HNSW candidates rescored with full vectors).
    case dense
    /// FTS5 BM25 over the chunk text.
    case lexical
    /// Dense and lexical lists fused by reciprocal rank.
    case hybrid
}

/// What text each search hit carries.
public enum HitText: String, Sendable, CaseIterable, Codable {
    /// Up to 240 characters of the chunk around the query's words (the default).
    case snippet
    /// The whole chunk text.
    case full
    /// No text: the cheapest, e.g. for candidates handed to a reranker.
    case none
}

/// A search request.
public struct SearchRequest: Sendable {
    public var query: String
    public var instruct: String?
    public var examples: [Example]
    /// A saved task supplying the instruction and examples (explicit ones win).
    public var task: String?
    public var k: Int
    public var mode: SearchMode
    /// A GLOB over document paths (`*.md`, `/notes/*`).
    public var pathFilter: String?
    /// Only chunks of documents whose metadata matches (both legs; k is still honoured).
    public var filter: MetadataFilter?
    /// Snippets (default), the full chunk text, or no text.
    public var text: HitText
    /// Whether hits carry their document's fields (default true).
    public var metadata: Bool
    /// Dense candidates by brute force over every (matching) chunk instead of the HNSW walk:
    /// slow, for measuring the index's recall.
    public var exact: Bool

    public init(query: String, instruct: String? = nil, examples: [Example] = [], task: String? = nil,
                k: Int = 10, mode: SearchMode = .hybrid, pathFilter: String? = nil, filter: MetadataFilter? = nil,
                text: HitText = .snippet, metadata: Bool = true, exact: Bool = false) {
        self.query = query
        self.instruct = instruct
        self.examples = examples
        self.task = task
        self.k = k
        self.mode = mode
        self.pathFilter = pathFilter
        self.filter = filter
        self.text = text
        self.metadata = metadata
        self.exact = exact
    }
}

/// One result: where it is and why it matched.
public struct SearchHit: Sendable, Codable, Equatable {
    public var rank: Int
    public var score: Double
    public var path: String
    public var chunkId: Int64
    public var byteStart: Int
    public var byteEnd: Int
    public var lineStart: Int
    public var lineEnd: Int
    public var headingPath: String
    /// The part of the chunk around the query's words (`HitText.snippet`), else nil.
    public var snippet: String?
    /// The whole chunk text (`HitText.full`), else nil.
    public var text: String?
    /// The fields of the hit's document (nil when the request asked for none).
    public var metadata: [String: JSONValue]?
    /// With a reranker: the first stage's score (`score` is then the reranker's), else nil.
    public var retrievalScore: Double?

    enum CodingKeys: String, CodingKey {
        case rank, score, path, snippet, text, metadata
        case retrievalScore = "retrieval_score"
        case chunkId = "chunk_id", byteStart = "byte_start", byteEnd = "byte_end"
        case lineStart = "line_start", lineEnd = "line_end", headingPath = "heading_path"
    }
}

/// Reciprocal-rank fusion: score(d) = Σ 1 / (k + rank_i(d)), ranks from 1.
public func reciprocalRankFusion<ID: Hashable>(_ lists: [[ID]], k: Double = 60) -> [(id: ID, score: Double)] {
    var scores: [ID: Double] = [:]
    var firstSeen: [ID: Int] = [:]
    var order = 0
    for list in lists {
        for (rank, id) in list.enumerated() {
            scores[id, default: 0] += 1 / (k + Double(rank + 1))
            if firstSeen[id] == nil { firstSeen[id] = order; order += 1 }
        }
    }
    return scores.map { (id: $0.key, score: $0.value) }
        .sorted { $0.score != $1.score ? $0.score > $1.score : firstSeen[$0.id]! < firstSeen[$1.id]! }
}

/// The window of a chunk, at most `maxLength` characters cut at spaces, that holds the most of
/// the query's words (those of three letters or more, compared without case and surrounding
/// punctuation); runs of whitespace become one space, and "…" marks a cut.
public func snippet(of text: String, query: String, maxLength: Int = 240) -> String {
    SnippetCutter(query: query).snippet(of: text, maxLength: maxLength)
}

/// Cuts snippets for one query, its words parsed once: one pass over each text's UTF-8 bytes,
/// no per-word strings except for non-ASCII words.
public struct SnippetCutter: Sendable {
    private let terms: Set<[UInt8]>
    /// The terms by their length in bytes (a query has few: comparing beats hashing every word).
    private let termsByLength: [[[UInt8]]]

    public init(query: String) {
        terms = Set(query.lowercased().split { !($0.isLetter || $0.isNumber) }.filter { $0.count > 2 }.map { Array($0.utf8) })
        var byLength = [[[UInt8]]](repeating: [], count: (terms.map(\.count).max() ?? 0) + 1)
        for t in terms { byLength[t.count].append(t) }
        termsByLength = byLength
    }

    /// See `snippet(of:query:maxLength:)`.
    public func snippet(of text: String, maxLength: Int = 240) -> String {
        var text = text
        return text.withUTF8 { cut($0, maxLength: max(1, maxLength)) }
    }

    private func cut(_ bytes: UnsafeBufferPointer<UInt8>, maxLength: Int) -> String {
        // Words: byte ranges between ASCII whitespace, their lengths in characters, and whether they
        // are query terms.
        struct Word { var start: Int32, end: Int32, length: Int32, hit: Int32 }
        var words: [Word] = []
        words.reserveCapacity(bytes.count / 5 + 1)
        var i = 0
        let n = min(bytes.count, Int(Int32.max))   // word offsets are kept as Int32
        @inline(__always) func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }
        @inline(__always) func isASCIIPunctuation(_ b: UInt8) -> Bool {
            (b >= 0x21 && b <= 0x2F) || (b >= 0x3A && b <= 0x40) || (b >= 0x5B && b <= 0x60) || (b >= 0x7B && b <= 0x7E)
        }
        while i < n {
            while i < n, isSpace(bytes[i]) { i += 1 }
            guard i < n else { break }
            let start = i
            var characters = 0, ascii = true
            while i < n, !isSpace(bytes[i]) {
                if bytes[i] & 0xC0 != 0x80 { characters += 1 }
                if bytes[i] >= 0x80 { ascii = false }
                i += 1
            }
            var hit = 0
            if !terms.isEmpty {
                var a = start, b = i
                while a < b, isASCIIPunctuation(bytes[a]) { a += 1 }
                while b > a, isASCIIPunctuation(bytes[b - 1]) { b -= 1 }
                if b - a > 2 {
                    if ascii {
                        let length = b - a
                        guard length < termsByLength.count else {
                            words.append(Word(start: Int32(start), end: Int32(i), length: Int32(characters), hit: 0))
                            continue
                        }
                        for term in termsByLength[length] {
                            var same = true
                            for j in 0..<length {
                                let c = bytes[a + j]
                                if (c >= 0x41 && c <= 0x5A ? c + 32 : c) != term[j] { same = false; break }
                            }
                            if same { hit = 1; break }
                        }
                    } else {
                        let word = String(decoding: bytes[a..<b], as: UTF8.self).lowercased()
                            .trimmingCharacters(in: .punctuationCharacters)
                        if terms.contains(Array(word.utf8)) { hit = 1 }
                    }
                }
            }
            words.append(Word(start: Int32(start), end: Int32(i), length: Int32(characters), hit: Int32(hit)))
        }
        let count = words.count
        func join(_ range: Range<Int>) -> String {
            var out: [UInt8] = []
            out.reserveCapacity(range.count > 0 ? Int(words[range.upperBound - 1].end - words[range.lowerBound].start) : 0)
            for w in range {
                if w > range.lowerBound { out.append(0x20) }
                out.append(contentsOf: bytes[Int(words[w].start)..<Int(words[w].end)])
            }
            return String(decoding: out, as: UTF8.self)
        }
        let total = words.reduce(0) { $0 + Int($1.length) } + max(0, count - 1)
        guard total > maxLength else { return join(0..<count) }
        // The best window: slide its start by a quarter of its width, as far as words fit.
        var best = 0, bestScore = -1, start = 0
        while start < count {
            var length = 0, score = 0, end = start
            while end < count, length + Int(words[end].length) + 1 <= maxLength {
                score += Int(words[end].hit)
                length += Int(words[end].length) + 1
                end += 1
            }
            if score > bestScore { bestScore = score; best = start }
            if end >= count { break }
            start += max(1, (end - start) / 4)
        }
        var end = best, length = 0
        while end < count, length + Int(words[end].length) + 1 <= maxLength {
            length += Int(words[end].length) + 1
            end += 1
        }
        if end == best {   // one word longer than the window: its first characters
            return (best > 0 ? "… " : "") + String(String(decoding: bytes[Int(words[best].start)..<Int(words[best].end)], as: UTF8.self).prefix(maxLength)) + " …"
        }
        return (best > 0 ? "… " : "") + join(best..<end) + (end < count ? " …" : "")
    }
}

extension MetadataFilter {
    /// Parses a filter written as JSON (see `MetadataFilter`); a bad one is one
    /// `SextantError.invalidArgument` naming the field and operator.
    public static func parse(_ json: String) throws -> MetadataFilter {
        do { return try MetadataFilter(json: json) } catch { throw SextantError.lifted(error) }
    }
}
