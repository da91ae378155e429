import Foundation
import Testing
@testable import Sextant
import Store
import VectorIndex

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let defaultModel = repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2")

func newIndexDirectory() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("sextant-index-\(UUID().uuidString)")
}

func openCollection(_ dir: URL, model: URL? = nil, warnings: WarningLog? = nil) throws -> Collection {
    try Collection(directory: dir, model: model, defaultModel: defaultModel, warn: { warnings?.append($0) })
}

/// `count` notes (`notes/nI.md`) of 14 paragraphs each, `paragraph(i, j, topic)` cycling through
/// eight topics, paragraphs separated by blank lines.
func topicNotes(_ count: Int, paragraph: (Int, Int, String) -> String) -> [String: String] {
    let topics = ["wings", "engines", "bread", "soup", "rivers", "stars", "chess", "gardens"]
    var files: [String: String] = [:]
    for i in 0..<count {
        files["notes/n\(i).md"] = (0..<14).map { j in paragraph(i, j, topics[(i + j) % topics.count]) }.joined(separator: "\n\n")
    }
    return files
}

final class WarningLog: @unchecked Sendable {
    private(set) var lines: [String] = []
    func append(_ s: String) { lines.append(s) }
}

let sampleDocs = [
    "aero/wings.md": "# Wings\n\nA swept wing delays the drag rise near the speed of sound.\n\n## Flaps\n\nFlaps increase lift at low speed for landing.\n",
    "aero/engines.txt": "Jet engines produce thrust by accelerating air through a nozzle.\n",
    "cooking/bread.txt": "Knead the dough, let it rise for an hour, then bake it in a hot oven.\n",
    "cooking/soup.md": "# Soup\n\nSimmer vegetables in stock and season with salt.\n",
]

@Suite(.serialized) struct CollectionTests {
    @Test func indexSearchAndIncrementalSync() throws {
        let root = try makeTree(sampleDocs)
        let dir = newIndexDirectory()
        let c = try openCollection(dir)
        let first = try c.sync(SyncOptions(folders: [root]))
        #expect(first.documentsAdded == 4 && first.chunksEmbedded >= 4)

        for mode in SearchMode.allCases {
            let hits = try c.search(SearchRequest(query: "how do you bake bread", k: 2, mode: mode))
            #expect(hits.first?.path.hasSuffix("cooking/bread.txt") == true, "\(mode)")
        }
        let full = try c.search(SearchRequest(query: "how do you bake bread", k: 1, mode: .dense, text: .full))
        #expect(full.first?.text == sampleDocs["cooking/bread.txt"]!.trimmingCharacters(in: .whitespacesAndNewlines) && full.first?.snippet == nil)
        let bare = try c.search(SearchRequest(query: "how do you bake bread", k: 1, mode: .dense, text: .none))
        #expect(bare.first?.text == nil && bare.first?.snippet == nil && bare.first?.chunkId == full.first?.chunkId)
        let flaps = try c.search(SearchRequest(query: "more lift when landing", k: 1, mode: .dense))
        #expect(flaps.first?.headingPath == "Wings > Flaps")
        #expect(flaps.first?.lineStart == 5)
        // Filter by path glob.
        let filtered = try c.search(SearchRequest(query: "bread", k: 5, mode: .hybrid, pathFilter: "*/aero/*"))
        #expect(!filtered.isEmpty && filtered.allSatisfy { $0.path.contains("/aero/") })

        // Nothing changed: nothing embedded.
        let second = try c.sync(SyncOptions(folders: [root]))
        #expect(second.documentsUnchanged == 4 && second.chunksEmbedded == 0)

        // One file changed, one deleted, one added.
        try Data("Bake sourdough slowly with a starter.\n".utf8).write(to: root.appendingPathComponent("cooking/bread.txt"))
        try FileManager.default.removeItem(at: root.appendingPathComponent("cooking/soup.md"))
        try Data("Propellers convert shaft power into thrust.\n".utf8).write(to: root.appendingPathComponent("aero/props.txt"))
        let third = try c.sync(SyncOptions(folders: [root]))
        #expect(third.documentsUpdated == 1 && third.documentsRemoved == 1 && third.documentsAdded == 1 && third.documentsUnchanged == 2)
        let info = try c.info()
        #expect(info.documents == 4)
        #expect(try c.search(SearchRequest(query: "soup vegetables stock", k: 10, mode: .lexical)).isEmpty)

        // Reopened from disk, the index gives the same answers.
        let reopened = try openCollection(dir)
        let a = try c.search(SearchRequest(query: "thrust", k: 3, mode: .dense)).map(\.chunkId)
        let b = try reopened.search(SearchRequest(query: "thrust", k: 3, mode: .dense)).map(\.chunkId)
        #expect(a == b && !a.isEmpty)
    }

    @Test func damagedOrStaleIndexFileIsRebuilt() throws {
        let root = try makeTree(sampleDocs)
        let dir = newIndexDirectory()
        let c = try openCollection(dir)
        _ = try c.sync(SyncOptions(folders: [root]))
        let before = try c.search(SearchRequest(query: "jet nozzle", k: 2, mode: .dense)).map(\.chunkId)
        let file = dir.appendingPathComponent("vectors.hnsw")
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: file)
        let log = WarningLog()
        let repaired = try openCollection(dir, warnings: log)
        #expect(log.lines.contains { $0.contains("damaged") })
        #expect(try repaired.search(SearchRequest(query: "jet nozzle", k: 2, mode: .dense)).map(\.chunkId) == before)

        try FileManager.default.removeItem(at: file)
        let log2 = WarningLog()
        let rebuilt = try openCollection(dir, warnings: log2)
        #expect(try rebuilt.search(SearchRequest(query: "jet nozzle", k: 2, mode: .dense)).map(\.chunkId) == before)
    }

    @Test func anotherModelIsRefusedWithBothNames() throws {
        let dir = newIndexDirectory()
        _ = try openCollection(dir)
        let other = repoRoot.appendingPathComponent("fixtures/decoders/tiny-qwen3")
        let e = #expect(throws: SextantError.self) { try openCollection(dir, model: other) }
        #expect(e?.code == .modelMismatch)
        #expect(e?.message.contains("all-MiniLM-L6-v2") == true && e?.message.contains("tiny-qwen3") == true)
        #expect(e?.message.contains("sextant reindex") == true)
    }

    @Test func savedTasksAndBadQueries() throws {
        let root = try makeTree(sampleDocs)
        let c = try openCollection(newIndexDirectory())
        _ = try c.sync(SyncOptions(folders: [root]))
        try c.saveTask(name: "recipes", instruct: "Find cooking instructions", examples: [Example(query: "pasta", response: "Boil water.")])
        #expect(try c.tasks().map(\.name) == ["recipes"])
        let hits = try c.search(SearchRequest(query: "oven", task: "recipes", k: 1, mode: .dense))
        #expect(hits.first?.path.contains("cooking") == true)
        #expect(throws: SextantError.self) { try c.search(SearchRequest(query: "x", task: "missing")) }
        #expect(throws: SextantError.self) { try c.search(SearchRequest(query: "   ")) }
        #expect(throws: SextantError.self) { try c.search(SearchRequest(query: "x", k: 0)) }
        // FTS5 syntax in a query is quoted away, never an error.
        #expect(try c.search(SearchRequest(query: "\" ( ) * : ^ -", k: 3, mode: .lexical)).isEmpty)
        #expect(try c.search(SearchRequest(query: "dough\") * (", k: 3, mode: .lexical)).first?.path.hasSuffix("bread.txt") == true)
    }

    @Test func badFilesAreSkippedAndNothingIndexedIsLost() throws {
        let root = try makeTree(sampleDocs.merging(["odd/empty.txt": ""]) { $1 })
        try Data([0x00, 0x01, 0x02, 0x03]).write(to: root.appendingPathComponent("odd/binary.txt"))
        try Data([0x6F, 0x6B, 0xFF, 0xFE, 0x20, 0x61, 0x69, 0x72]).write(to: root.appendingPathComponent("odd/latin1.txt"))
        // A 200 MB file (sparse, so the test stays fast) is over the default 100 MB limit.
        let huge = root.appendingPathComponent("odd/huge.txt")
        _ = FileManager.default.createFile(atPath: huge.path, contents: nil)
        let handle = try FileHandle(forWritingTo: huge)
        try handle.truncate(atOffset: 200_000_000)
        try handle.close()
        let log = WarningLog()
        let dir = newIndexDirectory()
        let c = try openCollection(dir, warnings: log)
        let report = try c.sync(SyncOptions(folders: [root]))
        #expect(report.documentsAdded == 5)   // four samples and the lossily decoded file
        #expect(report.filesSkipped == 3)
        #expect(log.lines.contains { $0.contains("empty.txt") && $0.contains("empty") })
        #expect(log.lines.contains { $0.contains("binary.txt") && $0.contains("binary") })
        #expect(log.lines.contains { $0.contains("huge.txt") && $0.contains("limit") })
        #expect(log.lines.contains { $0.contains("latin1.txt") && $0.contains("UTF-8") })

        // The folder disappears: a warning, and what was indexed from it stays.
        let moved = root.deletingLastPathComponent().appendingPathComponent(UUID().uuidString)
        try FileManager.default.moveItem(at: root, to: moved)
        let gone = try c.sync(SyncOptions(folders: [root]))
        #expect(gone.documentsRemoved == 0)
        #expect(try c.info().documents == 5)
        #expect(log.lines.contains { $0.contains("no such file or folder") })
        // Removing a path the collection does not hold removes nothing and says so.
        #expect(try c.remove(paths: [root.appendingPathComponent("nowhere.txt").path, root.path + "/"]) == 5)
        #expect(log.lines.contains { $0.contains("1 path is not in the collection") && $0.contains("nowhere.txt") }, "\(log.lines)")
    }

    /// Full vectors live once, in SQLite: the index (file and memory) holds the graph and int8
    /// codes, and searches rescore their candidates from the store with exact cosines. An index
    /// file of an older version (with a second copy of every vector) is rebuilt without it.
    @Test func vectorsAreStoredOnceAndRescoredFromTheStore() throws {
        let files = topicNotes(96) { i, j, topic in "Note \(i), part \(j): \(topic), seen \(i * 14 + j) times." }
        let root = try makeTree(files)
        let dir = newIndexDirectory()
        let c = try Collection(directory: dir, defaultModel: defaultModel, chunkTokens: 16, overlapTokens: 0, warn: { _ in })
        _ = try c.sync(SyncOptions(folders: [root]))
        let info = try c.info()
        #expect(info.chunks > 1100, "\(info.chunks)")   // past the index's training size: a graph over codes
        #expect(try c.index.vectorBytes == 0)
        let vectorBytes = Int64(384 * 4)
        #expect(info.indexBytes / Int64(info.chunks) < vectorBytes / 2, "\(info.indexBytes) bytes for \(info.chunks) chunks")
        #expect(info.bytesPerChunkInMemory > 0 && info.bytesPerChunkInMemory < vectorBytes / 2, "\(info.bytesPerChunkInMemory)")
        #expect(info.bytesPerChunkOnDisk == (info.databaseBytes + info.indexBytes) / Int64(info.chunks))

        // Dense scores are exact cosines with the stored vectors, and the best hit is the exact best.
        let stored = Dictionary(uniqueKeysWithValues: try c.store.allVectors().items.map { ($0.id, $0.vector) })
        func cosine(_ a: [Float], _ b: [Float]) -> Double {
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }, nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }
            return dot / (na.squareRoot() * nb.squareRoot())
        }
        for query in ["swept wings and lift", "a pot of vegetable soup", "opening moves in chess", "stars at night"] {
            let q = c.embedder.embed([query], kind: .query(instruct: nil, examples: []))[0]
            let best = stored.max { cosine(q, $0.value) < cosine(q, $1.value) }!
            let hits = try c.search(SearchRequest(query: query, k: 10, mode: .dense))
            #expect(hits.count == 10)
            #expect(hits.first?.chunkId == best.key, "\(query)")
            for hit in hits { #expect(abs(hit.score - cosine(q, stored[hit.chunkId]!)) < 1e-4, "\(query)") }
        }

        // An index file that keeps full vectors (as older versions wrote) is replaced by one without.
        let old = try HNSWIndex.rebuild(dimensions: 384, metric: .cosine,
                                        parameters: HNSWParameters(m: 16, efConstruction: 200, ef: 96, oversampling: 4, storesVectors: true),
                                        from: stored.map { (UInt64($0.key), $0.value) })
        try old.save(to: c.indexURL)
        let oldBytes = try FileManager.default.attributesOfItem(atPath: c.indexURL.path)[.size] as! Int
        #expect(oldBytes > 2 * Int(info.indexBytes), "\(oldBytes) and \(info.indexBytes) bytes")
        let log = WarningLog()
        let reopened = try openCollection(dir, warnings: log)
        #expect(log.lines.contains { $0.contains("older Sextant") }, "\(log.lines)")
        #expect(try reopened.info().indexBytes * 2 < oldBytes)
        #expect(try reopened.search(SearchRequest(query: "swept wings and lift", k: 3, mode: .dense)).count == 3)
    }

    /// Half of the chunks are one identical boilerplate text (each paragraph's tail
    /// "sentence."), a group far larger than the search beam. Dense searches must still find
    /// the paragraphs behind it, and a search for the boilerplate returns k copies.
    @Test func boilerplateChunksDoNotHideTheRest() throws {
        let files = topicNotes(96) { i, j, topic in
            "Paragraph \(j) of note \(i) is about \(topic) and a few other things worth a sentence."
        }
        let root = try makeTree(files)
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, chunkTokens: 16, overlapTokens: 0, warn: { _ in })
        _ = try c.sync(SyncOptions(folders: [root]))
        let tails = try c.search(SearchRequest(query: "sentence.", k: 50, mode: .dense))
        #expect(tails.count == 50 && tails.allSatisfy { $0.snippet == "sentence." }, "\(tails.prefix(3))")
        #expect(Set(tails.map(\.chunkId)).count == 50)
        for (query, topic) in [("swept wings and lift", "wings"), ("opening moves in chess", "chess"), ("stars at night", "stars"),
                               ("a pot of vegetable soup", "soup")] {
            let hits = try c.search(SearchRequest(query: query, k: 3, mode: .dense))
            #expect(hits.count == 3 && hits.allSatisfy { $0.snippet?.contains(topic) == true }, "\(query): \(hits.map(\.snippet))")
        }
    }

    /// Deleting most of a collection gives the disk space back (index file and database), and
    /// what is left stays searchable.
    @Test func deletesGiveSpaceBack() throws {
        var files = topicNotes(48) { i, j, topic in
            "Paragraph \(j) of note \(i) is about \(topic) and a few other things worth a sentence."
        }
        files["keep/bread.txt"] = "Knead the dough, let it rise for an hour, then bake it in a hot oven.\n"
        let root = try makeTree(files)
        let dir = newIndexDirectory()
        let c = try Collection(directory: dir, defaultModel: defaultModel, chunkTokens: 16, overlapTokens: 0, warn: { _ in })
        _ = try c.sync(SyncOptions(folders: [root]))
        let full = try c.info()
        #expect(full.chunks > 600, "\(full.chunks)")

        #expect(try c.remove(path: root.appendingPathComponent("notes").path) == 48)
        let after = try c.info()
        #expect(after.documents == 1 && after.chunks <= 2)
        #expect(after.indexBytes * 10 < full.indexBytes, "index \(full.indexBytes) -> \(after.indexBytes) bytes")
        #expect(after.databaseBytes * 2 < full.databaseBytes, "database \(full.databaseBytes) -> \(after.databaseBytes) bytes")
        #expect(try c.store.consistencyProblems(dimensions: 384) == [])
        let hits = try c.search(SearchRequest(query: "baking bread", k: 3, mode: .dense))
        #expect(!hits.isEmpty && hits.allSatisfy { $0.path == root.appendingPathComponent("keep/bread.txt").path })

        // Reopened: the compacted index is current (no rebuild warning), and adding works again.
        let log = WarningLog()
        let again = try openCollection(dir, warnings: log)
        #expect(log.lines.isEmpty, "\(log.lines)")
        let report = try again.sync(SyncOptions(folders: [root.appendingPathComponent("notes")]))
        #expect(report.documentsAdded == 48)
        #expect(try again.info().chunks == full.chunks)
    }
}
