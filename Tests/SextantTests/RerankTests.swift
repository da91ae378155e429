import Foundation
import Testing
import Sextant

/// The message of the `SextantError` that `body` throws (nil when it does not throw one).
func errorMessage(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as SextantError { return e.message } catch { return "\(error)" }
}

@Suite struct TrecRunTests {
    @Test func parsesOrdersByScoreAndRoundTrips() throws {
        let text = """
            q2 Q0 b 2 1.5 bm25
            q2 Q0 a 1 2.5 bm25
            q1 Q0 x 1 7 bm25

            q2 Q0 c 3 1.5 bm25
            q1\tQ0\ty\t2\t-1e3\tbm25\r
            """
        let run = try TrecRun.parse(Data(text.utf8), source: "run.trec")
        #expect(run.queries.map(\.id) == ["q2", "q1"])
        #expect(run.queries[0].documents.map(\.id) == ["a", "b", "c"])   // by score, then rank
        #expect(run.queries[1].documents.map(\.score) == [7, -1000])
        #expect(run.rankings["q2"] == ["a", "b", "c"])
        // Written back, the tie b = c becomes strictly decreasing, so the order survives any reader.
        let written = run.formatted(tag: "t")
        #expect(written.split(separator: "\n").prefix(3) == ["q2 Q0 a 1 2.500000 t", "q2 Q0 b 2 1.500000 t", "q2 Q0 c 3 1.499999 t"])
        let again = try TrecRun.parse(Data(written.utf8), source: "again")
        #expect(again.rankings == run.rankings && again.queries.map(\.id) == ["q2", "q1"])
    }

    @Test func windowsLineEndsAreRead() throws {
        let run = try TrecRun.parse(Data("q1 Q0 a 1 2 t\r\nq1 Q0 b 2 1 t\r\n\r\nq2 Q0 c 1 1 t\r\n".utf8), source: "crlf.trec")
        #expect(run.rankings == ["q1": ["a", "b"], "q2": ["c"]])
        let root = try makeTree([
            "q.tsv": "q1\tfirst query\r\nq2\tsecond\r\n",
            "q.jsonl": "{\"_id\": \"q1\", \"text\": \"first\"}\r\n{\"_id\": \"q2\", \"text\": \"second\"}\r\n",
            "corpus.jsonl": "{\"_id\": \"1\", \"text\": \"one\"}\r\n{\"_id\": \"2\", \"text\": \"two\"}\r\n",
            "qrels.tsv": "query-id\tcorpus-id\tscore\r\nq1\t1\t1\r\n",
        ])
        #expect(try RunReranker.queryTexts(root.appendingPathComponent("q.tsv")) == ["q1": "first query", "q2": "second"])
        #expect(try RunReranker.queryTexts(root.appendingPathComponent("q.jsonl")) == ["q1": "first", "q2": "second"])
        #expect(try RunReranker.corpusTexts(root.appendingPathComponent("corpus.jsonl"), ids: ["1", "2"], warn: { _ in }) == ["1": "one", "2": "two"])
        #expect(try Evaluation.readQrels(root.appendingPathComponent("qrels.tsv")) == ["q1": ["1": 1]])
    }

    @Test func writtenScoresAreStrictlyDecreasingAfterRounding() {
        let text = Evaluation.trecRun([("q", [("a", 0.1234564), ("b", 0.1234561), ("c", 0.1234559), ("d", -0.5), ("e", -0.5), ("f", .nan)])],
                                      tag: "x")
        let scores = text.split(separator: "\n").map { $0.split(separator: " ")[4] }
        #expect(scores == ["0.123456", "0.123455", "0.123454", "-0.500000", "-0.500001", "-9000000000000.000000"])
    }

    @Test func malformedRunsNameTheLine() {
        let cases: [(String, String)] = [
            ("q1 Q0 a 1 2.0 t\nq1 Q0 b 2 t\n", "line 2"),
            ("q1 Q0 a one 2.0 t\n", "line 1"),
            ("q1 Q0 a 1 nan t\n", "line 1"),
            ("q1 Q0 a 1 inf t\n", "line 1"),
            ("q1 Q0 a 1 2 t\nq2 Q0 a 1 2 t\nq1 Q0 a 3 1 t\n", "line 3 lists document 'a' for query 'q1' again (first on line 1)"),
            ("\n  \n", "empty"),
            ("q1 Q0 a 1 2.0 t extra\n", "line 1"),
        ]
        for (text, expected) in cases {
            let message = errorMessage { try TrecRun.parse(Data(text.utf8), source: "r.trec") }
            #expect(message?.contains(expected) == true && message?.hasPrefix("r.trec") == true, "\(text.debugDescription): \(message ?? "no error")")
        }
        #expect(errorMessage { try TrecRun.parse(Data([0xFF, 0xFE, 0x20]), source: "bin") }?.contains("UTF-8") == true)
    }
}

@Suite struct RunRerankerTests {
    let run = TrecRun(queries: [
        ("q1", ["a", "b", "c", "d", "e"].enumerated().map { TrecRun.Entry(id: $1, score: Double(10 - $0)) }),
        ("q2", [TrecRun.Entry(id: "a", score: 1)]),
    ])
    // q1 looks along x; a..d point ever closer to x; "e" has no vector.
    let documents: [String: [[Float]]] = [
        "a": [[0, 1]], "b": [[0.5, 1]], "c": [[1, 1], [0, 1]], "d": [[1, 0.1]],
    ]

    @Test func reordersTheHeadByCosineAndKeepsEverything() {
        let (out, report) = RunReranker.rerank(run, queryVectors: ["q1": [1, 0]], documentVectors: documents, depth: 4)
        let q1 = out.queries[0].documents
        // The top 4 by cosine (c counts by its best vector), then e below the depth.
        #expect(q1.map(\.id) == ["d", "c", "b", "a", "e"])
        #expect(abs(q1[1].score - cosineSimilarity([1, 0], [1, 1])) < 1e-12)
        #expect(zip(q1, q1.dropFirst()).allSatisfy { $0.score > $1.score })
        // q2 has no query text: unchanged.
        #expect(out.queries[1].id == "q2" && out.queries[1].documents == run.queries[1].documents)
        #expect(report.queries == 1 && report.queriesWithoutText == ["q2"] && report.pairsScored == 4 && report.documentsMissing == 0)
    }

    @Test func documentsWithoutVectorsStayBelowTheScoredOnes() {
        let (out, report) = RunReranker.rerank(run, queryVectors: ["q1": [1, 0], "q2": [0, 1]], documentVectors: documents, depth: 100)
        #expect(out.queries[0].documents.map(\.id) == ["d", "c", "b", "a", "e"])
        #expect(report.documentsMissing == 1 && report.pairsScored == 5)
        let scores = out.queries[0].documents.map(\.score)
        #expect(zip(scores, scores.dropFirst()).allSatisfy { $0 > $1 })
    }

    @Test func fusionKeepsDocumentsWithoutVectorsBelow() {
        // "e" is first in the run but has no vector: it follows the fused documents, even b, whose
        // fused score 1/4 + 1/4 equals what e's first place alone would give (1/2, k = 1).
        let run = TrecRun(queries: [("q", ["e", "a", "b", "c", "d"].map { TrecRun.Entry(id: $0, score: 1) }),
                                    ("r", ["e", "d"].map { TrecRun.Entry(id: $0, score: 1) })])
        let (out, report) = RunReranker.rerank(run, queryVectors: ["q": [1, 0], "r": [1, 0]], documentVectors: documents, depth: 10, fusionK: 1)
        // d = 1/6 + 1/2, a = 1/3 + 1/5 = c (a first: earlier in the run), b = 1/4 + 1/4.
        #expect(out.queries[0].documents.map(\.id) == ["d", "a", "c", "b", "e"])
        #expect(out.queries[1].documents.map(\.id) == ["d", "e"])
        #expect(report.documentsMissing == 1 && report.pairsScored == 5)
    }

    @Test func fusionMixesTheOriginalAndDenseRanks() {
        let (out, _) = RunReranker.rerank(run, queryVectors: ["q1": [1, 0]], documentVectors: documents, depth: 4, fusionK: 1)
        // Original ranks a1 b2 c3 d4, dense d1 c2 b3 a4; with k = 1: a = 1/2 + 1/5 = 0.7 = d,
        // b = 1/3 + 1/4 = c. Ties keep the order of first appearance (the original run).
        let q1 = out.queries[0].documents
        #expect(q1.map(\.id) == ["a", "d", "b", "c", "e"])
        #expect(abs(q1[0].score - 0.7) < 1e-12 && abs(q1[2].score - (1.0 / 3 + 1.0 / 4)) < 1e-12)
        #expect(q1[4].score < q1[3].score)
    }
}

@Suite struct RerankInputTests {
    func read(_ text: String) throws -> [RerankCandidate] {
        try RerankInput.candidates(from: Data(text.utf8), source: "c.jsonl")
    }

    @Test func readsLinesAndArrays() throws {
        let lines = try read("{\"id\": \"x\", \"text\": \"first\"}\n\n{\"text\": \"second\"}\r\n\"third\"\n{\"id\": 7, \"text\": \"fourth\"}")
        #expect(lines == [RerankCandidate(id: "x", text: "first"), RerankCandidate(id: "1", text: "second"),
                          RerankCandidate(id: "2", text: "third"), RerankCandidate(id: "7", text: "fourth")])
        let array = try read("  [\"a\", {\"id\": \"k\", \"text\": \"b\"}, {\"_id\": \"z\", \"text\": \"\"}]")
        #expect(array == [RerankCandidate(id: "0", text: "a"), RerankCandidate(id: "k", text: "b"), RerankCandidate(id: "z", text: "")])
    }

    @Test func badCandidatesAreOneClearError() {
        let cases: [(String, String)] = [
            ("", "no candidates"),
            ("\n \n", "no candidates"),
            ("[]", "no candidates"),
            ("{\"text\": \"a\"}\n{\"text\": ", "line 2 is not JSON"),
            ("{\"id\": \"a\"}", "line 1: expected"),
            ("{\"id\": \"a\", \"text\": 3}", "line 1: expected"),
            ("[{\"text\": \"a\"}, 5]", "item 1: expected"),
            ("[{\"text\": \"a\"}", "not valid JSON"),
            ("{\"id\": [1], \"text\": \"a\"}", "id must be a string or a number"),
            ("{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"a\", \"text\": \"y\"}", "share the id 'a'"),
        ]
        for (text, expected) in cases {
            let message = errorMessage { try read(text) }
            #expect(message?.contains(expected) == true, "\(text.debugDescription): \(message ?? "no error")")
        }
    }
}

@Suite(.serialized) struct RerankEmbedderTests {
    @Test func embedderRerankOrdersByCosineToTheQuery() throws {
        let embedder = try Embedder(folder: defaultModel)
        let candidates = [
            RerankCandidate(id: "soup", text: "Simmer vegetables in stock and season with salt."),
            RerankCandidate(id: "bread", text: "Knead the dough, let it rise for an hour, then bake it in a hot oven."),
            RerankCandidate(id: "wings", text: "A swept wing delays the drag rise near the speed of sound."),
            RerankCandidate(id: "soup-again", text: "Simmer vegetables in stock and season with salt."),
        ]
        var seen: [(Int, Int)] = []
        let results = embedder.rerank(query: "how do you bake bread", kind: .query(instruct: nil, examples: []),
                                      candidates: candidates, progress: { seen.append(($0, $1)) })
        #expect(results.first?.id == "bread" && results.map(\.rank) == [1, 2, 3, 4])
        #expect(Set(results.map(\.index)) == [0, 1, 2, 3])
        let q = embedder.embed(["how do you bake bread"], kind: .query(instruct: nil, examples: []))[0]
        let passages = embedder.embed(candidates.map(\.text))
        for r in results { #expect(abs(r.score - cosineSimilarity(q, passages[r.index])) < 1e-5) }
        // Equal texts score equally and keep their input order.
        let soups = results.filter { $0.id.hasPrefix("soup") }
        #expect(soups.map(\.id) == ["soup", "soup-again"] && abs(soups[0].score - soups[1].score) < 1e-9)
        #expect(seen.last.map { $0 == (4, 4) } == true)
    }

    @Test func collectionVectorsMatchRunIdsByPathRecordAndFileName() throws {
        let root = try makeTree([
            "a/corpus.jsonl": "{\"_id\": \"1\", \"title\": \"Bread\", \"text\": \"bake it\"}\n{\"_id\": \"2\", \"title\": \"\", \"text\": \"soup\"}\n",
            "b/notes.md": "# Notes\n\nWings and flaps.\n",
            "b/more.jsonl": "{\"_id\": \"x#y/z\", \"text\": \"odd id\"}\n",
        ])
        let c = try openCollection(newIndexDirectory())
        _ = try c.sync(SyncOptions(folders: [root]))
        let notes = root.appendingPathComponent("b/notes.md").standardizedFileURL.path
        let vectors = try c.documentVectors(forRunIds: ["1", "2", "notes.md", notes + "x", "missing", "x#y/z", "z", "y/z"])
        #expect(Set(vectors.keys) == ["1", "2", "notes.md", "x#y/z"])
        let byPath = try c.documentVectors(forRunIds: [notes])
        #expect(byPath[notes] == vectors["notes.md"])
        // The stored vector is the passage embedding of the record's title + ". " + text.
        let expected = c.embedder.embed(["Bread. bake it"])[0]
        #expect(vectors["1"].map { cosineSimilarity($0[0], expected) > 0.99999 } == true)

        // A second corpus with the same ids makes "1" ambiguous.
        let other = try makeTree(["c/corpus.jsonl": "{\"_id\": \"1\", \"text\": \"other\"}\n"])
        _ = try c.sync(SyncOptions(folders: [root, other]))
        let message = errorMessage { try c.documentVectors(forRunIds: ["1"]) }
        #expect(message?.contains("matches 2 documents") == true, "\(message ?? "no error")")
    }

    @Test func corpusAndQueryFilesAreRead() throws {
        let root = try makeTree([
            "corpus.jsonl": "{\"_id\": \"1\", \"title\": \"T\", \"text\": \"one\"}\n{\"_id\": 2, \"text\": \"two\"}\n{\"_id\": \"3\", \"text\": \"three\"}\n",
            "q.tsv": "q1\twhat is one\nq2\t two \n",
            "bad.tsv": "q1 what\n",
            "q.jsonl": "{\"_id\": \"q1\", \"text\": \"what is one\"}\n",
        ])
        let texts = try RunReranker.corpusTexts(root.appendingPathComponent("corpus.jsonl"), ids: ["1", "2", "9"], warn: { _ in })
        #expect(texts == ["1": "T. one", "2": "two"])
        #expect(try RunReranker.queryTexts(root.appendingPathComponent("q.tsv")) == ["q1": "what is one", "q2": "two"])
        #expect(try RunReranker.queryTexts(root.appendingPathComponent("q.jsonl")) == ["q1": "what is one"])
        #expect(errorMessage { try RunReranker.queryTexts(root.appendingPathComponent("bad.tsv")) }?.contains("line 1") == true)
        #expect(errorMessage { try RunReranker.corpusTexts(root.appendingPathComponent("nope.jsonl"), ids: [], warn: { _ in }) }?
            .contains("cannot read the corpus") == true)
        #expect(errorMessage { try RunReranker.corpusTexts(root.appendingPathComponent("q.tsv"), ids: [], warn: { _ in }) }?
            .contains("no BEIR records") == true)
    }
}
