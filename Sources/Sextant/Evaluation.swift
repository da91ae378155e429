import Foundation

/// Retrieval quality on a BEIR-layout dataset (`corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`).
public struct EvaluationResult: Sendable, Codable {
    public var ndcgAt10: Double
    public var recallAt100: Double
    public var mrrAt10: Double
    public var queries: Int

    enum CodingKeys: String, CodingKey {
        case ndcgAt10 = "ndcg@10", recallAt100 = "recall@100", mrrAt10 = "mrr@10", queries
    }
}

public enum Evaluation {
    /// Relevance judgements: query id → document id → grade.
    public static func readQrels(_ url: URL) throws -> [String: [String: Int]] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw SextantError(.notFound, "\(url.path): cannot read the relevance judgements")
        }
        var qrels: [String: [String: Int]] = [:]
        for (i, line) in LineInput.lines(of: text).enumerated() where !line.allSatisfy(\.isWhitespace) {
            let f = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            if i == 0, f.first == "query-id" { continue }
            guard f.count >= 3, let grade = Int(f[f.count - 1]) else {
                throw SextantError(.corrupt, "\(url.path): line \(i + 1) is not 'query-id corpus-id score'")
            }
            if grade > 0 { qrels[String(f[0]), default: [:]][String(f[1])] = grade }
        }
        return qrels
    }

    /// Queries of `queries.jsonl`: id → text, in file order.
    public static func readQueries(_ url: URL) throws -> [(id: String, text: String)] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw SextantError(.notFound, "\(url.path): cannot read the queries")
        }
        return try LineInput.lines(of: text).enumerated().filter { !$0.element.allSatisfy(\.isWhitespace) }.map { i, line in
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let q = obj["text"] as? String else {
                throw SextantError(.corrupt, "\(url.path): line \(i + 1) is not {\"_id\", \"text\"}")
            }
            let id = (obj["_id"] as? String) ?? (obj["_id"] as? Int).map(String.init) ?? String(i + 1)
            return (id, q)
        }
    }

    /// nDCG@10 (linear gains, as trec_eval), recall@100 and MRR@10 over the judged queries.
    public static func score(runs: [String: [String]], qrels: [String: [String: Int]]) -> EvaluationResult {
        var ndcg = 0.0, recall = 0.0, mrr = 0.0
        let judged = qrels.keys.filter { runs[$0] != nil }
        for q in judged {
            let rel = qrels[q]!
            let ranked = runs[q]!
            var dcg = 0.0
            for (i, d) in ranked.prefix(10).enumerated() { dcg += Double(rel[d] ?? 0) / log2(Double(i + 2)) }
            let ideal = rel.values.sorted(by: >).prefix(10).enumerated().reduce(0.0) { $0 + Double($1.element) / log2(Double($1.offset + 2)) }
            ndcg += ideal > 0 ? dcg / ideal : 0
            recall += Double(ranked.prefix(100).filter { rel[$0] != nil }.count) / Double(rel.count)
            if let first = ranked.prefix(10).firstIndex(where: { rel[$0] != nil }) { mrr += 1 / Double(first + 1) }
        }
        let n = Double(max(judged.count, 1))
        return EvaluationResult(ndcgAt10: ndcg / n, recallAt100: recall / n, mrrAt10: mrr / n, queries: judged.count)
    }

    /// A TREC run file: `qid Q0 docid rank score tag` lines, in the given order. Scores are
    /// written with 6 decimals and made strictly decreasing within a query (a tie, also one made
    /// by rounding, is lowered by 0.000001), so that `trec_eval`, which orders by score, reads
    /// the documents in the order written.
    public static func trecRun(_ runs: [(query: String, docs: [(id: String, score: Double)])], tag: String) -> String {
        var out = ""
        for (q, docs) in runs {
            var last = Int64.max   // in millionths
            for (i, d) in docs.enumerated() {
                var micros = Int64(((d.score.isNaN ? -9e12 : min(max(d.score, -9e12), 9e12)) * 1e6).rounded())
                if micros >= last { micros = last - 1 }
                last = micros
                let sign = micros < 0 ? "-" : ""
                let magnitude = micros.magnitude
                out += "\(q) Q0 \(d.id) \(i + 1) \(sign)\(magnitude / 1_000_000).\(String(format: "%06llu", magnitude % 1_000_000)) \(tag)\n"
            }
        }
        return out
    }
}

extension Collection {
    /// Indexes a BEIR corpus into this (empty) collection and runs its queries; documents are
    /// ranked by their best chunk. Returns the metrics and the run (top 100 per query).
    public func evaluate(beir directory: URL, mode: SearchMode, progress: ((String) -> Void)? = nil)
        throws -> (result: EvaluationResult, run: [(query: String, docs: [(id: String, score: Double)])]) {
        let corpus = directory.appendingPathComponent("corpus.jsonl")
        guard FileManager.default.fileExists(atPath: corpus.path) else {
            throw SextantError(.notFound, "\(directory.path): no corpus.jsonl (expected the BEIR layout)")
        }
        let queries = try Evaluation.readQueries(directory.appendingPathComponent("queries.jsonl"))
        let qrels = try Evaluation.readQrels(directory.appendingPathComponent("qrels/test.tsv"))
        let report = try sync(SyncOptions(folders: [corpus]))
        progress?("indexed \(report.documentsAdded) documents, \(report.chunksEmbedded) chunks in \(String(format: "%.1f", report.seconds)) s")
        let prefix = corpus.standardizedFileURL.path + "#"
        var run: [(query: String, docs: [(id: String, score: Double)])] = []
        var runs: [String: [String]] = [:]
        for (i, q) in queries.enumerated() where qrels[q.id] != nil {
            let hits = try search(SearchRequest(query: q.text, k: 300, mode: mode))
            var docs: [(id: String, score: Double)] = []
            var seen = Set<String>()
            for h in hits where h.path.hasPrefix(prefix) {
                let id = String(h.path.dropFirst(prefix.count))
                if seen.insert(id).inserted { docs.append((id, h.score)) }
                if docs.count == 100 { break }
            }
            run.append((q.id, docs))
            runs[q.id] = docs.map(\.id)
            if (i + 1) % 50 == 0 { progress?("\(i + 1)/\(queries.count) queries") }
        }
        return (Evaluation.score(runs: runs, qrels: qrels), run)
    }
}
