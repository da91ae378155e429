/// How a search ranks chunks.
public enum SearchMode: String, Sendable, CaseIterable, Codable {
    /// Embedding similarity (HNSW candidates rescored with full vectors).
    case dense
    /// FTS5 BM25 over the chunk text.
    case lexical
    /// Dense and lexical lists fused by reciprocal rank.
    case hybrid
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

    public init(query: String, instruct: String? = nil, examples: [Example] = [], task: String? = nil,
                k: Int = 10, mode: SearchMode = .hybrid, pathFilter: String? = nil) {
        self.query = query
        self.instruct = instruct
        self.examples = examples
        self.task = task
        self.k = k
        self.mode = mode
        self.pathFilter = pathFilter
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
    public var snippet: String

    enum CodingKeys: String, CodingKey {
        case rank, score, path, snippet
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

/// The sentence-aligned window of a chunk that shares the most words with the query.
public func snippet(of text: String, query: String, maxLength: Int = 240) -> String {
    let terms = Set(query.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init).filter { $0.count > 2 })
    let flat = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    guard flat.count > maxLength else { return flat }
    let words = flat.split(separator: " ")
    var best = 0, bestScore = -1
    var start = 0
    while start < words.count {
        var length = 0, score = 0, end = start
        while end < words.count, length + words[end].count + 1 <= maxLength {
            let w = words[end].lowercased().trimmingCharacters(in: .punctuationCharacters)
            if terms.contains(w) { score += 1 }
            length += words[end].count + 1
            end += 1
        }
        if score > bestScore { bestScore = score; best = start }
        if end >= words.count { break }
        start += max(1, (end - start) / 4)
    }
    var out: [Substring] = []
    var length = 0
    for w in words[best...] {
        if length + w.count + 1 > maxLength { break }
        out.append(w)
        length += w.count + 1
    }
    return (best > 0 ? "… " : "") + out.joined(separator: " ") + (best + out.count < words.count ? " …" : "")
}
