import Foundation
import Testing
@testable import Store

func temporaryDatabase() -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sextant-store-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("meta.sqlite")
}

func chunk(_ text: String, _ v: [Float]) -> NewChunk {
    NewChunk(text: text, byteRange: 0..<text.utf8.count, lineRange: 1...1, headingPath: "H", vector: v)
}

@Suite struct SHA256Tests {
    @Test func knownDigests() {
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array(String(repeating: "a", count: 1_000_000).utf8)
        #expect(SHA256.hex(long) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Fed in odd pieces, the same digest.
        var h = SHA256()
        for piece in stride(from: 0, to: long.count, by: 999) { h.update(long[piece..<min(long.count, piece + 999)]) }
        #expect(h.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

/// The vectors `withVectors` hands out for `ids`, by id.
private func vectors(_ store: CollectionStore, _ ids: [Int64]) throws -> [Int64: [Float]] {
    var found: [Int64: [Float]] = [:]
    try store.withVectors(ids: ids) { id, v in found[id] = Array(v) }
    return found
}

@Suite struct CollectionStoreTests {
    @Test func documentsChunksAndVectorsRoundTrip() throws {
        let store = try CollectionStore(url: temporaryDatabase())
        #expect(try store.manifest() == nil)
        let m = Manifest(modelName: "m", modelPath: "/m", modelSHA256: "abc", dimensions: 2, promptFormat: "none", chunkTokens: 10, overlapTokens: 2)
        try store.setManifest(m)
        #expect(try store.manifest() == m)
        let g0 = try store.generation()
        let (removed, added) = try store.replaceDocument(path: "/a.txt", contentHash: "h1", size: 10, modifiedAt: 1, title: "A",
                                                         chunks: [chunk("alpha beta", [1, 0]), chunk("gamma delta", [0, 1])])
        #expect(removed.isEmpty && added.count == 2)
        #expect(try store.generation() == g0 + 1)
        #expect(try vectors(store, added + [999]) == [added[0]: [1, 0], added[1]: [0, 1]])
        #expect(try store.chunks(ids: added)[added[0]]?.path == "/a.txt")
        #expect(try store.counts() == (1, 2))

        // Replacing gives the old chunk ids back and leaves no orphans.
        let (removed2, added2) = try store.replaceDocument(path: "/a.txt", contentHash: "h2", size: 5, modifiedAt: 2, title: "A",
                                                           chunks: [chunk("epsilon", [1, 1])])
        #expect(Set(removed2) == Set(added) && added2.count == 1)
        #expect(try store.counts() == (1, 1))
        #expect(try store.documents()["/a.txt"]?.contentHash == "h2")
        #expect(try vectors(store, added).isEmpty)

        #expect(try store.removeDocument(path: "/a.txt") == added2)
        #expect(try store.removeDocument(path: "/nope") == [])
        #expect(try store.counts() == (0, 0))
    }

    @Test func lexicalSearchAndPathFilter() throws {
        let store = try CollectionStore(url: temporaryDatabase())
        try store.replaceDocument(path: "/docs/wing.md", contentHash: "1", size: 1, modifiedAt: 0, title: "",
                                  chunks: [chunk("The wing stalls at high angles of attack", [1, 0])])
        try store.replaceDocument(path: "/notes/engine.txt", contentHash: "2", size: 1, modifiedAt: 0, title: "",
                                  chunks: [chunk("Engines produce thrust; wings produce lift", [0, 1])])
        let hits = try store.lexicalSearch("stalling wing", limit: 10)
        #expect(hits.count == 2)   // porter stemming: "wings" and "stalling" match
        #expect(try store.chunks(ids: [hits[0].id])[hits[0].id]?.path == "/docs/wing.md")
        let filtered = try store.lexicalSearch("wing", limit: 10, allowed: try store.matchingChunks(.pathGlob("/notes/*")))
        #expect(filtered.count == 1)
        // Hostile query syntax is quoted, never an FTS5 syntax error.
        #expect(try store.lexicalSearch("\" OR NEAR( * ) AND -", limit: 5).isEmpty)
        #expect(try store.lexicalSearch("wing\") OR (\"x", limit: 5).count == 2)
        #expect(try store.matchingChunks(.pathGlob("*.md")).count == 1)
    }

    @Test func tasksAndSettingsPersistAcrossReopen() throws {
        let url = temporaryDatabase()
        do {
            let store = try CollectionStore(url: url)
            try store.saveTask(TaskRecord(name: "qa", instruct: "Answer", examplesJSON: "[]"))
            try store.setValue("7", forKey: "index_generation")
        }
        let reopened = try CollectionStore(url: url)
        #expect(try reopened.task(named: "qa")?.instruct == "Answer")
        #expect(try reopened.tasks().count == 1)
        #expect(try reopened.value(forKey: "index_generation") == "7")
        #expect(try reopened.task(named: "missing") == nil)
    }

    @Test func unopenableDatabaseIsAClearError() throws {
        let url = temporaryDatabase()
        try Data("this is not a database, just text that is long enough to have a header".utf8).write(to: url)
        let e = #expect(throws: StoreError.self) { try CollectionStore(url: url) }
        #expect(e?.message.contains(url.path) == true)
    }

    /// A new database is made whole before anyone sees it: processes (here threads) opening a new
    /// collection at once all succeed and all see 16 KiB pages and auto-vacuum; an empty file
    /// left by a crash is treated as no database.
    @Test func newDatabasesAreCreatedOnceWithTheirPageSize() throws {
        let url = temporaryDatabase()
        let opened = Counter()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            if (try? CollectionStore(url: url)) != nil { opened.add() }
        }
        #expect(opened.value == 4)
        let empty = temporaryDatabase()
        FileManager.default.createFile(atPath: empty.path, contents: Data())
        for u in [url, empty] {
            let store = try CollectionStore(url: u)
            #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 16384)
            #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 2)
            #expect(try store.manifest() == nil)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path).filter { $0.hasPrefix(".meta.sqlite.new") }
        #expect(leftovers.isEmpty)
    }

    /// Deleted rows give their pages back: at once in a new database (incremental auto-vacuum),
    /// and after one VACUUM in a database made without it, once a quarter of it is free.
    @Test func deletedRowsGiveTheirSpaceBack() throws {
        for legacy in [false, true] {
            let url = temporaryDatabase()
            let store = try CollectionStore(url: url)
            if !legacy {
                // Chosen before the first table and before WAL, or SQLite ignores them.
                #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 2)
                #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 16384)
                #expect(try store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
            }
            if legacy {
                try store.pool.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA auto_vacuum = NONE")
                    try db.execute(sql: "VACUUM")
                }
                #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 0)
            }
            let vector = [Float](repeating: 0.5, count: 384)
            let text = String(repeating: "a few words about wings and engines ", count: 40)
            for i in 0..<300 {
                try store.replaceDocument(path: "/d\(i).txt", contentHash: "h", size: 1, modifiedAt: 1, title: "",
                                          chunks: [chunk(text + "\(i)", vector), chunk(text, vector)])
            }
            let full = store.bytesOnDisk()
            #expect(try store.reclaimSpace() == 0, "nothing deleted yet")
            for i in 0..<290 { _ = try store.removeDocument(path: "/d\(i).txt") }
            let freed = try store.reclaimSpace()
            let after = store.bytesOnDisk()
            #expect(freed > 0 && after * 4 < full, "legacy \(legacy): \(full) -> \(after) bytes")
            let mode = try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") }
            #expect(mode == 2, "legacy \(legacy)")
            #expect(try store.counts().documents == 10)
            #expect(try store.consistencyProblems(dimensions: 384) == [])
            #expect(try store.lexicalSearch("wings", limit: 100).count == 20)   // the 10 documents left, 2 chunks each
        }
    }
}

/// A count shared by threads.
final class Counter: @unchecked Sendable {   // guarded by `lock`
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
