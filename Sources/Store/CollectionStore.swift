import Foundation
import GRDB

/// What a collection was built with. Stored in the database; a collection is only opened
/// with the same model.
public struct Manifest: Codable, Equatable, Sendable {
    public var formatVersion: Int
    public var modelName: String
    /// sha256 of the model's weights.
    public var modelSHA256: String
    public var dimensions: Int
    public var promptFormat: String
    public var chunkTokens: Int
    public var overlapTokens: Int
    /// Where the model folder was when the collection was built.
    public var modelPath: String

    public init(formatVersion: Int = CollectionStore.formatVersion, modelName: String, modelPath: String, modelSHA256: String,
                dimensions: Int, promptFormat: String, chunkTokens: Int, overlapTokens: Int) {
        self.formatVersion = formatVersion
        self.modelName = modelName
        self.modelPath = modelPath
        self.modelSHA256 = modelSHA256
        self.dimensions = dimensions
        self.promptFormat = promptFormat
        self.chunkTokens = chunkTokens
        self.overlapTokens = overlapTokens
    }
}

/// One indexed file.
public struct DocumentRecord: Sendable, Equatable {
    public var id: Int64
    public var path: String
    public var contentHash: String
    public var size: Int64
    public var modifiedAt: Double
    public var title: String
    /// The document's metadata, a JSON object ("{}" when none).
    public var metadata: String = "{}"
}

/// A chunk to store: its text, where it came from, and its full-precision vector.
public struct NewChunk: Sendable {
    public var text: String
    public var byteRange: Range<Int>
    public var lineRange: ClosedRange<Int>
    public var headingPath: String
    public var vector: [Float]

    public init(text: String, byteRange: Range<Int>, lineRange: ClosedRange<Int>, headingPath: String, vector: [Float]) {
        self.text = text
        self.byteRange = byteRange
        self.lineRange = lineRange
        self.headingPath = headingPath
        self.vector = vector
    }
}

/// A stored chunk with its document's path.
public struct ChunkRecord: Sendable {
    public var id: Int64
    public var documentId: Int64
    public var path: String
    public var ordinal: Int
    public var text: String
    public var byteRange: Range<Int>
    public var lineRange: ClosedRange<Int>
    public var headingPath: String
    /// The document's own fields (a JSON object, without the built-in ones).
    public var fieldsJSON: String = "{}"
    public var size: Int64 = 0
    public var modifiedAt: Double = 0
    public var title: String = ""

    /// The document's fields, built-in ones included.
    public var fields: [String: JSONValue] {
        Metadata.documentFields(json: fieldsJSON, path: path, size: size, modifiedAt: modifiedAt, title: title)
    }
}

/// A saved task: an instruction and examples, by name.
public struct TaskRecord: Sendable, Equatable {
    public var name: String
    public var instruct: String
    /// JSON array of {"query", "response"}.
    public var examplesJSON: String
    /// A reranker model folder that searches with this task use by default, and its depth.
    public var reranker: String?
    public var rerankDepth: Int?

    public init(name: String, instruct: String, examplesJSON: String, reranker: String? = nil, rerankDepth: Int? = nil) {
        self.name = name
        self.instruct = instruct
        self.examplesJSON = examplesJSON
        self.reranker = reranker
        self.rerankDepth = rerankDepth
    }
}

/// The SQLite database of a collection (GRDB, WAL): manifest, documents, chunks with their
/// vectors, an FTS5 index of the chunks, saved tasks, and a log of which chunks each write
/// added and removed. It is the source of truth; every change happens in one transaction that
/// also bumps the generation and logs its chunk ids, so a killed writer leaves either the old
/// or the new version of each document, and readers in other processes can catch up.
public final class CollectionStore: @unchecked Sendable {   // GRDB's DatabaseWriter serializes access
    public static let formatVersion = 1
    /// Write transactions whose chunk changes stay in the log: a reader further behind rebuilds.
    public static let logWindow = 100_000
    public let url: URL
    /// Why the database was opened read-only (a read-only file, folder or mount; a full disk),
    /// or nil when it can be written.
    public let readOnlyReason: String?
    /// True when the database was opened read-only.
    public var readOnly: Bool { readOnlyReason != nil }
    let pool: any DatabaseWriter
    /// A file of spare bytes beside the database, given up when the disk is full so that
    /// removals (which free space) can still run.
    var reserveURL: URL { url.deletingLastPathComponent().appendingPathComponent("space.reserve") }

    /// Opens (creating if needed) the database at `url`. A database that exists but cannot be
    /// written (read-only file, folder or mount, or a full disk with no reserve left to give
    /// up) is opened read-only.
    public init(url: URL) throws {
        self.url = url
        let fm = FileManager.default
        let folder = url.deletingLastPathComponent().path
        let exists = fm.fileExists(atPath: url.path)
        let writable = !exists ? fm.isWritableFile(atPath: folder)
            : fm.isWritableFile(atPath: url.path) && fm.isWritableFile(atPath: folder)
        var config = Configuration()
        config.busyMode = .timeout(30)
        var reason: String? = exists && !writable ? "its files cannot be written" : nil
        var opened: (any DatabaseWriter)? = nil
        if reason == nil {
            do {
                opened = try Self.openWritable(url, config)
            } catch where exists {
                // A full disk: give up the reserve and retry; failing that, read only.
                let reserve = url.deletingLastPathComponent().appendingPathComponent("space.reserve")
                if (try? fm.removeItem(at: reserve)) != nil, let retried = try? Self.openWritable(url, config) {
                    opened = retried
                } else {
                    reason = "it cannot be opened for writing (\(error)); is the disk full?"
                }
            } catch {
                throw StoreError(.cannotOpen, "\(url.path): cannot open the collection database (\(error))")
            }
        }
        if let writer = opened {
            pool = writer
        } else {
            config.readonly = true
            do {
                // Read-only WAL databases open when their -shm file exists; otherwise the file is
                // read as it is on disk (immutable: nothing can change it underneath).
                do {
                    let q = try DatabaseQueue(path: url.path, configuration: config)
                    _ = try q.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM manifest") }
                    pool = q
                } catch {
                    pool = try DatabaseQueue(path: "file:\(url.path)?immutable=1", configuration: config)
                }
            } catch {
                throw StoreError(.cannotOpen, "\(url.path): cannot open the collection database (\(error))")
            }
        }
        readOnlyReason = reason
        if readOnly {
            let applied = try read("reading the schema version") { db in try Self.migrator.appliedIdentifiers(db) }
            guard applied.contains("v4") else {
                throw StoreError(.cannotOpen, "\(url.path) is read-only (\(reason!)) and was made by an older Sextant: open it once where it can be written to upgrade it")
            }
        } else {
            ensureReserve()
            // Documents written by an older build that knew no fields: index theirs now (a read
            // first, so that opening never waits for another process's long write).
            if try read("checking document fields", { db in try Self.hasStaleFields(db) }) {
                try write("indexing document fields") { db in try Self.refreshStaleFields(db) }
            }
        }
    }

    private static func openWritable(_ url: URL, _ config: Configuration) throws -> DatabasePool {
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue
        if size == nil || size == 0 {   // no database yet (or an empty file left by a crash)
            try createDatabase(at: url, config)
        }
        let p = try DatabasePool(path: url.path, configuration: config)
        try Self.migrator.migrate(p)
        return p
    }

    /// Makes a new database at `url`: 16 KiB pages (a chunk row, its text and full vector, is
    /// 1.5-5 KB; 4 KiB pages left a third of the file empty) and incremental auto-vacuum (deleted
    /// rows give their pages back, see `reclaimSpace`). Both must be chosen before the first table
    /// exists and before the write-ahead log is on, so the schema is made in a file of its own
    /// with a rollback journal, then linked into place: a process that opens the collection at
    /// the same moment finds either no database or a whole one (the first link wins).
    private static func createDatabase(at url: URL, _ config: Configuration) throws {
        let fm = FileManager.default
        let scratch = url.deletingLastPathComponent().appendingPathComponent(".meta.sqlite.new-\(getpid())-\(UUID().uuidString)")
        defer {
            for suffix in ["", "-journal"] { try? fm.removeItem(atPath: scratch.path + suffix) }
        }
        let q = try DatabaseQueue(path: scratch.path, configuration: config)
        try q.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA page_size = 16384")
            try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
        }
        try Self.migrator.migrate(q)
        try q.close()
        if (try? fm.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue == 0 {
            try? fm.removeItem(at: url)   // an empty file left by a crash
        }
        if link(scratch.path, url.path) != 0 && errno != EEXIST {
            throw StoreError(.cannotOpen, "\(url.path): cannot create the collection database (\(String(cString: strerror(errno))))")
        }
    }

    /// Keeps `space.reserve` (1/16 of the database, at least 32 pages (512 KiB with 16 KiB pages;
    /// a removal's write-ahead log must fit in it), at most 16 MiB) when there is room.
    func ensureReserve() {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: reserveURL.path) else { return }
        let pageSize = (try? pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") }) ?? 4096
        let databaseSize = Int((try? fm.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0)
        let size = min(16 << 20, max(512 << 10, 32 * pageSize, databaseSize / 16))
        let partial = reserveURL.appendingPathExtension("partial")
        do {
            try Data(count: size).write(to: partial)
            try fm.moveItem(at: partial, to: reserveURL)
        } catch {
            try? fm.removeItem(at: partial)
        }
    }

    private static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE documents (
                    id INTEGER PRIMARY KEY,
                    path TEXT NOT NULL UNIQUE,
                    content_hash TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    modified_at REAL NOT NULL,
                    title TEXT NOT NULL DEFAULT '');
                CREATE TABLE chunks (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: ids are also the vector index's keys
                    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
                    ordinal INTEGER NOT NULL,
                    text TEXT NOT NULL,
                    byte_start INTEGER NOT NULL, byte_end INTEGER NOT NULL,
                    line_start INTEGER NOT NULL, line_end INTEGER NOT NULL,
                    heading_path TEXT NOT NULL DEFAULT '',
                    vector BLOB NOT NULL);
                CREATE INDEX chunks_document ON chunks(document_id);
                CREATE VIRTUAL TABLE chunks_fts USING fts5(text, heading_path, content='chunks', content_rowid='id',
                                                           tokenize='porter unicode61');
                CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
                    INSERT INTO chunks_fts(rowid, text, heading_path) VALUES (new.id, new.text, new.heading_path);
                END;
                CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
                    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading_path) VALUES ('delete', old.id, old.text, old.heading_path);
                END;
                CREATE TABLE tasks (name TEXT PRIMARY KEY, instruct TEXT NOT NULL, examples TEXT NOT NULL DEFAULT '[]');
                INSERT INTO manifest(key, value) VALUES ('generation', '0');
                """)
        }
        // The change log: chunk ids each write transaction added (1) and removed (0), so that
        // an in-memory index in any process can catch up incrementally. `log_floor` is the
        // generation from which on the log is complete. Documents get a metadata object.
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE chunk_log (generation INTEGER NOT NULL, chunk_id INTEGER NOT NULL, added INTEGER NOT NULL);
                CREATE INDEX chunk_log_generation ON chunk_log(generation);
                INSERT OR REPLACE INTO manifest(key, value) SELECT 'log_floor', value FROM manifest WHERE key = 'generation';
                ALTER TABLE documents ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
                """)
        }
        // Metadata as data: fields set after ingest, the effective fields, each document's chunk
        // id range, and one row per field value in `document_fields` for filters.
        m.registerMigration("v3") { db in
            try db.execute(sql: """
                ALTER TABLE documents ADD COLUMN fields_set TEXT NOT NULL DEFAULT '{}';
                ALTER TABLE documents ADD COLUMN fields_json TEXT NOT NULL DEFAULT '{}';
                ALTER TABLE documents ADD COLUMN chunk_lo INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE documents ADD COLUMN chunk_hi INTEGER NOT NULL DEFAULT -1;
                CREATE INDEX documents_chunks ON documents(chunk_lo, chunk_hi);
                CREATE TABLE document_fields (
                    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
                    key TEXT NOT NULL,
                    type INTEGER NOT NULL,    -- Metadata.Kind
                    value,                    -- no affinity: integers stay exact, reals stay reals
                    in_array INTEGER NOT NULL,
                    chunk_lo INTEGER NOT NULL, chunk_hi INTEGER NOT NULL);
                CREATE INDEX document_fields_lookup ON document_fields(key, type, value, chunk_lo, chunk_hi);
                CREATE INDEX document_fields_document ON document_fields(document_id);
                """)
            try refreshStaleFields(db)
        }
        // Built-in path, title and size moved from field rows to the documents table's columns.
        m.registerMigration("v4") { db in
            for id in try Int64.fetchAll(db, sql: "SELECT id FROM documents") { try refreshFields(db, documentId: id) }
        }
        // A task may name a default reranker (search --task uses it).
        m.registerMigration("v5") { db in
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN reranker TEXT")
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN rerank_depth INTEGER")
        }
        return m
    }

    // MARK: Manifest

    /// The manifest, or nil for a new collection.
    public func manifest() throws -> Manifest? {
        try read("reading the manifest") { db in
            guard let json = try String.fetchOne(db, sql: "SELECT value FROM manifest WHERE key = 'manifest'") else { return nil }
            return try JSONDecoder().decode(Manifest.self, from: Data(json.utf8))
        }
    }

    public func setManifest(_ m: Manifest) throws {
        let json = String(decoding: try JSONEncoder().encode(m), as: UTF8.self)
        try write("writing the manifest") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO manifest(key, value) VALUES ('manifest', ?)", arguments: [json])
        }
    }

    /// A free-form setting kept with the manifest (e.g. which generation the vector index reflects).
    public func value(forKey key: String) throws -> String? {
        try read("reading \(key)") { db in
            try String.fetchOne(db, sql: "SELECT value FROM manifest WHERE key = ?", arguments: ["setting:" + key])
        }
    }

    public func setValue(_ value: String, forKey key: String) throws {
        try write("writing \(key)") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO manifest(key, value) VALUES (?, ?)", arguments: ["setting:" + key, value])
        }
    }

    /// Chunk ids and texts of one document, in order.
    public func chunkTexts(documentId: Int64) throws -> [(id: Int64, text: String)] {
        try read("reading chunk texts") { db in
            try Row.fetchAll(db, sql: "SELECT id, text FROM chunks WHERE document_id = ? ORDER BY ordinal", arguments: [documentId])
                .map { (id: $0[0], text: $0[1]) }
        }
    }

    /// Replaces the vectors of existing chunks and the manifest in one transaction
    /// (re-embedding with another model): readers see the old model's vectors or the new ones,
    /// never a mix. The change log restarts (every reader's index is rebuilt).
    public func replaceAllVectors(_ vectors: [(id: Int64, vector: [Float])], manifest: Manifest) throws {
        let json = String(decoding: try JSONEncoder().encode(manifest), as: UTF8.self)
        try write("updating vectors") { db in
            let statement = try db.makeStatement(sql: "UPDATE chunks SET vector = ? WHERE id = ?")
            for (id, v) in vectors { try statement.execute(arguments: [Self.blob(v), id]) }
            try db.execute(sql: "INSERT OR REPLACE INTO manifest(key, value) VALUES ('manifest', ?)", arguments: [json])
            let generation = try Self.bumpGeneration(db, removed: [], added: [])
            try db.execute(sql: "DELETE FROM chunk_log")
            try db.execute(sql: "UPDATE manifest SET value = ? WHERE key = 'log_floor'", arguments: [String(generation)])
        }
    }

    /// Bytes of the database files on disk (main file and write-ahead log).
    public func bytesOnDisk() -> Int64 {
        [url.path, url.path + "-wal", url.path + "-shm"].reduce(0) { total, path in
            total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0)
        }
    }

    /// Gives the pages of deleted rows back to the file system once there are enough of them
    /// (64 pages and a sixteenth of the file): the full-text index is merged (dropping deleted
    /// rows' postings), then an incremental vacuum and a checkpoint that empties the write-ahead log. A database made without auto-vacuum is converted by one full
    /// VACUUM once a quarter of its pages are free. Returns the bytes freed.
    @discardableResult
    public func reclaimSpace() throws -> Int64 {
        guard !readOnly else { return 0 }
        let before = bytesOnDisk()
        do {
            let vacuumed = try pool.writeWithoutTransaction { db -> Bool in
                let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                guard free >= max(64, pages / 16) else { return false }
                // FTS5 keeps deleted rows' postings until its segments merge: merge them now.
                try db.execute(sql: "INSERT INTO chunks_fts(chunks_fts) VALUES('optimize')")
                if try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") == 0 {
                    guard free * 4 >= pages else { return false }
                    try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                    try db.execute(sql: "VACUUM")
                } else {
                    try db.execute(sql: "PRAGMA incremental_vacuum")
                }
                return true
            }
            guard vacuumed else { ensureReserve(); return 0 }
            _ = try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            ensureReserve()
        } catch {
            throw StoreError.database(error, "\(url.path): reclaiming the space of deleted rows")
        }
        return max(0, before - bytesOnDisk())
    }

    /// A counter bumped by every change of chunks; the vector index records the generation it reflects.
    public func generation() throws -> Int {
        try read("reading the generation") { db in
            try Self.counter(db, "generation")
        }
    }

    /// A numeric manifest entry (`generation`, `log_floor`); 0 when missing.
    private static func counter(_ db: Database, _ key: String) throws -> Int {
        Int(try String.fetchOne(db, sql: "SELECT value FROM manifest WHERE key = ?", arguments: [key]) ?? "0") ?? 0
    }

    private static let selectDocuments = "SELECT id, path, content_hash, size, modified_at, title, metadata FROM documents"

    private static func documentRecord(_ row: Row) -> DocumentRecord {
        DocumentRecord(id: row["id"], path: row["path"], contentHash: row["content_hash"],
                       size: row["size"], modifiedAt: row["modified_at"], title: row["title"], metadata: row["metadata"])
    }

    /// Bumps the generation and logs the chunks this transaction removed and added; returns the new generation.
    @discardableResult
    private static func bumpGeneration(_ db: Database, removed: [Int64], added: [Int64]) throws -> Int {
        try db.execute(sql: "UPDATE manifest SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        let generation = try Self.counter(db, "generation")
        let log = try db.makeStatement(sql: "INSERT INTO chunk_log(generation, chunk_id, added) VALUES (?, ?, ?)")
        for id in removed { try log.execute(arguments: [generation, id, 0]) }
        for id in added { try log.execute(arguments: [generation, id, 1]) }
        return generation
    }

    /// What changed after generation `since`: the current generation, the chunks removed and
    /// the chunks added (with their vectors) since then, net of each other. Nil when the log
    /// no longer reaches back that far (the caller rebuilds).
    public func changes(since: Int) throws -> (generation: Int, removed: [Int64], added: [(id: Int64, vector: [Float])])? {
        try read("reading the change log") { db in
            let generation = try Self.counter(db, "generation")
            let floor = try Self.counter(db, "log_floor")
            guard since >= floor, since <= generation else { return nil }
            guard since < generation else { return (generation, [], []) }
            var added: [Int64] = [], addedSet = Set<Int64>(), removed = Set<Int64>()
            let rows = try Row.fetchCursor(db, sql: "SELECT chunk_id, added FROM chunk_log WHERE generation > ? ORDER BY generation, rowid",
                                           arguments: [since])
            while let row = try rows.next() {
                let id: Int64 = row[0]
                if (row[1] as Int) == 1 {
                    if addedSet.insert(id).inserted { added.append(id) }
                } else if addedSet.remove(id) == nil {
                    removed.insert(id)
                }
            }
            added.removeAll { !addedSet.contains($0) }
            var found: [Int64: [Float]] = [:]
            try Self.forEachVector(db, ids: added) { id, v in found[id] = Array(v) }
            return (generation, removed.sorted(), added.compactMap { id in found[id].map { (id, $0) } })
        }
    }

    /// Drops log entries older than `logWindow` write transactions.
    public func trimLog() throws {
        try write("trimming the change log") { db in
            let generation = try Self.counter(db, "generation")
            let floor = try Self.counter(db, "log_floor")
            let newFloor = generation - Self.logWindow
            guard newFloor > floor else { return }
            try db.execute(sql: "DELETE FROM chunk_log WHERE generation <= ?", arguments: [newFloor])
            try db.execute(sql: "UPDATE manifest SET value = ? WHERE key = 'log_floor'", arguments: [String(newFloor)])
        }
    }

    /// The number of chunks and an order-independent digest of their ids (to check that a
    /// saved vector index holds exactly the store's chunks).
    public func chunkIdDigest() throws -> (count: Int, digest: UInt64) {
        try read("reading chunk ids") { db in
            var count = 0, digest: UInt64 = 0
            let ids = try Int64.fetchCursor(db, sql: "SELECT id FROM chunks")
            while let id = try ids.next() { count += 1; digest &+= Self.mix(UInt64(bitPattern: id)) }
            return (count, digest)
        }
    }

    /// The digest `chunkIdDigest` uses, for a set of ids held elsewhere.
    public static func idDigest<S: Sequence>(_ ids: S) -> UInt64 where S.Element == UInt64 {
        ids.reduce(0) { $0 &+ mix($1) }
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    // MARK: Documents and chunks

    /// Every document, in id order. Paths are distinct as bytes (SQLite compares them so);
    /// two paths that differ only in Unicode normalization are two documents.
    public func documentList() throws -> [DocumentRecord] {
        try read("listing documents") { db in
            try Row.fetchAll(db, sql: Self.selectDocuments + " ORDER BY id").map(Self.documentRecord)
        }
    }

    /// One document by its exact path, or nil.
    public func document(path: String) throws -> DocumentRecord? {
        try read("reading \(path)") { db in
            try Row.fetchOne(db, sql: Self.selectDocuments + " WHERE path = ?", arguments: [path]).map(Self.documentRecord)
        }
    }

    /// Every document's path, id and content hash (paths equal under Unicode normalization
    /// collapse here: use `documentList` where that matters).
    public func documents() throws -> [String: DocumentRecord] {
        try read("listing documents") { db in
            var result: [String: DocumentRecord] = [:]
            for d in try Row.fetchAll(db, sql: Self.selectDocuments).map(Self.documentRecord) { result[d.path] = d }
            return result
        }
    }

    /// Replaces a document and its chunks in one transaction.
    /// - Returns: ids of the chunks removed and of those added.
    @discardableResult
    /// `metadata` is the fields the document's source gives; fields set later (`setFields`) are
    /// kept unless `keepSetFields` is false.
    public func replaceDocument(path: String, contentHash: String, size: Int64, modifiedAt: Double, title: String,
                                metadata: String = "{}", keepSetFields: Bool = true,
                                chunks: [NewChunk]) throws -> (removed: [Int64], added: [Int64]) {
        try write("storing \(path)") { db in
            let setFields = keepSetFields
                ? try String.fetchOne(db, sql: "SELECT fields_set FROM documents WHERE path = ?", arguments: [path]) ?? "{}" : "{}"
            let removed = try Self.deleteDocument(db, path: path)
            try db.execute(sql: "INSERT INTO documents(path, content_hash, size, modified_at, title, metadata, fields_set) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [path, contentHash, size, modifiedAt, title, metadata, setFields])
            let documentId = db.lastInsertedRowID
            let insert = try db.makeStatement(sql: """
                INSERT INTO chunks(document_id, ordinal, text, byte_start, byte_end, line_start, line_end, heading_path, vector)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            var added: [Int64] = []
            for (i, c) in chunks.enumerated() {
                try insert.execute(arguments: [documentId, i, c.text, c.byteRange.lowerBound, c.byteRange.upperBound,
                                               c.lineRange.lowerBound, c.lineRange.upperBound, c.headingPath, Self.blob(c.vector)])
                added.append(db.lastInsertedRowID)
            }
            try Self.refreshFields(db, documentId: documentId)
            try Self.bumpGeneration(db, removed: removed, added: added)
            return (removed, added)
        }
    }

    /// Removes a document and its chunks; returns the removed chunk ids (empty if unknown).
    @discardableResult
    public func removeDocument(path: String) throws -> [Int64] {
        try removeDocuments(paths: [path])
    }

    /// Removes documents and their chunks in one transaction; returns the removed chunk ids.
    @discardableResult
    public func removeDocuments(paths: [String]) throws -> [Int64] {
        guard !paths.isEmpty else { return [] }
        return try write(paths.count == 1 ? "removing \(paths[0])" : "removing \(paths.count) documents") { db in
            var removed: [Int64] = []
            for path in paths { removed += try Self.deleteDocument(db, path: path) }
            if !removed.isEmpty { try Self.bumpGeneration(db, removed: removed, added: []) }
            return removed
        }
    }

    /// Sets the fields a document's source gives (a JSON object), keeping or dropping those
    /// set later; false when there is no such document. Nothing is embedded again.
    @discardableResult
    public func setMetadata(path: String, json: String, keepSetFields: Bool = true) throws -> Bool {
        try write("storing the metadata of \(path)") { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM documents WHERE path = ?", arguments: [path]) else { return false }
            try db.execute(sql: "UPDATE documents SET metadata = ? WHERE id = ?", arguments: [json, id])
            if !keepSetFields { try db.execute(sql: "UPDATE documents SET fields_set = '{}' WHERE id = ?", arguments: [id]) }
            try Self.refreshFields(db, documentId: id)
            return true
        }
    }

    /// Records a file's new size and modification time (its text unchanged); false when there is
    /// no such document.
    @discardableResult
    public func setFileAttributes(path: String, size: Int64, modifiedAt: Double) throws -> Bool {
        try write("storing the attributes of \(path)") { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM documents WHERE path = ?", arguments: [path]) else { return false }
            try db.execute(sql: "UPDATE documents SET size = ?, modified_at = ? WHERE id = ?", arguments: [size, modifiedAt, id])
            try Self.refreshFields(db, documentId: id)
            return true
        }
    }

    private static func deleteDocument(_ db: Database, path: String) throws -> [Int64] {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM documents WHERE path = ?", arguments: [path]) else { return [] }
        let chunkIds = try Int64.fetchAll(db, sql: "SELECT id FROM chunks WHERE document_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM chunks WHERE document_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM document_fields WHERE document_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM documents WHERE id = ?", arguments: [id])
        return chunkIds
    }

    /// Chunks by id (unknown ids are skipped), with their document's path.
    public func chunks(ids: [Int64]) throws -> [Int64: ChunkRecord] {
        guard !ids.isEmpty else { return [:] }
        return try read("reading chunks") { db in
            var result: [Int64: ChunkRecord] = [:]
            let sql = """
                SELECT c.id, c.document_id, d.path, c.ordinal, c.text, c.byte_start, c.byte_end, c.line_start, c.line_end, c.heading_path,
                       d.fields_json, d.size, d.modified_at, d.title
                FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN (\(ids.map { _ in "?" }.joined(separator: ",")))
                """
            for row in try Row.fetchAll(db, sql: sql, arguments: StatementArguments(ids)) {
                let r = ChunkRecord(id: row[0], documentId: row[1], path: row[2], ordinal: row[3], text: row[4],
                                    byteRange: (row[5] as Int)..<(row[6] as Int), lineRange: (row[7] as Int)...(row[8] as Int),
                                    headingPath: row[9], fieldsJSON: row[10], size: row[11], modifiedAt: row[12], title: row[13])
                result[r.id] = r
            }
            return result
        }
    }

    /// Calls `body` with the full vector of each of `ids` that exists (ids of removed chunks are
    /// skipped), in no particular order: one statement per 500 ids, the vector in a reused buffer
    /// (valid during the call only). This is how searches rescore their candidates.
    public func withVectors(ids: [Int64], _ body: (Int64, UnsafeBufferPointer<Float>) -> Void) throws {
        guard !ids.isEmpty else { return }
        try read("reading vectors") { db in try Self.forEachVector(db, ids: ids, body) }
    }

    /// The vectors of `ids` that exist, in no particular order, read in `db`'s transaction: one
    /// statement per 500 ids, each vector handed to `body` in a reused buffer.
    private static func forEachVector(_ db: Database, ids: [Int64], _ body: (Int64, UnsafeBufferPointer<Float>) -> Void) throws {
        var buffer: [Float] = []
        var start = 0
        while start < ids.count {
            let part = Array(ids[start..<min(ids.count, start + 500)])
            start += part.count
            let sql = "SELECT id, vector FROM chunks WHERE id IN (\(repeatElement("?", count: part.count).joined(separator: ",")))"
            let rows = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: StatementArguments(part))
            while let row = try rows.next() {
                let id: Int64 = row[0]
                try row.withUnsafeData(atIndex: 1) { data in
                    guard let data else { return }
                    if buffer.count != data.count / 4 { buffer = [Float](repeating: 0, count: data.count / 4) }
                    buffer.withUnsafeMutableBytes { _ = data.copyBytes(to: $0) }   // blobs need not be aligned for Float
                    buffer.withUnsafeBufferPointer { body(id, $0) }
                }
            }
        }
    }

    /// Every chunk's id and vector with the generation they reflect, read in one transaction.
    public func allVectors() throws -> (generation: Int, items: [(id: Int64, vector: [Float])]) {
        try read("reading all vectors") { db in
            let generation = try Self.counter(db, "generation")
            var items: [(id: Int64, vector: [Float])] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT id, vector FROM chunks ORDER BY id")
            while let row = try rows.next() { items.append((row[0], Self.floats(row[1]))) }
            return (generation, items)
        }
    }

    /// Calls `body` with every chunk's id, document path and vector (for rebuilding the index).
    public func forEachVector(_ body: (Int64, String, [Float]) throws -> Void) throws {
        try read("reading all vectors") { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT c.id, d.path, c.vector FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY c.id")
            while let row = try rows.next() {
                try body(row[0], row[1], Self.floats(row[2]))
            }
        }
    }

    /// Chunks ranked by FTS5 BM25 for the words of `query` (any of them), best first; with
    /// `allowed`, only those chunks (read in rank order until `limit` of them are found).
    public func lexicalSearch(_ query: String, limit: Int, allowed: ChunkSet? = nil) throws -> [(id: Int64, score: Double)] {
        let terms = Self.ftsTerms(query)
        guard !terms.isEmpty, limit > 0 else { return [] }
        let match = terms.map { "\"\($0)\"" }.joined(separator: " OR ")
        return try read("lexical search") { db in
            guard let allowed else {
                return try Row.fetchAll(db, sql: "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?",
                                        arguments: [match, limit]).map { (id: $0[0], score: -($0[1] as Double)) }
            }
            var found: [(id: Int64, score: Double)] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s",
                                           arguments: [match])
            while found.count < limit, let row = try rows.next() {
                let id: Int64 = row[0]
                if allowed.contains(id) { found.append((id, -(row[1] as Double))) }
            }
            return found
        }
    }

    /// Lower-cased words of a query, safe to quote in an FTS5 expression. Common English
    /// function words are left out (they match nearly every chunk, cost the most to score and
    /// add little to BM25) unless the query has nothing else.
    static func ftsTerms(_ query: String) -> [String] {
        var seen = Set<String>()
        let words = query.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init).filter { seen.insert($0).inserted }
        let content = words.filter { !stopwords.contains($0) }
        return content.isEmpty ? words : content
    }

    static let stopwords: Set<String> = [
        "a", "about", "above", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been",
        "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down",
        "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
        "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my",
        "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own",
        "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there",
        "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were",
        "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours"]

    /// Inconsistencies, if any: SQLite's integrity check, chunks without a document, FTS rows
    /// out of step with the chunks, vectors of the wrong size. Empty when all is well.
    public func consistencyProblems(dimensions: Int) throws -> [String] {
        try read("checking consistency") { db in
            var problems: [String] = []
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if integrity != ["ok"] { problems.append("integrity_check: \(integrity.joined(separator: "; "))") }
            let orphans = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)") ?? 0
            if orphans > 0 { problems.append("\(orphans) chunks without a document") }
            let chunks = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") ?? 0
            let fts = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks_fts") ?? 0
            if fts != chunks { problems.append("FTS has \(fts) rows for \(chunks) chunks") }
            let badVectors = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE length(vector) != ?", arguments: [dimensions * 4]) ?? 0
            if badVectors > 0 { problems.append("\(badVectors) vectors are not \(dimensions) floats") }
            let empty = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents WHERE id NOT IN (SELECT document_id FROM chunks)") ?? 0
            if empty > 0 { problems.append("\(empty) documents without chunks") }
            return problems
        }
    }

    /// Numbers of documents and chunks.
    public func counts() throws -> (documents: Int, chunks: Int) {
        try read("counting") { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") ?? 0)
        }
    }

    // MARK: Tasks

    public func saveTask(_ task: TaskRecord) throws {
        try write("saving task \(task.name)") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO tasks(name, instruct, examples, reranker, rerank_depth) VALUES (?, ?, ?, ?, ?)",
                           arguments: [task.name, task.instruct, task.examplesJSON, task.reranker, task.rerankDepth])
        }
    }

    public func task(named name: String) throws -> TaskRecord? {
        try read("reading task \(name)") { db in
            try Row.fetchOne(db, sql: "SELECT \(try Self.taskColumns(db)) FROM tasks WHERE name = ?", arguments: [name]).map(Self.taskRecord)
        }
    }

    public func tasks() throws -> [TaskRecord] {
        try read("listing tasks") { db in
            try Row.fetchAll(db, sql: "SELECT \(try Self.taskColumns(db)) FROM tasks ORDER BY name").map(Self.taskRecord)
        }
    }

    /// The task columns to read: a read-only collection of an older build (no migration v5) has
    /// no reranker columns, and its tasks have no reranker.
    private static func taskColumns(_ db: Database) throws -> String {
        let hasReranker = try db.columns(in: "tasks").contains { $0.name == "reranker" }
        return "name, instruct, examples, " + (hasReranker ? "reranker, rerank_depth" : "NULL, NULL")
    }

    private static func taskRecord(_ row: Row) -> TaskRecord {
        TaskRecord(name: row[0], instruct: row[1], examplesJSON: row[2], reranker: row[3], rerankDepth: row[4])
    }

    // MARK: Helpers

    func read<T>(_ context: String, _ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch { throw StoreError.database(error, "\(url.path): \(context)") }
    }

    func write<T>(_ context: String, _ body: (Database) throws -> T) throws -> T {
        if let reason = readOnlyReason {
            throw StoreError(.readOnly, "\(url.path) is open read-only (\(reason)): \(context) needs a writable collection folder with free space")
        }
        do { return try pool.write(body) } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            // Give up the reserve once and retry: a removal frees more than it needs.
            if (try? FileManager.default.removeItem(at: reserveURL)) != nil, let done = try? pool.write(body) { return done }
            throw StoreError(.diskFull, "\(url.path): the disk is full while \(context); free space (sextant remove frees it) and retry. Nothing was changed")
        } catch {
            throw StoreError.database(error, "\(url.path): \(context)")
        }
    }

    static func blob(_ v: [Float]) -> Data { v.withUnsafeBufferPointer { Data(buffer: $0) } }

    static func floats(_ d: Data) -> [Float] {
        var v = [Float](repeating: 0, count: d.count / 4)
        v.withUnsafeMutableBytes { _ = d.copyBytes(to: $0) }
        return v
    }
}
