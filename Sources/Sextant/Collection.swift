import Foundation
import Store
import VectorIndex

/// Settings of a sync run.
public struct SyncOptions: Sendable {
    public var folders: [URL]
    public var include: [String] = []
    public var exclude: [String] = []
    /// Files larger than this are skipped with a warning.
    public var maxFileBytes: Int = 100_000_000
    /// Chunks embedded per group (memory grows with it).
    public var groupChunks: Int = 512

    public init(folders: [URL], include: [String] = [], exclude: [String] = [], maxFileBytes: Int = 100_000_000) {
        self.folders = folders
        self.include = include
        self.exclude = exclude
        self.maxFileBytes = maxFileBytes
    }
}

/// Where a sync run is.
public struct SyncProgress: Sendable {
    public var filesDone: Int
    public var filesTotal: Int
    public var chunksEmbedded: Int
    public var seconds: Double
    public var chunksPerSecond: Double { seconds > 0 ? Double(chunksEmbedded) / seconds : 0 }
}

/// What a sync run did.
public struct SyncReport: Sendable, Codable {
    public var documentsAdded = 0
    public var documentsUpdated = 0
    public var documentsRemoved = 0
    public var documentsUnchanged = 0
    public var filesSkipped = 0
    public var chunksEmbedded = 0
    public var tokensEmbedded = 0
    public var seconds = 0.0
    public var embedSeconds = 0.0
}

/// Facts about a collection (`sextant info`).
public struct CollectionInfo: Sendable, Codable {
    public var directory: String
    public var documents: Int
    public var chunks: Int
    public var model: String
    public var modelSHA256: String
    public var dimensions: Int
    public var promptFormat: String
    public var chunkTokens: Int
    public var overlapTokens: Int
    public var databaseBytes: Int64
    public var indexBytes: Int64
}

/// A collection: a folder holding the SQLite store (the truth: documents, chunks, vectors,
/// FTS5, tasks) and the HNSW index derived from it, with the embedder that fills both.
public final class Collection {
    public let directory: URL
    public let store: CollectionStore
    public let embedder: Embedder
    public private(set) var manifest: Manifest
    var index: HNSWIndex
    /// Hears about skipped files, lossy decoding and repairs.
    public var warn: (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }

    var indexURL: URL { directory.appendingPathComponent("vectors.hnsw") }
    static let indexParameters = HNSWParameters(m: 16, efConstruction: 200, ef: 96, oversampling: 4)

    /// Opens (or creates) the collection in `directory`.
    /// - Parameters:
    ///   - model: the model folder; default: the one the collection was built with, else `defaultModel`.
    ///   - chunkTokens, overlapTokens: chunking of a new collection (defaults: 200 and 32, within the model's limit).
    public init(directory: URL, model: URL? = nil, defaultModel: URL, chunkTokens: Int? = nil, overlapTokens: Int? = nil,
                promptFormat: PromptFormat? = nil, precision: Precision = .f32, warn: ((String) -> Void)? = nil) throws {
        if let warn { self.warn = warn }
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw SextantError(.io, "\(directory.path): cannot create the index folder (\(error.localizedDescription))")
        }
        store = try CollectionStore(url: directory.appendingPathComponent("meta.sqlite"))
        let existing = try store.manifest()
        let modelURL = model ?? existing.map { URL(fileURLWithPath: $0.modelPath) } ?? defaultModel
        let format = promptFormat ?? existing.flatMap { PromptFormat(rawValue: $0.promptFormat) }
        embedder = try Embedder(folder: modelURL, promptFormat: format, precision: precision)
        let fingerprint = try Self.fingerprint(of: modelURL, store: store)
        if let existing {
            guard existing.modelSHA256 == fingerprint else {
                throw SextantError(.modelMismatch, """
                    \(directory.path) was built with model '\(existing.modelName)' (\(existing.modelPath), weights sha256 \(existing.modelSHA256.prefix(12))…) \
                    but was opened with '\(embedder.folder.name)' (\(modelURL.path), sha256 \(fingerprint.prefix(12))…). \
                    Use --model \(existing.modelPath), or re-embed everything with the new model: sextant reindex --index \(directory.path) --model \(modelURL.path)
                    """)
            }
            if chunkTokens != nil && chunkTokens != existing.chunkTokens || overlapTokens != nil && overlapTokens != existing.overlapTokens {
                self.warn("\(directory.path) keeps its chunking (\(existing.chunkTokens) tokens, overlap \(existing.overlapTokens)); --chunk-tokens/--overlap apply to new collections")
            }
            manifest = existing
        } else {
            let limit = embedder.maxTokens - embedder.tokenizer.specialTokenCount - (embedder.eosToken == nil ? 0 : 1)
            // 0: one chunk per document, cut at the model's limit (as sentence-transformers embeds).
            let chunk = chunkTokens == 0 ? 0 : min(chunkTokens ?? 200, limit)
            guard chunk == 0 || chunk >= 8 else { throw SextantError(.invalidArgument, "--chunk-tokens must be 0 (whole documents) or at least 8") }
            manifest = Manifest(modelName: embedder.folder.name, modelPath: modelURL.standardizedFileURL.path, modelSHA256: fingerprint,
                                dimensions: embedder.dimensions, promptFormat: embedder.promptFormat.rawValue,
                                chunkTokens: chunk, overlapTokens: min(max(0, overlapTokens ?? 32), chunk / 2))
            try store.setManifest(manifest)
        }
        index = try HNSWIndex(dimensions: embedder.dimensions, metric: .cosine, parameters: Self.indexParameters)
        try loadOrRebuildIndex()
    }

    /// sha256 of the model's weights (of the shards' digests, in name order, when sharded).
    /// With a `store`, a digest is remembered per file path, size and modification time, so an
    /// unchanged model is not hashed again on every open.
    static func fingerprint(of model: URL, store: CollectionStore? = nil) throws -> String {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: model.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !names.isEmpty else { throw SextantError(.notFound, "\(model.path): no .safetensors weights") }
        func digest(_ name: String) throws -> String {
            let url = model.appendingPathComponent(name).standardizedFileURL
            let attributes = try? fm.attributesOfItem(atPath: url.path)
            let stamp = "\(url.path)|\((attributes?[.size] as? NSNumber)?.int64Value ?? -1)|\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1)"
            let key = "sha256:" + stamp
            if let cached = try store?.value(forKey: key) { return cached }
            let hex = try SHA256.hex(fileAt: url)
            try store?.setValue(hex, forKey: key)
            return hex
        }
        if names.count == 1 { return try digest(names[0]) }
        var combined = SHA256()
        for name in names { combined.update(Array(try digest(name).utf8)) }
        return combined.hexDigest()
    }

    // MARK: Vector index

    /// Loads the HNSW file if it reflects the store's current generation; otherwise (missing,
    /// damaged, stale after a crash) rebuilds it from the full vectors in SQLite.
    func loadOrRebuildIndex() throws {
        let generation = try store.generation()
        let recorded = try store.value(forKey: "index_generation").flatMap(Int.init)
        if FileManager.default.fileExists(atPath: indexURL.path) {
            do {
                let loaded = try HNSWIndex.load(from: indexURL)
                if recorded == generation, loaded.dimensions == embedder.dimensions, loaded.count == (try store.counts().chunks) {
                    index = loaded
                    return
                }
                warn("\(indexURL.path) is out of date; rebuilding it from \(store.url.lastPathComponent)")
            } catch {
                warn("\(indexURL.path) is damaged (\(error)); rebuilding it from \(store.url.lastPathComponent)")
            }
        }
        try rebuildIndex()
    }

    /// Rebuilds the HNSW index from SQLite and saves it.
    public func rebuildIndex() throws {
        index = try HNSWIndex.rebuild(dimensions: embedder.dimensions, metric: .cosine, parameters: Self.indexParameters,
                                      from: storedVectors())
        try saveIndex()
    }

    /// Every chunk's full vector from SQLite, keyed as the index keys them.
    private func storedVectors() throws -> [(id: UInt64, vector: [Float])] {
        var items: [(id: UInt64, vector: [Float])] = []
        try store.forEachVector { id, _, vector in items.append((UInt64(id), vector)) }
        return items
    }

    /// Saves the index after a change. Deletes give their space back: an index with at most half
    /// of its slots live is rebuilt compactly from SQLite, and SQLite returns its free pages.
    func saveIndex() throws {
        let slots = index.slotCount
        if slots - index.count >= max(256, slots / 2) {
            try index.compact(from: storedVectors())   // in place: searches running meanwhile keep their index
        }
        let generation = try store.generation()
        try index.save(to: indexURL)
        try store.setValue(String(generation), forKey: "index_generation")
        do { try store.reclaimSpace() } catch { warn("\(error) (the collection is intact; the space is reused by later additions)") }
    }

    // MARK: Sync

    /// Brings the collection in line with `options.folders`: embeds new and changed files,
    /// removes documents whose files are gone. Each document is replaced in one transaction, so
    /// a run killed at any point leaves no duplicates or orphans, and the next run finishes it.
    public func sync(_ options: SyncOptions, progress: ((SyncProgress) -> Void)? = nil) throws -> SyncReport {
        let started = Date()
        var report = SyncReport()
        var walker = FolderWalker(include: options.include, exclude: options.exclude)
        walker.warn = warn
        var files: [URL] = []
        var roots: [String] = []
        for folder in options.folders {
            var isDir: ObjCBool = false
            let path = folder.standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                warn("\(path): no such file or folder; skipped (documents indexed from it are kept)")
                continue
            }
            roots.append(path)
            if isDir.boolValue {
                files += walker.files(under: folder.standardizedFileURL).map(\.url)
            } else {
                files.append(folder.standardizedFileURL)
            }
        }
        let known = try store.documents()
        var seen = Set<String>()
        let chunker = Chunker(maxTokens: max(manifest.chunkTokens, 1), overlapTokens: manifest.overlapTokens) { [embedder] in
            embedder.tokenizer.tokenize($0).count
        }

        struct Pending {
            var key: String, title: String, hash: String, size: Int64, modified: Double
            var chunks: [Chunk]
            var isNew: Bool
        }
        var group: [Pending] = []
        var groupChunks = 0
        func flush() throws {
            guard !group.isEmpty else { return }
            let texts = group.flatMap { $0.chunks.map(\.text) }
            let t0 = Date()
            let (vectors, tokens) = embedder.embedCountingTokens(texts, kind: .passage)
            report.embedSeconds += Date().timeIntervalSince(t0)
            report.tokensEmbedded += tokens
            var at = 0
            for doc in group {
                let newChunks = doc.chunks.enumerated().map { j, c in
                    NewChunk(text: c.text, byteRange: c.byteRange, lineRange: c.lineRange, headingPath: c.headingPath, vector: vectors[at + j])
                }
                let (removed, added) = try store.replaceDocument(path: doc.key, contentHash: doc.hash, size: doc.size,
                                                                 modifiedAt: doc.modified, title: doc.title, chunks: newChunks)
                for id in removed { try index.remove(id: UInt64(id)) }
                for (id, c) in zip(added, newChunks) { try index.add(id: UInt64(id), vector: c.vector) }
                at += doc.chunks.count
                if doc.isNew { report.documentsAdded += 1 } else { report.documentsUpdated += 1 }
            }
            report.chunksEmbedded += texts.count
            group.removeAll()
            groupChunks = 0
        }

        for (fileNumber, file) in files.enumerated() {
            progress?(SyncProgress(filesDone: fileNumber, filesTotal: files.count, chunksEmbedded: report.chunksEmbedded + groupChunks,
                                   seconds: Date().timeIntervalSince(started)))
            let documents: [ExtractedDocument]
            do {
                documents = try TextExtractor.extract(file, maxBytes: options.maxFileBytes, warn: warn)
            } catch let skip as SkipReason {
                warn("\(file.path): \(skip); skipped")
                report.filesSkipped += 1
                // Keep what was indexed from it only if the file is still there (unreadable now).
                for key in known.keys where key == file.path || key.hasPrefix(file.path + "#") { seen.insert(key) }
                continue
            }
            let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            for doc in documents {
                seen.insert(doc.key)
                let hash = SHA256.hex(Array((manifest.chunkTokens.description + "\u{0}" + doc.title + "\u{0}" + doc.text).utf8))
                if let old = known[doc.key], old.contentHash == hash {
                    report.documentsUnchanged += 1
                    continue
                }
                let chunks = manifest.chunkTokens == 0 ? Self.wholeDocument(doc.text) : chunker.chunks(of: doc.text, markdown: doc.markdown)
                if chunks.isEmpty {
                    warn("\(doc.key): no text to index; skipped")
                    continue
                }
                group.append(Pending(key: doc.key, title: doc.title, hash: hash, size: size, modified: modified,
                                     chunks: chunks, isNew: known[doc.key] == nil))
                groupChunks += chunks.count
                if groupChunks >= options.groupChunks { try flush() }
            }
        }
        try flush()

        // Documents under the synced roots whose files are gone.
        for (key, _) in known where !seen.contains(key) {
            let filePath = key.split(separator: "#", maxSplits: 1).first.map(String.init) ?? key
            guard roots.contains(where: { filePath == $0 || filePath.hasPrefix($0 + "/") }) else { continue }
            if FileManager.default.fileExists(atPath: filePath) && key == filePath {
                continue   // still there but no longer walked (now ignored or excluded): keep it
            }
            for id in try store.removeDocument(path: key) { try index.remove(id: UInt64(id)) }
            report.documentsRemoved += 1
        }
        try saveIndex()
        report.seconds = Date().timeIntervalSince(started)
        progress?(SyncProgress(filesDone: files.count, filesTotal: files.count, chunksEmbedded: report.chunksEmbedded,
                               seconds: report.seconds))
        return report
    }

    /// The whole text as one chunk (the embedder truncates it to the model's limit).
    static func wholeDocument(_ text: String) -> [Chunk] {
        guard !text.isEmpty else { return [] }
        let lines = text.utf8.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        return [Chunk(text: text, byteRange: 0..<text.utf8.count, lineRange: 1...lines, headingPath: "")]
    }

    /// Removes the documents at `path` (a file, a `file#id` record, or everything under a folder).
    public func remove(path: String) throws -> Int {
        let target = URL(fileURLWithPath: path).standardizedFileURL.path
        var removed = 0
        for key in try store.documents().keys where key == target || key.hasPrefix(target + "#") || key.hasPrefix(target + "/") {
            for id in try store.removeDocument(path: key) { try index.remove(id: UInt64(id)) }
            removed += 1
        }
        if removed > 0 { try saveIndex() }
        return removed
    }

    // MARK: Search

    /// Runs a search: the query is embedded in the model's prompt format (with the task's
    /// instruction and examples), HNSW candidates are rescored with full vectors, and in hybrid
    /// mode fused with FTS5 BM25 by reciprocal rank. A caller that has already embedded the
    /// query (as `queryKind` says) passes its `queryVector`.
    public func search(_ request: SearchRequest, queryVector: [Float]? = nil) throws -> [SearchHit] {
        if let v = queryVector, v.count != embedder.dimensions {
            throw SextantError(.invalidArgument, "the query vector has \(v.count) dimensions; the collection's have \(embedder.dimensions)")
        }
        guard request.k >= 1 else { throw SextantError(.invalidArgument, "k must be at least 1") }
        guard request.k <= 10_000 else { throw SextantError(.invalidArgument, "k must be at most 10000") }
        let query = request.query.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !query.isEmpty else { throw SextantError(.invalidArgument, "the query is empty") }
        let kind = try queryKind(instruct: request.instruct, examples: request.examples, task: request.task)
        let depth = max(request.k, request.mode == .hybrid ? 100 : request.k)
        let allowed = try request.pathFilter.map { try store.chunkIds(pathGlob: $0) }

        var dense: [Int64] = []
        var denseScores: [Int64: Double] = [:]
        if request.mode != .lexical {
            let vector = queryVector ?? embedder.embed([query], kind: kind)[0]
            let filter: ((UInt64) -> Bool)? = allowed.map { set in { set.contains(Int64($0)) } }
            let found = try index.search(vector, k: depth, filter: filter)
            for hit in found {
                dense.append(Int64(hit.id))
                denseScores[Int64(hit.id)] = Double(1 - hit.distance)   // cosine similarity
            }
        }
        var lexical: [Int64] = []
        var lexicalScores: [Int64: Double] = [:]
        if request.mode != .dense {
            for hit in try store.lexicalSearch(query, limit: depth, pathGlob: request.pathFilter) {
                lexical.append(hit.id)
                lexicalScores[hit.id] = hit.score
            }
        }
        let ranked: [(id: Int64, score: Double)]
        switch request.mode {
        case .dense: ranked = dense.map { ($0, denseScores[$0]!) }
        case .lexical: ranked = lexical.map { ($0, lexicalScores[$0]!) }
        case .hybrid: ranked = reciprocalRankFusion([dense, lexical])
        }
        let top = Array(ranked.prefix(request.k))
        let records = try store.chunks(ids: top.map(\.id))
        return top.enumerated().compactMap { i, item in
            guard let r = records[item.id] else { return nil }
            return SearchHit(rank: i + 1, score: item.score, path: r.path, chunkId: r.id,
                             byteStart: r.byteRange.lowerBound, byteEnd: r.byteRange.upperBound,
                             lineStart: r.lineRange.lowerBound, lineEnd: r.lineRange.upperBound,
                             headingPath: r.headingPath, snippet: snippet(of: r.text, query: query))
        }
    }

    // MARK: Tasks, info, reindex

    /// Saves a named task (instruction and examples) for `search --task`.
    public func saveTask(name: String, instruct: String, examples: [Example]) throws {
        guard !name.isEmpty, name.count <= 200 else { throw SextantError(.invalidArgument, "a task name must have 1 to 200 characters") }
        let json = String(decoding: try JSONEncoder().encode(examples), as: UTF8.self)
        try store.saveTask(TaskRecord(name: name, instruct: instruct, examplesJSON: json))
    }

    public func tasks() throws -> [(name: String, instruct: String, examples: [Example])] {
        try store.tasks().map { ($0.name, $0.instruct, Self.decodeExamples($0.examplesJSON)) }
    }

    static func decodeExamples(_ json: String) -> [Example] {
        (try? JSONDecoder().decode([Example].self, from: Data(json.utf8))) ?? []
    }

    public func info() throws -> CollectionInfo {
        let counts = try store.counts()
        let indexBytes = (try? FileManager.default.attributesOfItem(atPath: indexURL.path)[.size] as? NSNumber)?.int64Value ?? 0
        return CollectionInfo(directory: directory.path, documents: counts.documents, chunks: counts.chunks,
                              model: manifest.modelName, modelSHA256: manifest.modelSHA256, dimensions: manifest.dimensions,
                              promptFormat: manifest.promptFormat, chunkTokens: manifest.chunkTokens,
                              overlapTokens: manifest.overlapTokens, databaseBytes: store.bytesOnDisk(), indexBytes: indexBytes)
    }

    /// Re-embeds every chunk with `model` (the collection's own model when nil), records it in
    /// the manifest and rebuilds the index. Chunk boundaries are kept.
    public static func reindex(directory: URL, model: URL, progress: ((Int, Int) -> Void)? = nil,
                               warn: ((String) -> Void)? = nil) throws -> Int {
        let store = try CollectionStore(url: directory.appendingPathComponent("meta.sqlite"))
        guard var manifest = try store.manifest() else {
            throw SextantError(.notFound, "\(directory.path) is not a collection (run sextant index first)")
        }
        let embedder = try Embedder(folder: model)
        let documents = try store.documents().values.sorted { $0.id < $1.id }
        var done = 0
        for doc in documents {
            let chunks = try store.chunkTexts(documentId: doc.id)
            let vectors = embedder.embed(chunks.map(\.text), kind: .passage)
            try store.updateVectors(zip(chunks, vectors).map { ($0.id, $1) })
            done += 1
            progress?(done, documents.count)
        }
        manifest.modelName = embedder.folder.name
        manifest.modelPath = model.standardizedFileURL.path
        manifest.modelSHA256 = try fingerprint(of: model, store: store)
        manifest.dimensions = embedder.dimensions
        manifest.promptFormat = embedder.promptFormat.rawValue
        try store.setManifest(manifest)
        // Opening finds the index out of date (the vectors changed) and rebuilds it.
        _ = try Collection(directory: directory, model: model, defaultModel: model, warn: warn)
        return done
    }
}
