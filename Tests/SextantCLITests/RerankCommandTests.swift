import Foundation
import Testing

/// A tiny BEIR set and a lexical-looking run over it, written to a temporary folder.
func rerankFixture() throws -> URL {
    let dir = temporaryFolder("sextant-rerank")
    let corpus = [
        ("d1", "Bread", "Knead the dough, let it rise for an hour, then bake it in a hot oven."),
        ("d2", "Soup", "Simmer vegetables in stock and season with salt."),
        ("d3", "Wings", "A swept wing delays the drag rise near the speed of sound."),
        ("d4", "Flaps", "Flaps increase lift at low speed for landing."),
        ("d5", "Engines", "Jet engines produce thrust by accelerating air through a nozzle."),
    ]
    let lines = corpus.map { "{\"_id\": \"\($0.0)\", \"title\": \"\($0.1)\", \"text\": \"\($0.2)\"}" }
    try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("corpus.jsonl"))
    try Data("""
        {"_id": "q1", "text": "how do you bake bread"}
        {"_id": "q2", "text": "more lift when an aircraft lands"}

        """.utf8).write(to: dir.appendingPathComponent("queries.jsonl"))
    // q1's list puts bread last; q2's has a document the corpus lacks; q3 has no query text.
    try Data("""
        q1 Q0 d2 1 9.0 bm25
        q1 Q0 d5 2 8.0 bm25
        q1 Q0 d1 3 7.0 bm25
        q2 Q0 d3 1 5.0 bm25
        q2 Q0 gone 2 4.0 bm25
        q2 Q0 d4 3 3.0 bm25
        q2 Q0 d5 4 2.0 bm25
        q3 Q0 d1 1 1.0 bm25

        """.utf8).write(to: dir.appendingPathComponent("run.trec"))
    try Data("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\n".utf8).write(to: dir.appendingPathComponent("qrels.tsv"))
    return dir
}

/// query id → document ids of a TREC run, in file order.
func runLists(_ text: String) -> [String: [String]] {
    var lists: [String: [String]] = [:]
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        lists[String(f[0]), default: []].append(String(f[2]))
    }
    return lists
}

@Suite(.serialized) struct RerankCommandTests {
    @Test func rerankCandidatesFromAFileAndStdin() throws {
        let dir = temporaryFolder("sextant-rerank-candidates")
        let file = dir.appendingPathComponent("c.jsonl")
        try Data("""
            {"id": "soup", "text": "Simmer vegetables in stock and season with salt."}
            {"id": "bread", "text": "Knead the dough, let it rise for an hour, then bake it in a hot oven."}
            {"id": "wings", "text": "A swept wing delays the drag rise near the speed of sound."}
            """.utf8).write(to: file)
        let r = try runSextant(["rerank", "--query", "how do you bake bread", "--candidates", file.path, "--json", "--top-n", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let results = out?["results"] as? [[String: Any]] ?? []
        #expect(results.count == 2 && results.first?["id"] as? String == "bread" && results.first?["index"] as? Int == 1)
        #expect(out?["model"] as? String == "all-MiniLM-L6-v2")
        #expect(Set(results.first?.keys.map { $0 } ?? []) == ["rank", "index", "id", "score"])

        // The same from stdin as a JSON array of strings, text output.
        let array = "[\"Simmer vegetables in stock.\", \"Bake the bread in a hot oven.\"]"
        let s = try runSextant(["rerank", "--query", "baking bread", "--candidates", "-"], input: Data(array.utf8))
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stdout.hasPrefix("1. ") && s.stdout.split(separator: "\n").first?.contains("  1  Bake the bread") == true, "\(s.stdout)")
    }

    @Test func rerankARunWithACorpusOrAnIndex() throws {
        let dir = try rerankFixture()
        let path = { dir.appendingPathComponent($0).path }
        let out = path("out.trec")
        let r = try runSextant(["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("corpus.jsonl"),
                                "--run-out", out, "--qrels", path("qrels.tsv")])
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let lists = runLists(text)
        #expect(lists["q1"]?.first == "d1", "\(text)")
        #expect(lists["q2"]?.first == "d4" && lists["q2"]?.last == "gone", "\(text)")   // missing text: below the scored ones
        #expect(lists["q3"] == ["d1"])   // no query text: unchanged
        #expect(Set(lists["q2"] ?? []) == ["d3", "gone", "d4", "d5"])
        #expect(r.stderr.contains("1 of the 6 documents in the top 100 lists are not in") && r.stderr.contains("1 queries of the run are not in"),
                "\(r.stderr)")
        #expect(r.stdout.contains("reranked   nDCG@10 1.0000"), "\(r.stdout)")
        #expect(text.split(separator: "\n").allSatisfy { $0.hasSuffix(" sextant-rerank") && $0.split(separator: " ").count == 6 })

        // --depth 2 leaves q1's third document where it was; --fuse keeps the run's order in play.
        let shallow = try runSextant(["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"),
                                      "--corpus", path("corpus.jsonl"), "--depth", "2"])
        #expect(shallow.status == 0 && runLists(shallow.stdout)["q1"]?.last == "d1", "\(shallow.stdout)")
        let fused = try runSextant(["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"),
                                    "--corpus", path("corpus.jsonl"), "--fuse", "--rrf-k", "1", "--run-out", path("fused.trec"), "--json"])
        #expect(fused.status == 0, "\(fused.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(fused.stdout.utf8)) as? [String: Any]
        #expect((report?["report"] as? [String: Any])?["pairs_scored"] as? Int == 6)
        #expect(report?["documents_embedded"] as? Int == 5)

        // With an index of the same corpus, stored vectors give the same order.
        let index = temporaryFolder("sextant-rerank-index")
        let built = try runSextant(["index", path("corpus.jsonl"), "--index", index.path, "--quiet", "--chunk-tokens", "0"])
        #expect(built.status == 0, "\(built.stderr)")
        let viaIndex = try runSextant(["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--index", index.path])
        #expect(viaIndex.status == 0, "\(viaIndex.stderr)")
        #expect(runLists(viaIndex.stdout) == lists, "\(viaIndex.stdout)")
    }

    @Test func badRerankInputIsOneClearError() throws {
        let dir = try rerankFixture()
        let path = { dir.appendingPathComponent($0).path }
        try Data("q1 Q0 d1 1 7.0 bm25\nq1 Q0 d2 x 6.0 bm25\n".utf8).write(to: dir.appendingPathComponent("bad.trec"))
        try Data("{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"a\", \"text\": \"y\"}\n".utf8).write(to: dir.appendingPathComponent("dup.jsonl"))
        try Data("1\tsome query\n".utf8).write(to: dir.appendingPathComponent("other-queries.tsv"))
        try Data("{\"_id\": \"x1\", \"text\": \"unrelated\"}\n".utf8).write(to: dir.appendingPathComponent("other-corpus.jsonl"))
        let cases: [([String], String)] = [
            (["rerank"], "--query"),
            (["rerank", "--query", "x"], "--candidates"),
            (["rerank", "--query", "  ", "--candidates", path("dup.jsonl")], "--query is empty"),
            (["rerank", "--query", "x", "--candidates", path("dup.jsonl")], "share the id 'a'"),
            (["rerank", "--query", "x", "--candidates", path("nothing.jsonl")], "cannot read"),
            (["rerank", "--query", "x", "--candidates", path("dup.jsonl"), "--top-n", "0"], "--top-n"),
            (["rerank", "--query", "x", "--candidates", path("dup.jsonl"), "--precision", "f16"], "--precision"),
            (["rerank", "--query", "x", "--candidates", path("dup.jsonl"), "--depth", "5"], "are for reranking a run"),
            (["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("corpus.jsonl"), "--rrf-k", "5"], "--rrf-k needs --fuse"),
            (["rerank", "--run", path("run.trec"), "--queries", path("other-queries.tsv"), "--corpus", path("corpus.jsonl")], "none of the run's 3 queries is in"),
            (["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("other-corpus.jsonl")], "none of the 6 documents"),
            (["rerank", "--query", "x", "--candidates", path("dup.jsonl"), "--task", "t"], "--task needs --index"),
            (["rerank", "--query", "x", "--candidates", path("dup.jsonl"), "--run", path("run.trec")], "either"),
            (["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl")], "--corpus FILE or their vectors with --index"),
            (["rerank", "--run", path("bad.trec"), "--queries", path("queries.jsonl"), "--corpus", path("corpus.jsonl")], "bad.trec: line 2"),
            (["rerank", "--run", path("run.trec"), "--queries", path("run.trec"), "--corpus", path("corpus.jsonl")], "line 1 is not"),
            (["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("run.trec")], "no BEIR records"),
            (["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("corpus.jsonl"), "--depth", "0"], "--depth"),
            (["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--index", path("no-index")], "not a collection"),
            (["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("corpus.jsonl"), "--json"], "--run-out"),
        ]
        for (arguments, expected) in cases {
            let r = try runSextant(arguments)
            #expect(r.status != 0 && r.stderr.contains(expected), "\(arguments): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(arguments)")
        }
        // A run that fails on any input (here the judgements, read last) leaves the output file as it was.
        try Data("keep\n".utf8).write(to: dir.appendingPathComponent("keep.trec"))
        let failed = try runSextant(["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("corpus.jsonl"),
                                     "--run-out", path("keep.trec"), "--qrels", path("no-qrels.tsv")])
        #expect(failed.status != 0 && failed.stderr.contains("no-qrels.tsv"), "\(failed.stderr)")
        #expect(try String(contentsOfFile: path("keep.trec"), encoding: .utf8) == "keep\n")
    }
}
