import Foundation

/// A ranked run in TREC format (`qid Q0 docid rank score tag` per line): each query's documents,
/// best first. Queries keep the order of their first line.
public struct TrecRun: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var score: Double

        public init(id: String, score: Double) {
            self.id = id
            self.score = score
        }
    }

    public var queries: [(id: String, documents: [Entry])]

    public init(queries: [(id: String, documents: [Entry])]) {
        self.queries = queries
    }

    public static func == (a: TrecRun, b: TrecRun) -> Bool {
        a.queries.count == b.queries.count && zip(a.queries, b.queries).allSatisfy { $0.id == $1.id && $0.documents == $1.documents }
    }

    /// Parses a run. Within a query, documents are ordered by score (higher first); equal scores
    /// keep the order of the rank column (`trec_eval` would break such ties by document id).
    /// Malformed lines, non-finite scores and a document listed twice for one query are errors
    /// that name the line.
    public static func parse(_ data: Data, source: String) throws -> TrecRun {
        guard let text = String(data: data, encoding: .utf8) else {
            throw SextantError(.invalidArgument, "\(source): not UTF-8 text (expected a TREC run: qid Q0 docid rank score tag)")
        }
        var order: [String] = []
        var rows: [String: [(id: String, rank: Int, score: Double, line: Int)]] = [:]
        var firstLine: [String: [String: Int]] = [:]
        var lineNumber = 0
        for line in LineInput.lines(of: text) {
            lineNumber += 1
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 6, let rank = Int(fields[3]), let score = Double(fields[4]), score.isFinite else {
                throw SextantError(.invalidArgument, "\(source): line \(lineNumber) is not 'qid Q0 docid rank score tag'")
            }
            let q = String(fields[0]), d = String(fields[2])
            if let earlier = firstLine[q]?[d] {
                throw SextantError(.invalidArgument, "\(source): line \(lineNumber) lists document '\(d)' for query '\(q)' again (first on line \(earlier))")
            }
            if rows[q] == nil { order.append(q) }
            rows[q, default: []].append((d, rank, score, lineNumber))
            firstLine[q, default: [:]][d] = lineNumber
        }
        guard !order.isEmpty else { throw SextantError(.invalidArgument, "\(source): the run is empty") }
        return TrecRun(queries: order.map { q in
            let sorted = rows[q]!.sorted {
                $0.score != $1.score ? $0.score > $1.score : ($0.rank != $1.rank ? $0.rank < $1.rank : $0.line < $1.line)
            }
            return (q, sorted.map { Entry(id: $0.id, score: $0.score) })
        })
    }

    /// The run as TREC lines with ranks from 1.
    public func formatted(tag: String) -> String {
        Evaluation.trecRun(queries.map { ($0.id, $0.documents.map { ($0.id, $0.score) }) }, tag: tag)
    }

    /// Document ids per query, best first (for `Evaluation.score`).
    public var rankings: [String: [String]] {
        Dictionary(queries.map { ($0.id, $0.documents.map(\.id)) }, uniquingKeysWith: { a, _ in a })
    }
}

/// What a run rerank did.
public struct RunRerankReport: Sendable, Codable {
    /// Queries whose lists were reranked.
    public var queries = 0
    /// Queries of the run without a text in the queries file: written back unchanged.
    public var queriesWithoutText: [String] = []
    /// (query, document) pairs scored by the embedder.
    public var pairsScored = 0
    /// Distinct documents of the reranked lists missing from the corpus or collection: kept
    /// below the scored ones of their queries, in their original order.
    public var documentsMissing = 0

    enum CodingKeys: String, CodingKey {
        case queries, queriesWithoutText = "queries_without_text", pairsScored = "pairs_scored", documentsMissing = "documents_missing"
    }
}

public enum RunReranker {
    /// Reranks the top `depth` documents of each query of `run` by the cosine similarity of the
    /// query's vector to the document's (a document with several vectors, such as the chunks of
    /// an indexed file, counts by its best one). With `fusionK`, the new order is the reciprocal-
    /// rank fusion (k = fusionK) of the original order and the embedder's.
    ///
    /// Nothing is dropped: documents below `depth`, and those without a vector, follow in their
    /// original order with scores just below the reranked ones; queries without a vector are
    /// written back as they were.
    public static func rerank(_ run: TrecRun, queryVectors: [String: [Float]], documentVectors: [String: [[Float]]],
                              depth: Int, fusionK: Double? = nil) -> (run: TrecRun, report: RunRerankReport) {
        rerank(run, depth: depth, fusionK: fusionK) { qid, ids in
            guard let q = queryVectors[qid] else { return nil }
            return ids.map { id in documentVectors[id].flatMap { $0.isEmpty ? nil : $0.map { cosineSimilarity(q, $0) }.max() } }
        }
    }

    /// The same with any scorer (a cross-encoder): `score(queryId, documentIds)` gives each of the
    /// top `depth` documents a score (nil: cannot score it), or nil when the query has no text.
    public static func rerank(_ run: TrecRun, depth: Int, fusionK: Double? = nil,
                              score: (_ query: String, _ documents: [String]) throws -> [Double?]?) rethrows -> (run: TrecRun, report: RunRerankReport) {
        var report = RunRerankReport()
        var missing = Set<String>()
        var out: [(id: String, documents: [TrecRun.Entry])] = []
        for (qid, documents) in run.queries {
            let head = documents.prefix(depth)
            guard let scores = try score(qid, head.map(\.id)) else {
                report.queriesWithoutText.append(qid)
                out.append((qid, documents))
                continue
            }
            report.queries += 1
            precondition(scores.count == head.count, "a rerank scorer must score every document it is given")
            var scored: [(id: String, score: Double)] = []
            var unscored: [String] = []
            for (d, s) in zip(head, scores) {
                if let s { scored.append((d.id, s)) } else { unscored.append(d.id) }
            }
            report.pairsScored += scored.count
            missing.formUnion(unscored)
            let dense = orderByScore(scored.map(\.score)).map { scored[$0] }   // ties keep the run's order
            var ranked: [TrecRun.Entry]
            if let k = fusionK {
                // Reciprocal-rank fusion of each scored document's place in the run and in the
                // embedder's order; documents without a vector are not fused (they follow).
                let originalRank = Dictionary(uniqueKeysWithValues: head.enumerated().map { ($1.id, $0 + 1) })
                ranked = dense.enumerated().map { denseRank, d in
                    TrecRun.Entry(id: d.id, score: 1 / (k + Double(originalRank[d.id]!)) + 1 / (k + Double(denseRank + 1)))
                }
                ranked.sort { $0.score != $1.score ? $0.score > $1.score : originalRank[$0.id]! < originalRank[$1.id]! }
            } else {
                ranked = dense.map { TrecRun.Entry(id: $0.id, score: $0.score) }
            }
            // Everything not scored: in the run's order, with decreasing scores below the last scored one.
            let scoredCount = ranked.count
            ranked += (unscored + documents.dropFirst(depth).map(\.id)).map { TrecRun.Entry(id: $0, score: 0) }
            var floor = ranked.prefix(scoredCount).last?.score ?? 0
            for i in scoredCount..<ranked.count {
                floor -= 0.001
                ranked[i].score = floor
            }
            out.append((qid, ranked))
        }
        report.documentsMissing = missing.count
        return (TrecRun(queries: out), report)
    }

    /// Texts of the BEIR corpus records (`{"_id", "title", "text"}` → title + ". " + text, as
    /// indexing reads them) whose ids are in `ids`. The file is read line by line from a memory
    /// map, so only the texts asked for are kept.
    public static func corpusTexts(_ url: URL, ids: Set<String>, warn: (String) -> Void) throws -> [String: String] {
        guard let data = try? Data(contentsOf: url, options: .alwaysMapped) else {
            throw SextantError(.notFound, "\(url.path): cannot read the corpus")
        }
        var texts: [String: String] = [:]
        var records = 0, bad = 0, lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            lineNumber += 1
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            let line = data[start..<end]
            start = end < data.endIndex ? end + 1 : end
            if line.allSatisfy({ [0x20, 0x09, 0x0D].contains($0) }) { continue }
            guard let record = TextExtractor.beirRecord(Data(line), position: lineNumber) else {
                bad += 1
                if bad <= 3 { warn("\(url.path): line \(lineNumber) is not a BEIR record {\"_id\", \"title\", \"text\"}; skipped") }
                continue
            }
            records += 1
            if ids.contains(record.id) { texts[record.id] = record.text }
        }
        if records == 0 {
            throw SextantError(.invalidArgument, "\(url.path): no BEIR records ({\"_id\", \"title\", \"text\"} per line)")
        }
        return texts
    }

    /// Query texts: BEIR `queries.jsonl` (`{"_id", "text"}`) or, for a `.tsv` file, `qid<TAB>text` lines.
    public static func queryTexts(_ url: URL) throws -> [String: String] {
        if url.pathExtension.lowercased() == "tsv" {
            guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else {
                throw SextantError(.notFound, "\(url.path): cannot read the queries")
            }
            var queries: [String: String] = [:]
            for (i, line) in LineInput.lines(of: text).enumerated() where !line.isEmpty {
                let parts = line.split(separator: "\t", maxSplits: 1)
                guard parts.count == 2 else { throw SextantError(.invalidArgument, "\(url.path): line \(i + 1) is not 'qid<TAB>text'") }
                queries[String(parts[0])] = String(parts[1]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return queries
        }
        return Dictionary(try Evaluation.readQueries(url).map { ($0.id, $0.text) }, uniquingKeysWith: { a, _ in a })
    }
}
