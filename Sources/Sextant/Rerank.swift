import Foundation

/// A document to rerank: an id and its text.
public struct RerankCandidate: Sendable, Equatable {
    public var id: String
    public var text: String

    public init(id: String, text: String) {
        self.id = id
        self.text = text
    }
}

/// One candidate after reranking: its place in the input (`index`, from 0), its new `rank`
/// (from 1) and the cosine similarity of its embedding to the query's.
public struct RerankResult: Sendable, Codable, Equatable {
    public var rank: Int
    public var index: Int
    public var id: String
    public var score: Double
}

/// Cosine similarity of two vectors (0 when either is zero).
public func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "vectors of different lengths")
    var dot = 0.0, na = 0.0, nb = 0.0
    a.withUnsafeBufferPointer { x in
        b.withUnsafeBufferPointer { y in
            for i in 0..<x.count {
                let p = Double(x[i]), q = Double(y[i])
                dot += p * q
                na += p * p
                nb += q * q
            }
        }
    }
    return na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : 0
}

/// Positions of `scores` from best to worst; equal scores keep their input order.
public func orderByScore(_ scores: [Double]) -> [Int] {
    scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
}

extension Embedder {
    /// Orders `candidates` by the cosine similarity of their passage embeddings to the query's
    /// embedding (`kind`: the query side, with its instruction and examples), best first; equal
    /// scores keep the input order. `progress` is told how many candidates are embedded so far.
    public func rerank(query: String, kind: InputKind, candidates: [RerankCandidate],
                       progress: ((Int, Int) -> Void)? = nil) -> [RerankResult] {
        let q = embed([query], kind: kind)[0]
        let vectors = embedInGroups(candidates.map(\.text), progress: progress)
        let scores = vectors.map { cosineSimilarity(q, $0) }
        return orderByScore(scores).enumerated().map { rank, i in
            RerankResult(rank: rank + 1, index: i, id: candidates[i].id, score: scores[i])
        }
    }

    /// Passage embeddings of `texts`, in groups of `group` so that long work reports progress.
    public func embedInGroups(_ texts: [String], group: Int = 256, progress: ((Int, Int) -> Void)? = nil) -> [[Float]] {
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        var start = 0
        while start < texts.count {
            let end = min(start + group, texts.count)
            vectors += embed(Array(texts[start..<end]), kind: .passage)
            start = end
            progress?(start, texts.count)
        }
        return vectors
    }
}

extension CrossEncoder {
    /// Orders `candidates` by the cross-encoder's (or LLM reranker's) score of each with the
    /// query, best first; equal scores keep the input order. `instruction` is the LLM reranker's
    /// task (its default when nil); cross-encoders ignore it. Scored in groups of `group` so that
    /// `progress` hears of long work. An empty list is an error, as is an empty query.
    public func rerank(query: String, instruction: String? = nil, candidates: [RerankCandidate], group: Int = 64,
                       progress: ((Int, Int) -> Void)? = nil) throws -> [RerankResult] {
        guard !candidates.isEmpty else { throw SextantError(.invalidArgument, "no candidates to rerank") }
        guard !query.isEmpty else { throw SextantError(.invalidArgument, "the query is empty") }
        var scores: [Double] = []
        scores.reserveCapacity(candidates.count)
        var start = 0
        while start < candidates.count {
            let end = min(start + group, candidates.count)
            scores += self.scores(query: query, passages: candidates[start..<end].map(\.text), instruction: instruction)
            start = end
            progress?(start, candidates.count)
        }
        return orderByScore(scores).enumerated().map { rank, i in
            RerankResult(rank: rank + 1, index: i, id: candidates[i].id, score: scores[i])
        }
    }
}

/// Reading candidate lists: JSON lines (`{"id", "text"}` or a JSON string per line) or one JSON
/// array of such objects or strings. A missing id is the candidate's position (from 0).
public enum RerankInput {
    public static func candidates(from data: Data, source: String) throws -> [RerankCandidate] {
        let firstByte = data.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        var candidates: [RerankCandidate] = []
        if firstByte == UInt8(ascii: "[") {
            guard let array = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) as? [Any] else {
                throw SextantError(.invalidArgument, "\(source): not valid JSON (expected an array of {\"id\", \"text\"} objects)")
            }
            for (i, item) in array.enumerated() {
                candidates.append(try candidate(item, position: i, place: "\(source): item \(i)"))
            }
        } else {
            var lineNumber = 0
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                lineNumber += 1
                if line.allSatisfy({ [0x20, 0x09, 0x0D].contains($0) }) { continue }
                guard let item = try? JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed]) else {
                    throw SextantError(.invalidArgument, "\(source): line \(lineNumber) is not JSON (expected {\"id\", \"text\"} per line)")
                }
                candidates.append(try candidate(item, position: candidates.count, place: "\(source): line \(lineNumber)"))
            }
        }
        guard !candidates.isEmpty else {
            throw SextantError(.invalidArgument, "\(source): no candidates (expected JSON lines {\"id\", \"text\"} or a JSON array)")
        }
        var seen: [String: Int] = [:]
        for (i, c) in candidates.enumerated() {
            if let first = seen.updateValue(i, forKey: c.id) {
                throw SextantError(.invalidArgument, "\(source): candidates \(first) and \(i) share the id '\(c.id)'; ids must be unique")
            }
        }
        return candidates
    }

    private static func candidate(_ item: Any, position: Int, place: String) throws -> RerankCandidate {
        if let text = item as? String { return RerankCandidate(id: String(position), text: text) }
        guard let object = item as? [String: Any], let text = object["text"] as? String else {
            throw SextantError(.invalidArgument, "\(place): expected {\"id\", \"text\"} with a string text")
        }
        let id: String
        switch object["id"] ?? object["_id"] {
        case nil: id = String(position)
        case let s as String: id = s
        case let n as NSNumber: id = n.stringValue
        default: throw SextantError(.invalidArgument, "\(place): id must be a string or a number")
        }
        return RerankCandidate(id: id, text: text)
    }
}
