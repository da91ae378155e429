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
    /// Bytes the vector index holds in memory (graph, int8 codes, ids).
    public var indexMemoryBytes: Int64
    /// Database and index file per chunk (texts, full vectors, FTS5, graph and codes).
    public var bytesPerChunkOnDisk: Int64
    /// In-memory index per chunk (the full vectors stay in SQLite and its page cache).
    public var bytesPerChunkInMemory: Int64
    /// Each metadata field with the number of documents that have it.
    public var fields: [FieldCount] = []
}

/// A metadata field and how many documents have it.
public struct FieldCount: Sendable, Codable, Equatable {
    public var name: String
    public var documents: Int
}

/// A collection: a folder holding the SQLite store (the truth: documents, chunks, vectors,
/// FTS5, tasks) and the HNSW index derived from it, with the embedder that fills both.
///
/// Many processes may open one collection at once (a server, `sextant index` from cron,
/// scripts). Writers queue on the folder's write lock; each write is one SQLite transaction
/// that also logs the chunk ids it added and removed. Readers never wait for writers: before
/// every search the in-memory index compares the store's generation with its own and catches
/// up from the log, so a search sees every write committed before it started. One instance
/// may be used from many threads.
public final class Collection: @unchecked Sendable {   // mutable state is guarded by indexLock and writeLock
    public let directory: URL
    let store: CollectionStore
    public let embedder: Embedder
    public private(set) var manifest: Manifest
    /// The in-memory index and the store generation it reflects; read and replaced under `indexLock`.
    private var currentIndex: HNSWIndex
    private var indexGeneration = -1
    private let indexLock = NSLock()
    let writeLock: WriteLock
    /// Embeds the queries of concurrent `search` calls together (prefix caches kept).
    public let batcher: EmbeddingBatcher
    /// Hears about skipped files, lossy decoding and repairs.
    public var warn: (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
    /// True when the collection's files cannot be written: searches work, changes are refused.
    public var isReadOnly: Bool { store.readOnly }

    /// The index, caught up with every committed write (for tests and the rerank helpers).
    var index: HNSWIndex {
        get throws { try caughtUpIndex() }
    }

    var indexURL: URL { directory.appendingPathComponent("vectors.hnsw") }
    /// The index holds the graph and int8 codes; full vectors live once, in SQLite, and the
    /// k × oversampling candidates of a search are rescored from there (`StoreVectorSource`).
    static let indexParameters = HNSWParameters(m: 16, efConstruction: 200, ef: 96, oversampling: 4, storesVectors: false)
    private let vectorSource: StoreVectorSource

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
        vectorSource = StoreVectorSource(store: store)
        writeLock = WriteLock(directory: directory)
        if let reason = store.readOnlyReason {
            self.warn("\(directory.path) is open read-only (\(reason)): searching works, changes are refused, and the vector index is kept in memory")
        }
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
            let fresh = Manifest(modelName: embedder.folder.name, modelPath: modelURL.standardizedFileURL.path, modelSHA256: fingerprint,
                                 dimensions: embedder.dimensions, promptFormat: embedder.promptFormat.rawValue,
                                 chunkTokens: chunk, overlapTokens: min(max(0, overlapTokens ?? 32), chunk / 2))
            // Two processes creating one collection at once: the first manifest wins.
            let store = self.store
            manifest = try writeLock.withLock {
                if let raced = try store.manifest() { return raced }
                try store.setManifest(fresh)
                return fresh
            }
            guard manifest.modelSHA256 == fingerprint else {
                throw SextantError(.modelMismatch, "\(directory.path) was just created by another process with model '\(manifest.modelName)'; open it with --model \(manifest.modelPath)")
            }
        }
        batcher = EmbeddingBatcher(embedder: embedder)
        currentIndex = try HNSWIndex(dimensions: embedder.dimensions, metric: .cosine, parameters: Self.indexParameters)
        currentIndex.vectorSource = vectorSource
        try indexLock.withLock { try loadOrRebuildIndex() }
    }

    /// sha256 of the model's weights (of the shards' digests, in name order, when sharded).
    /// With a `store`, a digest is remembered per file path, size and modification time, so an
    /// unchanged model is not hashed again on every open.
    /// A model folder's fingerprint, as a collection made with it records (`modelSHA256`): the
    /// sha256 of its one `.safetensors` file, or of the sorted files' hex digests.
    public static func modelFingerprint(of model: URL) throws -> String {
        try fingerprint(of: model)
    }

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
            if let store, !store.readOnly { try store.setValue(hex, forKey: key) }
            return hex
        }
        if names.count == 1 { return try digest(names[0]) }
        var combined = SHA256()
        for name in names { combined.update(Array(try digest(name).utf8)) }
        return combined.hexDigest()
    }

    // MARK: Vector index

    /// Loads the saved index and brings it up to date from the change log; a missing, damaged
    /// or mismatched file (its ids are not exactly the store's chunks) is rebuilt from the full
    /// vectors in SQLite instead. Called under `indexLock`.
    private func loadOrRebuildIndex() throws {
        if FileManager.default.fileExists(atPath: indexURL.path) {
            do {
                let loaded = try HNSWIndex.load(from: indexURL, vectorSource: vectorSource)
                let recorded = try store.value(forKey: "index_generation").flatMap(Int.init)
                if loaded.parameters.storesVectors {
                    warn("\(indexURL.path) was written by an older Sextant (with a second copy of every vector); rebuilding it without")
                } else if loaded.dimensions == embedder.dimensions, let recorded, let delta = try store.changes(since: recorded) {
                    try Self.apply(removed: delta.removed, added: delta.added, to: loaded)
                    let expected = try store.chunkIdDigest()
                    if loaded.count == expected.count, CollectionStore.idDigest(loaded.ids) == expected.digest {
                        currentIndex = loaded
                        indexGeneration = delta.generation
                        return
                    }
                }
                if !loaded.parameters.storesVectors {
                    warn("\(indexURL.path) does not match \(store.url.lastPathComponent); rebuilding it")
                }
            } catch {
                warn("\(indexURL.path) is damaged (\(error)); rebuilding it from \(store.url.lastPathComponent)")
            }
        }
        try rebuildIndexLocked()
        // Saved for the next process when no writer is busy; the index in memory serves either way.
        if !store.readOnly {
            do { _ = try writeLock.withLockIfFree { try catchUpLocked(); try saveIndexLocked() } } catch {
                warn("the rebuilt vector index could not be saved (\(error)); it is used from memory")
            }
        }
    }

    /// Removes and adds index entries; tolerant of entries already applied (a file saved just
    /// before its generation was recorded).
    private static func apply(removed: [Int64], added: [(id: Int64, vector: [Float])], to index: HNSWIndex) throws {
        for id in removed where index.contains(id: UInt64(id)) { try index.remove(id: UInt64(id)) }
        for (id, v) in added where !index.contains(id: UInt64(id)) { try index.add(id: UInt64(id), vector: v) }
    }

    /// Rebuilds the index in memory from SQLite. Called under `indexLock`.
    private func rebuildIndexLocked() throws {
        let (generation, items) = try store.allVectors()
        currentIndex = try HNSWIndex.rebuild(dimensions: embedder.dimensions, metric: .cosine, parameters: Self.indexParameters,
                                             from: items.map { (UInt64($0.id), $0.vector) }, vectorSource: vectorSource)
        indexGeneration = generation
    }

    /// Brings the in-memory index up to the store's generation: cheap when nothing moved (one
    /// read), incremental from the change log otherwise, a reload or rebuild when the log no
    /// longer reaches back. Called under `indexLock`.
    private func catchUpLocked() throws {
        let generation = try store.generation()
        guard generation != indexGeneration else { return }
        if let delta = try store.changes(since: indexGeneration) {
            try Self.apply(removed: delta.removed, added: delta.added, to: currentIndex)
            indexGeneration = delta.generation
            return
        }
        // The log restarted: a reindex by another process, or this one is far behind.
        if let now = try store.manifest(), now.modelSHA256 != manifest.modelSHA256 {
            throw SextantError(.modelMismatch, "\(directory.path) was re-embedded with model '\(now.modelName)' by another process; open it again (restart the server)")
        }
        try loadOrRebuildIndex()
    }

    /// The index, caught up with the store.
    func caughtUpIndex() throws -> HNSWIndex {
        try indexLock.withLock {
            try catchUpLocked()
            return currentIndex
        }
    }

    /// Rebuilds the HNSW index from SQLite and saves it.
    public func rebuildIndex() throws {
        try writeLock.withLock {
            try indexLock.withLock {
                try rebuildIndexLocked()
                try saveIndexLocked()
            }
        }
    }

    /// Every chunk's full vector from SQLite, keyed as the index keys them.
    private func storedVectors() throws -> [(id: UInt64, vector: [Float])] {
        try store.allVectors().items.map { (UInt64($0.id), $0.vector) }
    }

    /// Saves the index with the generation it reflects. Deletes give their space back: an index
    /// with at most half of its slots live is rebuilt compactly from SQLite, and SQLite returns
    /// its free pages. Called holding `writeLock` and `indexLock`, caught up.
    private func saveIndexLocked() throws {
        guard !store.readOnly else { return }
        let slots = currentIndex.slotCount
        if slots - currentIndex.count >= max(256, slots / 2) {
            try currentIndex.compact(from: storedVectors())   // in place: searches running meanwhile keep their index
        }
        do {
            try currentIndex.save(to: indexURL)
            try store.setValue(String(indexGeneration), forKey: "index_generation")
        } catch {
            // SQLite holds the truth; a stale file is caught up or rebuilt by the next reader.
            warn("the vector index could not be saved (\(error)); the collection is intact and the next open repairs the index")
        }
        do { try store.trimLog() } catch { warn("\(error)") }
        do { try store.reclaimSpace() } catch { warn("\(error) (the collection is intact; the space is reused by later additions)") }
    }

    // MARK: The write path

    /// A document's new version: its chunks with their vectors.
    struct DocumentVersion {
        var path: String
        var contentHash: String
        var size: Int64
        var modifiedAt: Double
        var title: String
        var metadata: String = "{}"
        /// Keep the fields set after ingest (a file re-read) or drop them (a document sent anew).
        var keepSetFields = true
        var chunks: [NewChunk]
    }

    /// One change to the collection.
    enum Change {
        case replace(DocumentVersion)
        case remove(paths: [String])
        case setMetadata(path: String, json: String, keepSetFields: Bool)
        case setFileAttributes(path: String, size: Int64, modifiedAt: Double)
    }

    /// The one door for every change (folder sync, API upserts, removals): under the folder's
    /// write lock, the in-memory index catches up with other writers, each change is one store
    /// transaction, then the index follows it. With `save`, the index file is saved once at the
    /// end. Returns, per change, whether it touched a document.
    @discardableResult
    func apply(_ changes: [Change], save: Bool) throws -> [Bool] {
        guard !store.readOnly else {
            throw SextantError(.readOnly, "\(directory.path) is open read-only (\(store.readOnlyReason ?? "")): changes need a writable collection folder with free space")
        }
        return try writeLock.withLock {
            try indexLock.withLock {
                try catchUpLocked()
                var touched: [Bool] = []
                var failure: Error?
                for change in changes {
                    do {
                        switch change {
                        case .replace(let d):
                            let (removed, added) = try store.replaceDocument(path: d.path, contentHash: d.contentHash, size: d.size,
                                                                             modifiedAt: d.modifiedAt, title: d.title, metadata: d.metadata,
                                                                             keepSetFields: d.keepSetFields, chunks: d.chunks)
                            try Self.apply(removed: removed, added: zip(added, d.chunks).map { ($0, $1.vector) }, to: currentIndex)
                            touched.append(true)
                        case .remove(let paths):
                            let removed = try store.removeDocuments(paths: paths)
                            try Self.apply(removed: removed, added: [], to: currentIndex)
                            touched.append(!removed.isEmpty)
                        case .setMetadata(let path, let json, let keep):
                            touched.append(try store.setMetadata(path: path, json: json, keepSetFields: keep))
                        case .setFileAttributes(let path, let size, let modifiedAt):
                            touched.append(try store.setFileAttributes(path: path, size: size, modifiedAt: modifiedAt))
                        }
                    } catch {
                        failure = error
                        break
                    }
                }
                // Only this process writes while the lock is held: the index now reflects the store.
                indexGeneration = try store.generation()
                if save || failure != nil { try saveIndexLocked() }
                if let failure { throw failure }
                return touched
            }
        }
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
        let known = try knownDocuments()
        var seen = Set<[UInt8]>()
        let chunker = Chunker(maxTokens: max(manifest.chunkTokens, 1), overlapTokens: manifest.overlapTokens) { [embedder] in
            embedder.tokenizer.tokenize($0).count
        }

        struct Pending {
            var key: String, title: String, hash: String, size: Int64, modified: Double, metadata: String
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
            var changes: [Change] = []
            for doc in group {
                let newChunks = doc.chunks.enumerated().map { j, c in
                    NewChunk(text: c.text, byteRange: c.byteRange, lineRange: c.lineRange, headingPath: c.headingPath, vector: vectors[at + j])
                }
                changes.append(.replace(DocumentVersion(path: doc.key, contentHash: doc.hash, size: doc.size, modifiedAt: doc.modified,
                                                        title: doc.title, metadata: doc.metadata, chunks: newChunks)))
                at += doc.chunks.count
            }
            try apply(changes, save: false)
            for doc in group {
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
                for (key, d) in known where Self.sameKey(d.path, file.path) || d.path.utf8.starts(with: (file.path + "#").utf8) {
                    seen.insert(key)
                }
                continue
            }
            let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            for doc in documents {
                let key = Array(doc.key.utf8)
                seen.insert(key)
                let hash = SHA256.hex(Array((manifest.chunkTokens.description + "\u{0}" + doc.title + "\u{0}" + doc.text).utf8))
                let metadata = JSONValue.object(doc.metadata).serialized
                if let old = known[key], old.contentHash == hash {
                    // Same text: nothing to embed, but the fields and file attributes may have moved.
                    var updates: [Change] = []
                    if old.metadata != metadata { updates.append(.setMetadata(path: doc.key, json: metadata, keepSetFields: true)) }
                    if old.size != size || old.modifiedAt != modified {
                        updates.append(.setFileAttributes(path: doc.key, size: size, modifiedAt: modified))
                    }
                    if !updates.isEmpty { try apply(updates, save: false) }
                    report.documentsUnchanged += 1
                    continue
                }
                let chunks = manifest.chunkTokens == 0 ? Self.wholeDocument(doc.text) : chunker.chunks(of: doc.text, markdown: doc.markdown)
                if chunks.isEmpty {
                    warn("\(doc.key): no text to index; skipped")
                    continue
                }
                group.append(Pending(key: doc.key, title: doc.title, hash: hash, size: size, modified: modified, metadata: metadata,
                                     chunks: chunks, isNew: known[key] == nil))
                groupChunks += chunks.count
                if groupChunks >= options.groupChunks { try flush() }
            }
        }
        try flush()

        // Documents under the synced roots whose files are gone: removed in one transaction.
        var gone: [String] = []
        for (bytes, d) in known where !seen.contains(bytes) {
            let key = d.path
            let filePath = key.split(separator: "#", maxSplits: 1).first.map(String.init) ?? key
            guard roots.contains(where: { Self.sameKey(filePath, $0) || filePath.utf8.starts(with: ($0 + "/").utf8) }) else { continue }
            if FileManager.default.fileExists(atPath: filePath) && Self.sameKey(key, filePath) {
                continue   // still there but no longer walked (now ignored or excluded): keep it
            }
            gone.append(key)
        }
        try apply([.remove(paths: gone.sorted())], save: true)
        report.documentsRemoved = gone.count
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
        try remove(paths: [path])
    }

    /// Removes the documents at each of `paths` in one transaction, saving the index once.
    public func remove(paths: [String]) throws -> Int {
        let targets = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var keys: [String] = []
        var matched = [Bool](repeating: false, count: targets.count)
        for key in try store.documentList().map(\.path) {
            // Exact bytes: names that differ only in Unicode normalization are different files.
            var hit = false
            for (t, target) in targets.enumerated() where Self.sameKey(key, target) || Self.keyIsUnder(key, target) {
                matched[t] = true
                hit = true
            }
            if hit { keys.append(key) }
        }
        let unmatched = zip(targets, matched).filter { !$0.1 }.map(\.0)
        if !unmatched.isEmpty {
            warn("\(unmatched.count) path\(unmatched.count == 1 ? " is" : "s are") not in the collection (nothing removed for \(unmatched.count == 1 ? "it" : "them")): "
                 + unmatched.prefix(5).joined(separator: ", ") + (unmatched.count > 5 ? ", …" : ""))
        }
        guard !keys.isEmpty else { return 0 }
        try apply([.remove(paths: keys.sorted())], save: true)
        return keys.count
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
        let vector = request.mode == .lexical ? nil : (queryVector ?? embedder.embed([query], kind: kind)[0])
        // A chunk deleted between the index lookup and the text lookup drops out; the search
        // then runs again on the caught-up index, so ranks stay consecutive and k is honoured.
        for attempt in 0..<3 {
            let hits = try searchOnce(request, query: query, vector: vector, depth: depth)
            if hits.complete || attempt == 2 {
                return hits.hits.enumerated().map { i, hit in var h = hit; h.rank = i + 1; return h }
            }
        }
        return []
    }

    /// The search for concurrent callers (a server): the query is embedded together with
    /// those of other callers running at the same time, then searched as `search(_:queryVector:)`
    /// does, off the caller's thread.
    public func search(_ request: SearchRequest) async throws -> [SearchHit] {
        try await searchConcurrently(request) { try self.search(request, queryVector: $0) }
    }

    /// Embeds the request's query together with other callers' (the batcher), then runs
    /// `search` with that vector (nil for lexical searches) off the caller's thread.
    func searchConcurrently(_ request: SearchRequest,
                            _ search: @escaping @Sendable (_ queryVector: [Float]?) throws -> [SearchHit]) async throws -> [SearchHit] {
        let query = request.query.trimmingCharacters(in: .whitespacesAndNewlines)
        var vector: [Float]? = nil
        if request.mode != .lexical && !query.isEmpty {
            let kind = try queryKind(instruct: request.instruct, examples: request.examples, task: request.task)
            vector = await batcher.embed([query], kind: kind).vectors[0]
        }
        let queryVector = vector
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try search(queryVector) })
            }
        }
    }

    private func searchOnce(_ request: SearchRequest, query: String, vector: [Float]?, depth: Int) throws -> (hits: [SearchHit], complete: Bool) {
        // The filter is evaluated once, to the set of matching chunks; both legs keep only those.
        let filter = MetadataFilter.both(request.filter, request.pathFilter.map(MetadataFilter.pathGlob))
        let allowed = try filter.map { try store.matchingChunks($0) }
        let index = try caughtUpIndex()

        var dense: [Int64] = []
        var denseScores: [Int64: Double] = [:]
        var denseShort = false
        if let vector {
            let found = try allowed.map { try index.search(vector, k: depth, allowed: IDBitmap(words: $0.words), exact: request.exact) }
                ?? index.search(vector, k: depth, exact: request.exact)
            // Fewer than the index can give: candidates whose vectors were deleted from the store
            // after this index caught up dropped out of rescoring; the caller runs it again.
            denseShort = found.count < min(depth, allowed?.count ?? index.count)
            for hit in found {
                dense.append(Int64(hit.id))
                denseScores[Int64(hit.id)] = Double(1 - hit.distance)   // cosine similarity
            }
        }
        var lexical: [Int64] = []
        var lexicalScores: [Int64: Double] = [:]
        if request.mode != .dense {
            for hit in try store.lexicalSearch(query, limit: depth, allowed: allowed) {
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
        let cutter = request.text == .snippet ? SnippetCutter(query: query) : nil
        let found = top.enumerated().compactMap { i, item in records[item.id].map { (rank: i + 1, score: item.score, record: $0) } }
        // Snippets and fields cost microseconds per hit: many hits are built on two threads.
        var built = [SearchHit?](repeating: nil, count: found.count)
        let parts = found.count >= 32 ? 2 : 1
        built.withUnsafeMutableBufferPointer { out in
            concurrentLoop(parts) { part in
                var fieldsByDocument: [Int64: [String: JSONValue]] = [:]   // hits of one document share its fields
                for j in stride(from: part, to: found.count, by: parts) {
                    let (rank, score, r) = found[j]
                    var fields: [String: JSONValue]? = nil
                    if request.metadata {
                        fields = fieldsByDocument[r.documentId] ?? r.fields
                        fieldsByDocument[r.documentId] = fields
                    }
                    out[j] = SearchHit(rank: rank, score: score, path: r.path, chunkId: r.id,
                                       byteStart: r.byteRange.lowerBound, byteEnd: r.byteRange.upperBound,
                                       lineStart: r.lineRange.lowerBound, lineEnd: r.lineRange.upperBound,
                                       headingPath: r.headingPath,
                                       snippet: cutter?.snippet(of: r.text),
                                       text: request.text == .full ? r.text : nil,
                                       metadata: fields)
                }
            }
        }
        let hits = built.compactMap { $0 }
        return (hits, hits.count == top.count && !denseShort)
    }

    /// The stored documents by the exact UTF-8 bytes of their keys.
    func knownDocuments() throws -> [[UInt8]: DocumentRecord] {
        Dictionary(try store.documentList().map { (Array($0.path.utf8), $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Document keys compare by their exact UTF-8 bytes (Swift's `==` would equate names that
    /// differ only in Unicode normalization, which are different files and ids).
    static func sameKey(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Whether `key` is a record (`file#id`) of `target` or lies under the folder `target`.
    static func keyIsUnder(_ key: String, _ target: String) -> Bool {
        key.utf8.count > target.utf8.count && key.utf8.starts(with: target.utf8)
            && [UInt8(ascii: "#"), UInt8(ascii: "/")].contains(key.utf8[key.utf8.index(key.utf8.startIndex, offsetBy: target.utf8.count)])
    }

    // MARK: Tasks, info, reindex

    /// Saves a named task (instruction and examples) for `search --task`, optionally with a
    /// default reranker folder (checked to be one, without loading its weights) and how many hits it reads.
    public func saveTask(name: String, instruct: String, examples: [Example], reranker: String? = nil, rerankDepth: Int? = nil) throws {
        guard !name.isEmpty, name.count <= 200 else { throw SextantError(.invalidArgument, "a task name must have 1 to 200 characters") }
        if let d = rerankDepth, !(1...10_000).contains(d) { throw SextantError(.invalidArgument, "the rerank depth must be in 1...10000") }
        var folder: String? = nil
        if let reranker {
            let url = URL(fileURLWithPath: reranker).standardizedFileURL
            do { try CrossEncoder.validate(folder: url) } catch {
                throw SextantError(.invalidArgument, "the task's reranker: \(error)")
            }
            folder = url.path
        }
        let json = String(decoding: try JSONEncoder().encode(examples), as: UTF8.self)
        let store = self.store
        try writeLock.withLock {
            try store.saveTask(TaskRecord(name: name, instruct: instruct, examplesJSON: json, reranker: folder, rerankDepth: rerankDepth))
        }
    }

    public func tasks() throws -> [(name: String, instruct: String, examples: [Example], reranker: String?, rerankDepth: Int?)] {
        try store.tasks().map { ($0.name, $0.instruct, Self.decodeExamples($0.examplesJSON), $0.reranker, $0.rerankDepth) }
    }

    /// The default reranker folder and depth a saved task names (nil when it names none).
    public func taskReranker(named name: String) throws -> (folder: String, depth: Int?)? {
        guard let task = try store.task(named: name) else {
            throw SextantError(.notFound, "no task named '\(name)' (see sextant task list)")
        }
        return task.reranker.map { ($0, task.rerankDepth) }
    }

    static func decodeExamples(_ json: String) -> [Example] {
        (try? JSONDecoder().decode([Example].self, from: Data(json.utf8))) ?? []
    }

    public func info() throws -> CollectionInfo {
        let counts = try store.counts()
        let indexBytes = (try? FileManager.default.attributesOfItem(atPath: indexURL.path)[.size] as? NSNumber)?.int64Value ?? 0
        let databaseBytes = store.bytesOnDisk(), memoryBytes = Int64(try caughtUpIndex().memoryBytes)
        let perChunk = { (bytes: Int64) in counts.chunks > 0 ? bytes / Int64(counts.chunks) : 0 }
        return CollectionInfo(directory: directory.path, documents: counts.documents, chunks: counts.chunks,
                              model: manifest.modelName, modelSHA256: manifest.modelSHA256, dimensions: manifest.dimensions,
                              promptFormat: manifest.promptFormat, chunkTokens: manifest.chunkTokens,
                              overlapTokens: manifest.overlapTokens, databaseBytes: databaseBytes, indexBytes: indexBytes,
                              indexMemoryBytes: memoryBytes, bytesPerChunkOnDisk: perChunk(databaseBytes + indexBytes),
                              bytesPerChunkInMemory: perChunk(memoryBytes),
                              fields: try store.fieldCounts().map { FieldCount(name: $0.name, documents: $0.documents) })
    }

    /// Re-embeds every chunk with `model` (the collection's own model when nil), then stores
    /// the new vectors and the manifest naming the new model in one transaction (a kill before
    /// it leaves the old collection whole; readers never see vectors of two models), and
    /// rebuilds the index. Chunk boundaries are kept. Holds the write lock throughout, so no
    /// other write can slip in between reading the chunks and storing their new vectors.
    public static func reindex(directory: URL, model: URL?, progress: ((Int, Int) -> Void)? = nil,
                               warn: ((String) -> Void)? = nil) throws -> (documents: Int, model: URL) {
        guard exists(at: directory) else {
            throw SextantError(.notFound, "\(directory.path) is not a collection (run sextant index first)")
        }
        let store = try CollectionStore(url: directory.appendingPathComponent("meta.sqlite"))
        guard var manifest = try store.manifest() else {
            throw SextantError(.notFound, "\(directory.path) is not a collection (run sextant index first)")
        }
        let model = model ?? URL(fileURLWithPath: manifest.modelPath)
        guard !store.readOnly else { throw SextantError(.io, "\(directory.path) is read-only: reindex needs a writable collection folder") }
        let embedder = try Embedder(folder: model)
        let done = try WriteLock(directory: directory).withLock { () -> Int in
            let documents = try store.documentList()   // every document, also names equal under normalization
            var pending: [(id: Int64, text: String)] = []
            var vectors: [(id: Int64, vector: [Float])] = []
            var done = 0
            func flush() {
                let embedded = embedder.embed(pending.map(\.text), kind: .passage)
                vectors += zip(pending, embedded).map { ($0.id, $1) }
                pending.removeAll(keepingCapacity: true)
            }
            for doc in documents {
                pending += try store.chunkTexts(documentId: doc.id)
                done += 1
                if pending.count >= 512 { flush(); progress?(done, documents.count) }   // large batches keep every core busy
            }
            flush()
            progress?(done, documents.count)
            manifest.modelName = embedder.folder.name
            manifest.modelPath = model.standardizedFileURL.path
            manifest.modelSHA256 = try fingerprint(of: model, store: store)
            manifest.dimensions = embedder.dimensions
            manifest.promptFormat = embedder.promptFormat.rawValue
            try store.replaceAllVectors(vectors, manifest: manifest)
            return done
        }
        // Opening finds the index out of date (the log restarted) and rebuilds it.
        _ = try Collection(directory: directory, model: model, defaultModel: model, warn: warn)
        return (done, model)
    }

    /// Whether `directory` holds a collection.
    public static func exists(at directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("meta.sqlite").path)
    }
}

/// Full vectors for rescoring, read from the store (their one home) by chunk id.
final class StoreVectorSource: FullVectorSource {
    private let store: CollectionStore
    init(store: CollectionStore) { self.store = store }

    func forEachVector(ids: [UInt64], _ body: (UInt64, UnsafeBufferPointer<Float>) -> Void) throws {
        try store.withVectors(ids: ids.map { Int64($0) }) { id, v in body(UInt64(id), v) }
    }
}
