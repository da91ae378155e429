import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Sextant
@testable import SextantServer

/// A server started with a cross-encoder: `/v1/rerank` (Cohere/Jina shape) and TEI's `/rerank`
/// score as `CrossEncoder.predict` does; `/v1/search` reranks its hits.
@Suite struct RerankerRouteTests {
    static let folder = repoRoot.appendingPathComponent("fixtures/rerankers/tiny-bert-cross")

    struct Golden: Decodable {
        struct Pair: Decodable { let query: String; let passage: String; let ids: [Int32]; let logits: [Double]; let score: Double }
        let pairs: [Pair]
    }

    @Test func rerankRoutesUseTheCrossEncoder() async throws {
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: repoRoot.appendingPathComponent("fixtures/rerankers/tiny-bert-cross.golden.json")))
        let query = Dictionary(grouping: golden.pairs, by: \.query).max { $0.value.count < $1.value.count }!.key
        let pairs = golden.pairs.filter { $0.query == query && !$0.passage.isEmpty }
        let expected = pairs.indices.sorted { pairs[$0].score != pairs[$1].score ? pairs[$0].score > pairs[$1].score : $0 < $1 }
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        _ = try c.upsertTexts(sampleTexts.map { TextDocument(id: $0.0, text: $0.1) })
        let app = try makeApp(SextantService(collection: c, reranker: try CrossEncoder(folder: Self.folder, threads: 2)))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/rerank", method: .post,
                                     body: json(["query": query, "documents": pairs.map(\.passage), "return_documents": true])) { r in
                #expect(r.status == .ok, "\(text(r))")
                let body = parse(r)
                #expect(body["model"] as? String == "tiny-bert-cross")
                // usage counts the tokens the model read: each pair as the reference tokenized it.
                #expect((body["usage"] as? [String: Any])?["total_tokens"] as? Int == pairs.reduce(0) { $0 + $1.ids.count })
                let results = body["results"] as? [[String: Any]] ?? []
                #expect(results.compactMap { $0["index"] as? Int } == expected)
                for item in results {
                    let i = item["index"] as? Int ?? 0
                    #expect(abs((item["relevance_score"] as? Double ?? -1) - pairs[i].score) < 1e-4)
                    #expect((item["document"] as? [String: Any])?["text"] as? String == pairs[i].passage)
                }
            }
            // TEI: a JSON array, best first; raw_scores gives the logits.
            try await client.execute(uri: "/rerank", method: .post,
                                     body: json(["query": query, "texts": pairs.map(\.passage), "raw_scores": true])) { r in
                #expect(r.status == .ok, "\(text(r))")
                let items = (try? JSONSerialization.jsonObject(with: Data(r.body.readableBytesView))) as? [[String: Any]] ?? []
                #expect(items.compactMap { $0["index"] as? Int } == expected)
                for item in items {
                    let i = item["index"] as? Int ?? 0
                    #expect(abs((item["score"] as? Double ?? -99) - pairs[i].logits[0]) < 1e-4)
                    #expect(item["text"] == nil)
                }
            }
            // Search: reranked by default, with the first stage's score kept.
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "lift for landing", "k": 2, "rerank_depth": 4])) { r in
                #expect(r.status == .ok, "\(text(r))")
                let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                #expect(hits.count == 2 && hits.allSatisfy { $0["retrieval_score"] is Double })
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "lift for landing", "k": 2, "rerank": false])) { r in
                let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                #expect(r.status == .ok && hits.count == 2 && hits.allSatisfy { $0["retrieval_score"] == nil })
            }
            // Bad input: one clear 400 each.
            for (bad, says) in [(["query": "q", "texts": [] as [String]] as [String: Any], "texts"), (["query": "", "texts": ["a"]], "query")] {
                try await client.execute(uri: "/rerank", method: .post, body: json(bad)) { r in
                    #expect(r.status == .badRequest && text(r).contains(says), "\(text(r))")
                }
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "q", "rerank_depth": 0])) { r in
                #expect(r.status == .badRequest && text(r).contains("rerank_depth"))
            }
        }
    }

    @Test func aTaskWithARerankerReranksItsSearches() async throws {
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        _ = try c.upsertTexts(sampleTexts.map { TextDocument(id: $0.0, text: $0.1) })
        try c.saveTask(name: "aero", instruct: "Find aeronautics passages", examples: [], reranker: Self.folder.path, rerankDepth: 3)
        try c.saveTask(name: "plain", instruct: "Find passages", examples: [])
        let app = try makeApp(SextantService(collection: c))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "lift", "k": 2, "task": "aero"])) { r in
                #expect(r.status == .ok, "\(text(r))")
                let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                #expect(hits.count == 2 && hits.allSatisfy { $0["retrieval_score"] is Double })
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "lift", "k": 2, "task": "plain", "rerank": true])) { r in
                #expect(r.status == .badRequest && text(r).contains("no reranker"), "\(text(r))")
            }
        }
    }

    @Test func withoutARerankerTEIRerankIsRefusedAndSearchCannotAskForOne() async throws {
        let app = try makeApp()
        try await app.test(.router) { client in
            try await client.execute(uri: "/rerank", method: .post, body: json(["query": "q", "texts": ["a"]])) { r in
                #expect(r.status == .badRequest && text(r).contains("--reranker"))
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "bread", "rerank": true])) { r in
                #expect(r.status == .badRequest && text(r).contains("no reranker"))
            }
        }
    }
}
