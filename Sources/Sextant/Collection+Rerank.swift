import Foundation

extension Collection {
    /// Two-stage retrieval: the search's best `depth` hits (at least k) are read again by
    /// `reranker` (a cross-encoder or LLM reranker) together with the query, and the best k of
    /// its scores come back. `score` is then the reranker's, `retrievalScore` the first stage's;
    /// the request's instruction is the LLM reranker's task.
    public func search(_ request: SearchRequest, reranker: CrossEncoder, depth: Int, queryVector: [Float]? = nil) throws -> [SearchHit] {
        guard depth >= 1 else { throw SextantError(.invalidArgument, "the rerank depth must be at least 1") }
        guard depth <= 10_000 else { throw SextantError(.invalidArgument, "the rerank depth must be at most 10000") }
        var first = request
        first.k = max(request.k, depth)
        first.text = .full
        let candidates = try search(first, queryVector: queryVector)
        guard !candidates.isEmpty else { return [] }
        let query = request.query.trimmingCharacters(in: .whitespacesAndNewlines)
        let scores = reranker.scores(query: query, passages: candidates.map { $0.text ?? "" }, instruction: request.instruct)
        let cutter = request.text == .snippet ? SnippetCutter(query: query) : nil
        return orderByScore(scores).prefix(request.k).enumerated().map { rank, i in
            var hit = candidates[i]
            hit.rank = rank + 1
            hit.retrievalScore = hit.score
            hit.score = scores[i]
            switch request.text {
            case .full: break
            case .none: hit.text = nil
            case .snippet: hit.snippet = cutter?.snippet(of: hit.text ?? ""); hit.text = nil
            }
            return hit
        }
    }

    /// `search(_:reranker:depth:)` for concurrent callers (a server): the query is embedded with
    /// other callers' queries, the rest runs off the caller's thread.
    public func search(_ request: SearchRequest, reranker: CrossEncoder, depth: Int) async throws -> [SearchHit] {
        try await searchConcurrently(request) { try self.search(request, reranker: reranker, depth: depth, queryVector: $0) }
    }

    /// The query side of a search: the instruction and examples given, or else those of the
    /// saved `task`.
    public func queryKind(instruct: String?, examples: [Example], task: String?) throws -> InputKind {
        var instruct = instruct
        var examples = examples
        if let name = task {
            guard let saved = try store.task(named: name) else {
                throw SextantError(.notFound, "no task named '\(name)' (see sextant task list)")
            }
            if instruct == nil { instruct = saved.instruct }
            if examples.isEmpty { examples = Self.decodeExamples(saved.examplesJSON) }
        }
        return .query(instruct: instruct, examples: examples)
    }

    /// The stored chunk vectors of the documents a run names, by the run's document id. An id
    /// names the document whose path is the id, else the BEIR record `….jsonl#id`, else the file
    /// named `id`; ids that match several documents are an error, ids that match none are left
    /// out. No text is embedded again.
    public func documentVectors(forRunIds ids: Set<String>) throws -> [String: [[Float]]] {
        let paths = try store.documentList().map(\.path)
        var byRecord: [String: [String]] = [:]
        var byFileName: [String: [String]] = [:]
        for p in paths {
            // BEIR records are "FILE.jsonl#ID" (the id may hold '#' and '/'); files match by name.
            if let marker = p.range(of: ".jsonl#", options: .caseInsensitive) {
                byRecord[String(p[marker.upperBound...]), default: []].append(p)
            } else {
                byFileName[(p as NSString).lastPathComponent, default: []].append(p)
            }
        }
        let exact = Set(paths)
        var pathToId: [String: String] = [:]
        for id in ids {
            let matches = exact.contains(id) ? [id] : (byRecord[id] ?? byFileName[id] ?? [])
            guard matches.count <= 1 else {
                throw SextantError(.invalidArgument, """
                    document id '\(id)' of the run matches \(matches.count) documents of \(directory.path) \
                    (\(matches.sorted().prefix(2).joined(separator: ", "))…); give full paths in the run or index one corpus per collection
                    """)
            }
            if let p = matches.first { pathToId[p] = id }
        }
        var vectors: [String: [[Float]]] = [:]
        guard !pathToId.isEmpty else { return vectors }
        try store.forEachVector { _, path, vector in
            if let id = pathToId[path] { vectors[id, default: []].append(vector) }
        }
        return vectors
    }
}
