import Foundation

extension Collection {
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
