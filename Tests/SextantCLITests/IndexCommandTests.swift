import Foundation
import Store
import Testing

func temporaryFolder(_ prefix: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Starts `sextant` without waiting for it.
func startSextant(_ arguments: [String]) throws -> Process {
    let p = Process()
    p.executableURL = sextantBinary
    p.arguments = arguments
    p.currentDirectoryURL = repoRoot
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}

@Suite(.serialized) struct IndexCommandTests {
    /// kill -9 the indexer at random moments, then let a run finish: every file indexed once,
    /// no orphans, FTS in step, and the next run has nothing left to do.
    @Test func killedRunsFinishWithoutDuplicatesOrOrphans() throws {
        let docs = temporaryFolder("sextant-kill-docs")
        let topics = ["wings", "engines", "bread", "soup", "rivers", "stars", "chess", "gardens"]
        for i in 0..<80 {
            let text = (0..<12).map { j in "Paragraph \(j) of note \(i) is about \(topics[(i + j) % topics.count]) and little else." }
                .joined(separator: "\n\n")
            try Data(text.utf8).write(to: docs.appendingPathComponent("note-\(i).md"))
        }
        let index = temporaryFolder("sextant-kill-index")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<4 {
            let p = try startSextant(["index", docs.path, "--index", index.path, "--quiet", "--chunk-tokens", "40"])
            usleep(UInt32.random(in: 300_000...2_500_000, using: &generator))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        let final = try runSextant(["index", docs.path, "--index", index.path, "--quiet", "--chunk-tokens", "40", "--json"])
        #expect(final.status == 0, "\(final.stderr)")
        let store = try CollectionStore(url: index.appendingPathComponent("meta.sqlite"))
        #expect(try store.counts().documents == 80)
        #expect(try store.consistencyProblems(dimensions: 384) == [])
        #expect(Set(try store.documents().keys).count == 80)
        let again = try runSextant(["index", docs.path, "--index", index.path, "--quiet", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any]
        #expect(report?["documentsUnchanged"] as? Int == 80)
        #expect(report?["chunksEmbedded"] as? Int == 0)
        // Search works after all that.
        let search = try runSextant(["search", "baking bread", "--index", index.path, "--json", "-k", "3"])
        #expect(search.status == 0 && search.stdout.contains("bread"))
        // What text hits carry: a snippet (default), none, or the whole chunk.
        func hits(_ extra: [String]) throws -> [[String: Any]] {
            let r = try runSextant(["search", "baking bread", "--index", index.path, "--json", "-k", "3"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["hits"] as? [[String: Any]] ?? []
        }
        let plain = try hits([]), bare = try hits(["--no-snippets"]), full = try hits(["--full-text"])
        #expect(plain.count == 3 && plain.allSatisfy { $0["snippet"] is String && $0["text"] == nil })
        #expect(bare.count == 3 && bare.allSatisfy { $0["snippet"] == nil && $0["text"] == nil })
        #expect(full.count == 3 && full.allSatisfy { $0["snippet"] == nil && ($0["text"] as? String)?.isEmpty == false })
        #expect(bare.map { $0["chunk_id"] as? Int } == plain.map { $0["chunk_id"] as? Int })
        let both = try runSextant(["search", "baking bread", "--index", index.path, "--no-snippets", "--full-text"])
        #expect(both.status != 0 && both.stderr.contains("exclude each other") && both.stdout.isEmpty)
    }

    /// Names that differ only in Unicode normalization are two files: both indexed once, both
    /// unchanged on the next run, and removing one keeps the other.
    @Test func unicodeNormalizationVariantsAreTwoFiles() throws {
        let docs = temporaryFolder("sextant-nfc")
        let nfc = docs.appendingPathComponent("caf\u{E9}.txt").path, nfd = docs.appendingPathComponent("cafe\u{301}.txt").path
        #expect(FileManager.default.createFile(atPath: nfc, contents: Data("Espresso and croissants in the morning.".utf8)))
        #expect(FileManager.default.createFile(atPath: nfd, contents: Data("Tea and scones in the afternoon.".utf8)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: docs.path).count == 2)
        let index = temporaryFolder("sextant-nfc-index")
        #expect(try runSextant(["index", docs.path, "--index", index.path, "--quiet"]).status == 0)
        let again = try runSextant(["index", docs.path, "--index", index.path, "--quiet", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any]
        #expect(report?["documentsUnchanged"] as? Int == 2)
        #expect(report?["chunksEmbedded"] as? Int == 0)
        try FileManager.default.removeItem(atPath: nfd)
        let third = try runSextant(["index", docs.path, "--index", index.path, "--quiet", "--json"])
        let r3 = try JSONSerialization.jsonObject(with: Data(third.stdout.utf8)) as? [String: Any]
        #expect(r3?["documentsRemoved"] as? Int == 1 && r3?["documentsUnchanged"] as? Int == 1)
        let search = try runSextant(["search", "tea and scones", "--index", index.path, "--mode", "lexical", "--json"])
        let hits = (try JSONSerialization.jsonObject(with: Data(search.stdout.utf8)) as? [String: Any])?["hits"] as? [Any]
        #expect(search.status == 0 && hits?.isEmpty == true)
    }

    /// `search --queries` skips blank lines and names the line of a bad one; an empty --filter is an error.
    @Test func queryFilesAndEmptyFilters() throws {
        let index = temporaryFolder("sextant-queries-index")
        #expect(try runSextant(["index", "fixtures/docs", "--index", index.path, "--quiet"]).status == 0)
        let file = temporaryFolder("sextant-queries").appendingPathComponent("q.txt")
        try Data("install sextant\n\n   \ndoes it need a GPU\n".utf8).write(to: file)
        let r = try runSextant(["search", "--queries", file.path, "--index", index.path, "--json", "-k", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").count == 2)
        try Data("install sextant\n{\"text\": 5}\n".utf8).write(to: file)
        let bad = try runSextant(["search", "--queries", file.path, "--index", index.path])
        #expect(bad.status != 0 && bad.stderr.contains("line 2"))
        let empty = try runSextant(["search", "x", "--filter", "", "--index", index.path])
        #expect(empty.status != 0 && empty.stderr.contains("--filter"))
    }

    @Test func searchErrorsAreOneClearLine() throws {
        let missing = try runSextant(["search", "x", "--index", "/nonexistent/index"])
        #expect(missing.status != 0 && missing.stderr.hasPrefix("error: ") && missing.stderr.contains("sextant index"))
        let badMode = try runSextant(["search", "x", "--mode", "fuzzy"])
        #expect(badMode.status != 0 && badMode.stderr.contains("--mode"))
        let badK = try runSextant(["search", "x", "-k", "0"])
        #expect(badK.status != 0)
        let badEval = try runSextant(["eval", "/nonexistent/beir"])
        #expect(badEval.status != 0 && badEval.stderr.contains("corpus.jsonl"))
    }
}
