import Foundation
import Testing

/// `sextant rerank --reranker`, `sextant search --rerank` with the tiny cross-encoder fixtures
/// (fixtures/rerankers, scores from sentence-transformers' CrossEncoder.predict).
@Suite(.serialized) struct CrossEncoderCommandTests {
    static let fixtures = repoRoot.appendingPathComponent("fixtures/rerankers")

    struct Golden: Decodable {
        struct Pair: Decodable { let query: String; let passage: String; let score: Double }
        let pairs: [Pair]
    }

    @Test func rerankCandidatesWithACrossEncoder() throws {
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("tiny-bert-cross.golden.json")))
        // Every query with two or more non-empty passages: its passages as candidates.
        let groups = Dictionary(grouping: golden.pairs.filter { !$0.passage.isEmpty && !$0.query.isEmpty }, by: \.query).filter { $0.value.count >= 2 }
        #expect(groups.values.reduce(0) { $0 + $1.count } >= 6)
        for (query, pairs) in groups {
            let file = temporaryFolder("sextant-cross").appendingPathComponent("c.jsonl")
            let lines = try pairs.enumerated().map { i, p in
                String(decoding: try JSONSerialization.data(withJSONObject: ["id": "p\(i)", "text": p.passage]), as: UTF8.self)
            }
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
            let r = try runSextant(["rerank", "--query", query, "--candidates", file.path, "--reranker",
                                    Self.fixtures.appendingPathComponent("tiny-bert-cross").path, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            #expect(out?["model"] as? String == "tiny-bert-cross")
            let results = out?["results"] as? [[String: Any]] ?? []
            let expected = pairs.indices.sorted { pairs[$0].score != pairs[$1].score ? pairs[$0].score > pairs[$1].score : $0 < $1 }
            #expect(results.compactMap { $0["index"] as? Int } == expected, "\(query)")
            for item in results {
                let i = item["index"] as? Int ?? 0
                #expect(abs((item["score"] as? Double ?? -1) - pairs[i].score) < 1e-4)
            }
        }
    }

    @Test func rerankARunWithACrossEncoder() throws {
        let dir = try rerankFixture()
        let path = { dir.appendingPathComponent($0).path }
        let r = try runSextant(["rerank", "--run", path("run.trec"), "--queries", path("queries.jsonl"), "--corpus", path("corpus.jsonl"),
                                "--reranker", Self.fixtures.appendingPathComponent("tiny-xlmr-cross").path, "--run-out", path("x.trec")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("documents scored by tiny-xlmr-cross"), "\(r.stdout)")
        let lists = runLists(try String(contentsOfFile: path("x.trec"), encoding: .utf8))
        #expect(Set(lists["q1"] ?? []) == ["d1", "d2", "d5"] && lists["q3"] == ["d1"] && lists["q2"]?.last == "gone")
    }

    @Test func searchWithARerankStage() throws {
        let dir = try rerankFixture()
        let index = temporaryFolder("sextant-cross-index")
        let built = try runSextant(["index", dir.appendingPathComponent("corpus.jsonl").path, "--index", index.path, "--quiet", "--chunk-tokens", "0"])
        #expect(built.status == 0, "\(built.stderr)")
        let reranker = Self.fixtures.appendingPathComponent("tiny-bert-cross").path
        let r = try runSextant(["search", "lift when landing", "--index", index.path, "--rerank", reranker, "--rerank-depth", "5", "-k", "3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let hits = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["hits"] as? [[String: Any]] ?? []
        #expect(hits.count == 3)
        #expect(hits.allSatisfy { $0["retrieval_score"] is Double && $0["snippet"] is String })
        let scores = hits.compactMap { $0["score"] as? Double }
        #expect(scores == scores.sorted(by: >) && scores.allSatisfy { (0...1).contains($0) })
        #expect(hits.map { $0["rank"] as? Int } == [1, 2, 3])
    }

    @Test func aTaskCanNameADefaultReranker() throws {
        let dir = try rerankFixture()
        let index = temporaryFolder("sextant-cross-task")
        let built = try runSextant(["index", dir.appendingPathComponent("corpus.jsonl").path, "--index", index.path, "--quiet", "--chunk-tokens", "0"])
        #expect(built.status == 0, "\(built.stderr)")
        let reranker = Self.fixtures.appendingPathComponent("tiny-bert-cross").path
        let saved = try runSextant(["task", "add", "aero", "--index", index.path, "--instruct", "Find aeronautics passages",
                                    "--rerank", reranker, "--rerank-depth", "4"])
        #expect(saved.status == 0 && saved.stdout.contains("reranked"), "\(saved.stderr)")
        let listed = try runSextant(["task", "list", "--index", index.path, "--json"])
        let tasks = (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
        #expect(tasks.first?["reranker"] as? String == reranker && tasks.first?["rerank_depth"] as? Int == 4)
        let r = try runSextant(["search", "lift when landing", "--index", index.path, "--task", "aero", "-k", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let hits = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["hits"] as? [[String: Any]] ?? []
        #expect(hits.count == 2 && hits.allSatisfy { $0["retrieval_score"] is Double })
        // A task's reranker must load as one; nothing is saved otherwise.
        let bad = try runSextant(["task", "add", "bad", "--index", index.path, "--instruct", "x",
                                  "--rerank", repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2").path])
        #expect(bad.status != 0 && bad.stderr.contains("the task's reranker") && bad.stderr.contains("embedding model"), "\(bad.stderr)")
        let after = try runSextant(["task", "list", "--index", index.path])
        #expect(!after.stdout.contains("bad:"))
    }

    @Test func badRerankerFoldersAreOneClearError() throws {
        let file = temporaryFolder("sextant-cross-bad").appendingPathComponent("c.jsonl")
        try Data("{\"id\": \"a\", \"text\": \"x\"}\n".utf8).write(to: file)
        let empty = temporaryFolder("sextant-cross-empty").appendingPathComponent("e.jsonl")
        try Data("".utf8).write(to: empty)
        let cases: [([String], String)] = [
            (["rerank", "--query", "q", "--candidates", file.path, "--reranker", repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2").path], "embedding model"),
            (["rerank", "--query", "q", "--candidates", file.path, "--reranker", Self.fixtures.appendingPathComponent("tiny-bert-cross-3").path], "3 labels"),
            (["rerank", "--query", "q", "--candidates", file.path, "--reranker", "/nonexistent/model"], "no such model folder"),
            (["rerank", "--query", "q", "--candidates", empty.path, "--reranker", Self.fixtures.appendingPathComponent("tiny-bert-cross").path], "no candidates"),
            (["rerank", "--query", "q", "--candidates", file.path, "--max-length", "64"], "--max-length is for --reranker"),
            (["search", "q", "--rerank-depth", "5"], "--rerank-depth needs --rerank"),
        ]
        for (args, says) in cases {
            let r = try runSextant(args)
            #expect(r.status != 0 && r.stdout.isEmpty, "\(args): \(r.stdout)")
            #expect(r.stderr.contains(says), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count <= 3, "\(args): \(r.stderr)")
        }
    }
}
