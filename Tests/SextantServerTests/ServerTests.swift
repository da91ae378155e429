import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import Sextant
@testable import SextantServer
import Store

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let defaultModel = repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2")

func newIndexDirectory() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("sextant-server-\(UUID().uuidString)")
}

let sampleTexts = [
    ("bread", "Knead the dough, let it rise for an hour, then bake it in a hot oven."),
    ("engines", "Jet engines produce thrust by accelerating air through a nozzle."),
    ("wings", "A swept wing delays the drag rise near the speed of sound. Flaps increase lift at low speed for landing."),
    ("soup", "Simmer vegetables in stock and season with salt."),
]

/// One collection with the sample documents, shared by the read-only tests.
let sharedService: SextantService = {
    let c = try! Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
    _ = try! c.upsertTexts(sampleTexts.map { TextDocument(id: $0.0, text: $0.1) })
    return SextantService(collection: c)
}()

func makeApp(_ service: SextantService = sharedService, apiKey: String? = nil, limits: ServerLimits = ServerLimits())
    throws -> some ApplicationProtocol {
    var config = ServerConfiguration(host: "127.0.0.1", port: 0, apiKey: apiKey)
    config.limits = limits
    return try buildApplication(service: service, configuration: config)
}

func json(_ object: Any) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

func parse(_ response: TestResponse) -> [String: Any] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any] else {
        return [:]
    }
    return object
}

/// The error body's code, if the body is `{"error": {"code", "message"}}` with a non-empty message.
func errorCode(_ response: TestResponse) -> String? {
    guard let error = parse(response)["error"] as? [String: Any], let code = error["code"] as? String,
          let message = error["message"] as? String, !message.isEmpty else { return nil }
    return code
}

func text(_ response: TestResponse) -> String {
    String(decoding: response.body.readableBytesView, as: UTF8.self)
}

func floats(_ any: Any?) -> [Float] { ((any as? [Any]) ?? []).map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) } }

func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity
}

@Suite(.serialized) struct ServerTests {
    @Test func configurationRefusesOpenHostWithoutKey() throws {
        #expect(throws: SextantError.self) { try ServerConfiguration(host: "0.0.0.0", port: 8080).validate() }
        #expect(throws: SextantError.self) { try ServerConfiguration(host: "192.168.1.4", port: 8080).validate() }
        try ServerConfiguration(host: "0.0.0.0", port: 8080, apiKey: "k").validate()
        try ServerConfiguration(host: "0.0.0.0", port: 8080, insecure: true).validate()
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] { try ServerConfiguration(host: host).validate() }
        // An IPv6 address may be given in URL brackets: it binds without them and prints with them.
        let v6 = ServerConfiguration(host: "[::1]")
        #expect(v6.host == "::1" && v6.urlHost == "[::1]")
        #expect(ServerConfiguration(host: "127.0.0.1").urlHost == "127.0.0.1")
        #expect(throws: SextantError.self) { try ServerConfiguration(host: "127.0.0.1", apiKey: "").validate() }
        #expect(!ServerConfiguration.isLoopback("127.0.0.1.evil.com"))
    }

    @Test func healthAndAPIKey() async throws {
        let app = try makeApp(apiKey: "s3cret")
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { r in
                #expect(r.status == .ok)
                #expect(parse(r)["status"] as? String == "ok")
            }
            let body = json(["input": "hello"])
            try await client.execute(uri: "/v1/embeddings", method: .post, body: body) { r in
                #expect(r.status == .unauthorized)
                #expect(errorCode(r) == "unauthorized")
            }
            try await client.execute(uri: "/v1/embeddings", method: .post, headers: [.authorization: "Bearer wrong"], body: body) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/collections/info", method: .get, headers: [.authorization: "s3cret"]) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/embeddings", method: .post, headers: [.authorization: "Bearer s3cret"], body: body) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/openapi.json", method: .get, headers: [.authorization: "Bearer s3cret"]) { r in
                #expect(r.status == .ok)
                #expect((parse(r)["paths"] as? [String: Any])?.keys.contains("/v1/rerank") == true)
                #expect((parse(r)["paths"] as? [String: Any])?.keys.contains("/rerank") == true)
                let item = (parse(r)["paths"] as? [String: Any])?["/v1/documents/{id}"] as? [String: Any]
                #expect(Set(item?.keys.map { $0 } ?? []) == ["get", "patch", "delete"])
            }
        }
    }

    @Test func embeddingsMatchTheLibrary() async throws {
        let app = try makeApp()
        let embedder = sharedService.embedder
        let texts = ["a wing in a propeller slipstream", "bread dough rises"]
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/embeddings", method: .post, body: json(["model": "anything", "input": texts])) { r in
                #expect(r.status == .ok)
                let body = parse(r)
                #expect(body["object"] as? String == "list")
                #expect(body["model"] as? String == "all-MiniLM-L6-v2")
                let data = body["data"] as? [[String: Any]] ?? []
                #expect(data.count == 2)
                let expected = embedder.embed(texts, kind: .passage)
                for (i, item) in data.enumerated() {
                    #expect(item["object"] as? String == "embedding")
                    #expect(item["index"] as? Int == i)
                    #expect(maxDifference(floats(item["embedding"]), expected[i]) < 1e-5)
                }
                let usage = body["usage"] as? [String: Int] ?? [:]
                #expect((usage["prompt_tokens"] ?? 0) > 4 && usage["prompt_tokens"] == usage["total_tokens"])
            }
            // The query side with an instruction.
            let instruct = "Given a question, retrieve passages that answer it"
            try await client.execute(uri: "/v1/embeddings", method: .post,
                                     body: json(["input": "what is lift", "input_type": "query", "instruction": instruct])) { r in
                let v = floats((parse(r)["data"] as? [[String: Any]])?.first?["embedding"])
                let expected = embedder.embed(["what is lift"], kind: .query(instruct: instruct))[0]
                #expect(maxDifference(v, expected) < 1e-5)
            }
            // base64: little-endian f32; dimensions: truncated and renormalized.
            try await client.execute(uri: "/v1/embeddings", method: .post,
                                     body: json(["input": texts[0], "encoding_format": "base64", "dimensions": 64])) { r in
                #expect(r.status == .ok)
                let b64 = (parse(r)["data"] as? [[String: Any]])?.first?["embedding"] as? String ?? ""
                let bytes = [UInt8](Data(base64Encoded: b64) ?? Data())
                #expect(bytes.count == 64 * 4)
                let v = (0..<bytes.count / 4).map { i in
                    Float(bitPattern: UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24)
                }
                let full = embedder.embed([texts[0]])[0]
                let norm = full.prefix(64).reduce(0) { $0 + $1 * $1 }.squareRoot()
                #expect(maxDifference(v, full.prefix(64).map { $0 / norm }) < 1e-5)
            }
            try await client.execute(uri: "/v1/embeddings", method: .post, body: json(["input": "x", "dimensions": 385])) { r in
                #expect(r.status == .badRequest)
                #expect(errorCode(r) == "invalid_request")
            }
        }
    }

    @Test func badInputGetsAJSONError() async throws {
        var limits = ServerLimits()
        limits.maxBodyBytes = 64 * 1024
        limits.maxTextCharacters = 5000
        let app = try makeApp(limits: limits)
        let cases: [(String, String, ByteBuffer?, Int)] = [
            ("/v1/embeddings", "malformed", ByteBuffer(string: "{\"input\": [\"a\""), 400),
            ("/v1/embeddings", "no body", nil, 400),
            ("/v1/embeddings", "not an object", ByteBuffer(string: "[1, 2]"), 400),
            ("/v1/embeddings", "number input", json(["input": 5]), 400),
            ("/v1/embeddings", "mixed array", json(["input": ["a", 3]]), 400),
            ("/v1/embeddings", "missing input", json(["model": "m"]), 400),
            ("/v1/embeddings", "empty array", json(["input": [String]()]), 400),
            ("/v1/embeddings", "empty string", json(["input": ["ok", "  "]]), 400),
            ("/v1/embeddings", "too many", json(["input": Array(repeating: "a", count: 257)]), 413),
            ("/v1/embeddings", "text too long", json(["input": String(repeating: "é", count: 5001)]), 413),
            ("/v1/embeddings", "huge body", json(["input": String(repeating: "a", count: 70_000)]), 413),
            ("/v1/embeddings", "bad format", json(["input": "a", "encoding_format": "int8"]), 400),
            ("/v1/embeddings", "bad input_type", json(["input": "a", "input_type": "image"]), 400),
            ("/v1/embeddings", "dimensions 0", json(["input": "a", "dimensions": 0]), 400),
            ("/v1/embeddings", "dimensions string", json(["input": "a", "dimensions": "64"]), 400),
            ("/v1/rerank", "no documents", json(["query": "q", "documents": [String]()]), 400),
            ("/v1/rerank", "bad document", json(["query": "q", "documents": [["title": "t"]]]), 400),
            ("/v1/rerank", "top_n 0", json(["query": "q", "documents": ["a"], "top_n": 0]), 400),
            ("/v1/rerank", "empty query", json(["query": "", "documents": ["a"]]), 400),
            ("/v1/search", "k 0", json(["query": "q", "k": 0]), 400),
            ("/v1/search", "k 2.5", ByteBuffer(string: "{\"query\": \"q\", \"k\": 2.5}"), 400),
            ("/v1/search", "k 1e40", ByteBuffer(string: "{\"query\": \"q\", \"k\": 1e40}"), 400),
            ("/v1/embeddings", "deep nesting", ByteBuffer(string: "{\"input\": " + String(repeating: "[", count: 30_000) + String(repeating: "]", count: 30_000) + "}"), 400),
            ("/v1/search", "k huge", json(["query": "q", "k": 1_000_000]), 400),
            ("/v1/search", "bad mode", json(["query": "q", "mode": "fuzzy"]), 400),
            ("/v1/search", "unknown task", json(["query": "q", "task": "nope"]), 404),
            ("/v1/search", "bad examples", json(["query": "q", "examples": ["x"]]), 400),
            ("/v1/documents", "no id", json(["documents": [["text": "t"]]]), 400),
            ("/v1/documents", "empty id", json(["documents": [["id": "", "text": "t"]]]), 400),
            ("/v1/documents", "empty text", json(["documents": [["id": "a", "text": ""]]]), 400),
            ("/v1/documents", "duplicate ids", json(["documents": [["id": "a", "text": "t"], ["id": "a", "text": "u"]]]), 400),
            ("/v1/documents", "too many", json(["documents": (0..<257).map { ["id": "d\($0)", "text": "t"] }]), 413),
            ("/v1/nothing", "unknown route", json([:]), 404),
        ]
        try await app.test(.router) { client in
            for (uri, name, body, status) in cases {
                try await client.execute(uri: uri, method: .post, body: body) { r in
                    #expect(Int(r.status.code) == status, "\(name): \(r.status) \(text(r))")
                    #expect(errorCode(r) != nil, "\(name): \(text(r))")
                }
            }
            try await client.execute(uri: "/v1/documents/unknown-id", method: .delete) { r in
                #expect(r.status == .notFound)
                #expect(errorCode(r) == "not_found")
            }
        }
    }

    @Test func rerankSortsByCosine() async throws {
        let app = try makeApp()
        let documents: [Any] = ["Jet engines produce thrust.", ["text": "Knead the dough and bake the bread in a hot oven."],
                                "Simmer vegetables in stock."]
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/rerank", method: .post,
                                     body: json(["query": "how do I bake bread", "documents": documents, "return_documents": true])) { r in
                #expect(r.status == .ok)
                let results = parse(r)["results"] as? [[String: Any]] ?? []
                #expect(results.count == 3)
                #expect(results.first?["index"] as? Int == 1)
                #expect((results.first?["document"] as? [String: Any])?["text"] as? String == "Knead the dough and bake the bread in a hot oven.")
                let scores = results.compactMap { ($0["relevance_score"] as? NSNumber)?.doubleValue }
                #expect(scores == scores.sorted(by: >))
                let e = sharedService.embedder
                let q = e.embed(["how do I bake bread"], kind: .query())[0]
                let d = e.embed(["Knead the dough and bake the bread in a hot oven."])[0]
                #expect(abs(scores[0] - cosineSimilarity(q, d)) < 1e-5)
                #expect(((parse(r)["usage"] as? [String: Int])?["total_tokens"] ?? 0) > 0)
            }
            try await client.execute(uri: "/v1/rerank", method: .post,
                                     body: json(["query": "thrust", "documents": documents, "top_n": 2])) { r in
                let results = parse(r)["results"] as? [[String: Any]] ?? []
                #expect(results.count == 2 && results[0]["index"] as? Int == 0 && results[0]["document"] == nil)
            }
        }
    }

    @Test func searchAnswersLikeTheCLI() async throws {
        let app = try makeApp()
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/search", method: .post,
                                     body: json(["query": "how do you bake bread", "k": 2, "mode": "dense"])) { r in
                #expect(r.status == .ok)
                let body = parse(r)
                #expect(Set(body.keys) == ["query", "mode", "k", "hits"])
                #expect(body["mode"] as? String == "dense" && body["k"] as? Int == 2)
                let hits = body["hits"] as? [[String: Any]] ?? []
                #expect(hits.first?["path"] as? String == "doc:bread")
                #expect(Set(hits.first?.keys.map { $0 } ?? []) == ["rank", "score", "path", "chunk_id", "byte_start", "byte_end",
                                                                     "line_start", "line_end", "heading_path", "snippet", "metadata"])
                let expected = try sharedService.collection.search(SearchRequest(query: "how do you bake bread", k: 2, mode: .dense))
                let decoded = try JSONDecoder().decode([SearchHit].self, from: JSONSerialization.data(withJSONObject: hits))
                #expect(decoded.map(\.chunkId) == expected.map(\.chunkId))
            }
            // text: "full" carries the chunk instead of a snippet, "none" neither; anything else is a 400.
            for (mode, key) in [("full", "text"), ("none", "")] {
                try await client.execute(uri: "/v1/search", method: .post,
                                         body: json(["query": "how do you bake bread", "k": 2, "mode": "dense", "text": mode])) { r in
                    let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                    #expect(hits.count == 2 && hits.allSatisfy { $0["snippet"] == nil && ($0["text"] != nil) == (key == "text") }, "\(mode)")
                }
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "bread", "text": "all"])) { r in
                #expect(r.status == .badRequest && errorCode(r) != nil)
            }
            try await client.execute(uri: "/v1/search", method: .post,
                                     body: json(["query": "thrust", "filter": "doc:eng*",
                                                 "instruction": "Given a question, retrieve passages that answer it"])) { r in
                let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                #expect(parse(r)["mode"] as? String == "hybrid")
                #expect(!hits.isEmpty && hits.allSatisfy { $0["path"] as? String == "doc:engines" })
            }
            try await client.execute(uri: "/v1/collections/info", method: .get) { r in
                #expect(r.status == .ok)
                #expect(parse(r)["documents"] as? Int == 4)
            }
        }
    }

    /// Found while trying the server: the Bearer scheme is case-insensitive, keys with spaces are
    /// refused at start, texts over the limit get 413, NUL bytes 400 (never a stored prefix),
    /// ids that differ only in Unicode normalization are two documents, metadata is stored.
    @Test func edgeCasesOfKeysTextsAndIds() async throws {
        #expect(throws: SextantError.self) { try ServerConfiguration(host: "127.0.0.1", apiKey: " s3cret ").validate() }
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        let app = try makeApp(SextantService(collection: c), apiKey: "s3cret")
        try await app.test(.router) { client in
            for header in ["bearer s3cret", "BEARER s3cret", "Bearer  s3cret"] {
                try await client.execute(uri: "/v1/collections/info", method: .get, headers: [.authorization: header]) { r in
                    #expect(r.status == .ok, "\(header)")
                }
            }
            let auth: HTTPFields = [.authorization: "Bearer s3cret"]
            let long = String(repeating: "a", count: 100_001)
            try await client.execute(uri: "/v1/documents", method: .post, headers: auth,
                                     body: json(["documents": [["id": "long", "text": long]]])) { r in
                #expect(r.status == .contentTooLarge)
            }
            try await client.execute(uri: "/v1/documents", method: .post, headers: auth,
                                     body: json(["documents": [["id": "nul", "text": "before\u{0}after the NUL"]]])) { r in
                #expect(r.status == .badRequest)
                #expect(text(r).contains("NUL"))
            }
            let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
            for (id, body) in [(composed, "Espresso and croissants."), (decomposed, "Tea and scones.")] {
                try await client.execute(uri: "/v1/documents", method: .post, headers: auth,
                                         body: json(["documents": [["id": id, "text": body, "metadata": ["kind": id.utf8.elementsEqual(composed.utf8) ? "nfc" : "nfd"]]]])) { r in
                    #expect(r.status == .ok)
                    #expect((parse(r)["documents"] as? [[String: Any]])?.first?["created"] as? Bool == true, "\(id.unicodeScalars.count) scalars")
                }
            }
            #expect(try c.info().documents == 2)
            #expect(try c.documentMetadata(id: composed) == #"{"kind":"nfc"}"#)
            #expect(try c.documentMetadata(id: decomposed) == #"{"kind":"nfd"}"#)
            try await client.execute(uri: "/v1/documents/\(decomposed.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)",
                                     method: .delete, headers: auth) { r in
                #expect(r.status == .ok)
            }
            #expect(try c.documentMetadata(id: composed) != nil)
            #expect(try c.documentMetadata(id: decomposed) == nil)
            #expect(try c.index.count == c.store.counts().chunks)
        }
    }

    @Test func metadataFiltersListingAndUpdates() async throws {
        let dir = newIndexDirectory()
        let c = try Collection(directory: dir, defaultModel: defaultModel, warn: { _ in })
        let app = try makeApp(SextantService(collection: c))
        @Sendable func q(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
        try await app.test(.router) { client in
            let docs: [[String: Any]] = [
                ["id": "p", "text": "Propellers convert shaft power into thrust.", "metadata": ["team": "aero", "year": 1950, "tags": ["old", "props"]]],
                ["id": "j", "text": "Jet engines produce thrust by accelerating air through a nozzle.", "metadata": ["team": "aero", "year": 1990, "when": "1990-06-01"]],
                ["id": "s", "text": "Simmer vegetables in stock and season with salt.", "metadata": ["team": "food"]],
            ]
            try await client.execute(uri: "/v1/documents", method: .post, body: json(["documents": docs])) { r in #expect(r.status == .ok) }
            // A big integer goes in as JSON text, so it is not rounded on the way.
            let big = ByteBuffer(string: #"{"documents": [{"id": "b", "text": "Bread rises slowly.", "metadata": {"n": 9223372036854775807}}]}"#)
            try await client.execute(uri: "/v1/documents", method: .post, body: big) { r in #expect(r.status == .ok) }

            try await client.execute(uri: "/v1/search", method: .post,
                                     body: json(["query": "thrust", "mode": "dense", "where": ["year": ["$gte": 1960]]])) { r in
                let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                #expect(hits.map { $0["path"] as? String } == ["doc:j"])
                #expect((hits.first?["metadata"] as? [String: Any])?["when"] as? String == "1990-06-01")
            }
            try await client.execute(uri: "/v1/search", method: .post,
                                     body: json(["query": "thrust", "where": ["$or": [["tags": ["$contains": "props"]], ["team": "food"]]], "metadata": false])) { r in
                let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                #expect(Set(hits.compactMap { $0["path"] as? String }) == ["doc:p", "doc:s"] && hits.allSatisfy { $0["metadata"] == nil })
            }
            // exact: brute force gives the same filtered hits, in the same order, with the same scores.
            var walked: [[String: Any]] = []
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "thrust", "mode": "dense", "where": ["team": "aero"]])) { r in
                walked = parse(r)["hits"] as? [[String: Any]] ?? []
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "thrust", "mode": "dense", "where": ["team": "aero"], "exact": true])) { r in
                let hits = parse(r)["hits"] as? [[String: Any]] ?? []
                #expect(hits.count == 2 && hits.map { $0["path"] as? String } == walked.map { $0["path"] as? String })
                #expect(zip(hits, walked).allSatisfy { abs(($0["score"] as? Double ?? 9) - ($1["score"] as? Double ?? -9)) < 1e-6 })
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "thrust", "exact": "yes"])) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "bread", "where": ["n": 9223372036854775807 as Int64]])) { r in
                #expect(text(r).contains("9223372036854775807") && (parse(r)["hits"] as? [Any])?.count == 1)
            }
            // Bad filters: 400 naming the field and operator; nothing else happens.
            for (bad, says) in [(["year": ["$regex": "x"]] as [String: Any], "field 'year': unknown operator '$regex'"),
                                (["year": ["$gt": "later"]], "field 'year', operator '$gt'"),
                                (["$and": "x"], "$and needs a non-empty array")] {
                try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "thrust", "where": bad])) { r in
                    #expect(r.status == .badRequest && errorCode(r) == "invalid_request" && text(r).contains(says), "\(text(r))")
                }
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "thrust", "where": [1]])) { r in
                #expect(r.status == .badRequest && text(r).contains("must be a JSON object"))
            }

            // One document, a page, a filtered page.
            try await client.execute(uri: "/v1/documents/p", method: .get) { r in
                let m = parse(r)["metadata"] as? [String: Any]
                #expect(r.status == .ok && parse(r)["id"] as? String == "p" && m?["year"] as? Int == 1950 && m?["path"] as? String == "doc:p")
            }
            try await client.execute(uri: "/v1/documents/nope", method: .get) { r in #expect(r.status == .notFound && errorCode(r) == "not_found") }
            var next: Int64 = 0
            try await client.execute(uri: "/v1/documents?limit=3", method: .get) { r in
                #expect((parse(r)["documents"] as? [Any])?.count == 3)
                next = (parse(r)["next_after"] as? NSNumber)?.int64Value ?? -1
            }
            try await client.execute(uri: "/v1/documents?limit=3&after=\(next)", method: .get) { r in
                #expect((parse(r)["documents"] as? [[String: Any]])?.map { $0["id"] as? String } == ["b"])
                #expect(parse(r)["next_after"] is NSNull)
            }
            try await client.execute(uri: "/v1/documents?where=" + q(#"{"team": "aero"}"#), method: .get) { r in
                #expect((parse(r)["documents"] as? [[String: Any]])?.map { $0["id"] as? String } == ["p", "j"])
            }
            for bad in ["limit=0", "limit=x", "after=-1", "where=" + q("{bad"), "where=" + q(#"{"a": {"$near": 1}}"#), "path="] {
                try await client.execute(uri: "/v1/documents?" + bad, method: .get) { r in #expect(r.status == .badRequest, "\(bad)") }
            }

            // Fields set without embedding anything.
            let embedded = c.embedder.textsEmbedded
            try await client.execute(uri: "/v1/documents/s", method: .patch, body: json(["metadata": ["status": "done", "team": NSNull()]])) { r in
                let m = parse(r)["metadata"] as? [String: Any]
                #expect(r.status == .ok && m?["status"] as? String == "done" && m?["team"] == nil)
            }
            #expect(c.embedder.textsEmbedded == embedded)
            try await client.execute(uri: "/v1/documents?path=doc:s", method: .patch, body: json(["metadata": ["rank": 2]])) { r in
                #expect(r.status == .ok && (parse(r)["metadata"] as? [String: Any])?["rank"] as? Int == 2)
            }
            for (uri, body, status) in [("/v1/documents/s", ["metadata": ["path": "x"]] as [String: Any], HTTPResponse.Status.badRequest),
                                        ("/v1/documents/s", ["metadata": ["o": ["a": 1]]], .badRequest),
                                        ("/v1/documents/s", ["metadata": [:] as [String: Any]], .badRequest),
                                        ("/v1/documents/s", ["metadata": "x"], .badRequest),
                                        ("/v1/documents/nope", ["metadata": ["a": 1]], .notFound),
                                        ("/v1/documents", ["metadata": ["a": 1]], .badRequest)] {
                try await client.execute(uri: uri, method: .patch, body: json(body)) { r in #expect(r.status == status, "\(uri) \(body)") }
            }
        }
        // A restarted server sees the same fields.
        let restarted = try makeApp(SextantService(collection: try Collection(directory: dir, defaultModel: defaultModel, warn: { _ in })))
        try await restarted.test(.router) { client in
            try await client.execute(uri: "/v1/documents/s", method: .get) { r in
                #expect((parse(r)["metadata"] as? [String: Any])?["status"] as? String == "done")
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "salt", "where": ["status": "done"]])) { r in
                #expect((parse(r)["hits"] as? [[String: Any]])?.map { $0["path"] as? String } == ["doc:s"])
            }
        }
    }

    @Test func documentsAddReplaceDelete() async throws {
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        let service = SextantService(collection: c)
        let app = try makeApp(service)
        try await app.test(.router) { client in
            let docs: [[String: Any]] = [
                ["id": "a/1", "text": "Propellers convert shaft power into thrust.", "metadata": ["title": "Props", "year": 1950]],
                ["id": "b", "text": "Sourdough needs a starter and a slow rise."],
            ]
            try await client.execute(uri: "/v1/documents", method: .post, body: json(["documents": docs])) { r in
                #expect(r.status == .ok)
                let results = parse(r)["documents"] as? [[String: Any]] ?? []
                #expect(results.map { $0["path"] as? String } == ["doc:a/1", "doc:b"])
                #expect(results.allSatisfy { $0["created"] as? Bool == true })
                #expect(parse(r)["upserted"] as? Int == 2)
            }
            #expect(try c.store.documents()["doc:a/1"]?.title == "Props")
            // The same text again: nothing to embed; a new text: replaced.
            try await client.execute(uri: "/v1/documents", method: .post, body: json(["documents": [docs[1]]])) { r in
                #expect((parse(r)["documents"] as? [[String: Any]])?.first?["changed"] as? Bool == false)
            }
            try await client.execute(uri: "/v1/documents", method: .post,
                                     body: json(["documents": [["id": "b", "text": "Rye bread is dense and sour."]]])) { r in
                let first = (parse(r)["documents"] as? [[String: Any]])?.first
                #expect(first?["changed"] as? Bool == true && first?["created"] as? Bool == false)
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "sourdough starter", "mode": "lexical"])) { r in
                #expect((parse(r)["hits"] as? [Any])?.isEmpty == true)
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "rye bread", "k": 1])) { r in
                #expect((parse(r)["hits"] as? [[String: Any]])?.first?["path"] as? String == "doc:b")
            }
            try await client.execute(uri: "/v1/documents/a%2F1", method: .delete) { r in
                #expect(r.status == .ok)
                #expect(parse(r)["deleted"] as? Bool == true)
            }
            try await client.execute(uri: "/v1/documents/a%2F1", method: .delete) { r in
                #expect(r.status == .notFound)
            }
            try await client.execute(uri: "/v1/collections/info", method: .get) { r in
                #expect(parse(r)["documents"] as? Int == 1 && parse(r)["chunks"] as? Int == 1)
            }
        }
        #expect(try c.store.consistencyProblems(dimensions: 384).isEmpty)
        try c.index.checkInvariants()
        #expect(try c.index.count == 1)
    }

    @Test func searchesAreServedWhileDocumentsAreAdded() async throws {
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        _ = try c.upsertTexts(sampleTexts.map { TextDocument(id: $0.0, text: $0.1) })
        let service = SextantService(collection: c)
        let app = try makeApp(service)
        try await app.test(.router) { client in
            try await withThrowingTaskGroup(of: [Int].self) { group in
                group.addTask {
                    var statuses: [Int] = []
                    for batch in 0..<4 {
                        let docs = (0..<8).map { ["id": "w\(batch)-\($0)", "text": "Note \($0) of batch \(batch) about wind tunnels and gliders."] }
                        try await client.execute(uri: "/v1/documents", method: .post, body: json(["documents": docs])) { r in
                            statuses.append(Int(r.status.code))
                        }
                    }
                    return statuses
                }
                for reader in 0..<3 {
                    group.addTask {
                        var statuses: [Int] = []
                        for i in 0..<6 {
                            try await client.execute(uri: "/v1/search", method: .post,
                                                     body: json(["query": "gliders \(reader) \(i)", "k": 5])) { r in
                                statuses.append(Int(r.status.code))
                                if r.status == .ok { #expect((parse(r)["hits"] as? [Any])?.isEmpty == false) }
                            }
                        }
                        return statuses
                    }
                }
                for try await statuses in group { #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)") }
            }
        }
        #expect(try c.info().documents == 4 + 32)
        try c.index.checkInvariants()
    }

    @Test func concurrentEmbeddingRequestsAreBatched() async throws {
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        let service = SextantService(collection: c)
        let app = try makeApp(service)
        let requests = 24
        try await app.test(.router) { client in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<requests {
                    group.addTask {
                        let text = "request number \(i) about the lift of a wing"
                        return try await client.execute(uri: "/v1/embeddings", method: .post, body: json(["input": [text]])) { r in
                            let v = floats((parse(r)["data"] as? [[String: Any]])?.first?["embedding"])
                            return maxDifference(v, service.embedder.embed([text])[0]) < 1e-4
                        }
                    }
                }
                for try await ok in group { #expect(ok) }
            }
        }
        let counts = service.batcher.counts
        #expect(counts.jobs >= requests)
        #expect(counts.batches < counts.jobs, "\(counts)")
    }

    @Test func concurrentSearchQueriesAreBatched() async throws {
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        _ = try c.upsertTexts(sampleTexts.map { TextDocument(id: $0.0, text: $0.1) })
        let service = SextantService(collection: c)
        let app = try makeApp(service)
        let queries = (0..<24).map { ["bread in an oven", "jet thrust", "wing flaps and lift", "vegetable soup"][$0 % 4] + " \($0)" }
        try await app.test(.router) { client in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for q in queries {
                    group.addTask {
                        try await client.execute(uri: "/v1/search", method: .post, body: json(["query": q, "k": 4, "mode": "dense"])) { r in
                            let hits = (parse(r)["hits"] as? [[String: Any]] ?? []).compactMap { $0["chunk_id"] as? Int }
                            let expected = try c.search(SearchRequest(query: q, k: 4, mode: .dense)).map { Int($0.chunkId) }
                            return r.status == .ok && hits == expected
                        }
                    }
                }
                for try await ok in group { #expect(ok) }
            }
            // A lexical search embeds nothing; an unknown task is one clear 404.
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "oven", "mode": "lexical"])) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "oven", "task": "nope"])) { r in
                #expect(r.status == .notFound && errorCode(r) != nil)
            }
        }
        let counts = service.batcher.counts
        #expect(counts.jobs == queries.count, "\(counts)")
        #expect(counts.batches < counts.jobs, "\(counts)")
    }

    /// Clients that hang up mid-request: one after sending the whole body (the write finishes),
    /// one in the middle of the body (nothing is written). No half-written document either way.
    @Test func disconnectingClientsLeaveWholeDocuments() async throws {
        let c = try Collection(directory: newIndexDirectory(), defaultModel: defaultModel, warn: { _ in })
        let service = SextantService(collection: c)
        let app = try makeApp(service)
        let long = (0..<60).map { "Sentence \($0) about the boundary layer on a swept wing at high angles of attack." }.joined(separator: " ")
        try await app.test(.live) { client in
            let port = try #require(client.port)
            /// Sends the head and (part of) the body, then closes; with `readReply`, closes only
            /// the sending side and returns what the server answers.
            @discardableResult
            func sendAndHangUp(_ body: String, cutAt: Int? = nil, readReply: Bool = false) throws -> String {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                #expect(fd >= 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                #expect(connected == 0)
                let bytes = Array(body.utf8)
                let head = "POST /v1/documents HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(bytes.count)\r\n\r\n"
                let message = Array(head.utf8) + bytes.prefix(cutAt ?? bytes.count)
                #expect(message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == message.count)
                defer { close(fd) }
                guard readReply else { return "" }
                shutdown(fd, Int32(SHUT_WR))
                var reply = [UInt8](repeating: 0, count: 4096), total = 0
                while total < reply.count {
                    let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + total, $0.count - total, 0) }
                    if n <= 0 { break }
                    total += n
                }
                return String(decoding: reply.prefix(total), as: UTF8.self)
            }
            let whole = String(decoding: try JSONSerialization.data(withJSONObject: ["documents": [["id": "whole", "text": long]]]), as: UTF8.self)
            let cut = String(decoding: try JSONSerialization.data(withJSONObject: ["documents": [["id": "cut", "text": long]]]), as: UTF8.self)
            try sendAndHangUp(whole)
            try sendAndHangUp(cut, cutAt: cut.utf8.count / 2)
            // A client that stops sending mid-body is told so with a 400, not a server error (500).
            let reply = try sendAndHangUp(cut, cutAt: cut.utf8.count / 2, readReply: true)
            #expect(reply.hasPrefix("HTTP/1.1 400") && reply.contains("incomplete_request"), "\(reply)")
            // The first write runs to its end although nobody waits for the answer.
            var stored = false
            for _ in 0..<100 where !stored {
                try await Task.sleep(nanoseconds: 100_000_000)
                stored = try c.store.documents()["doc:whole"] != nil
            }
            #expect(stored)
            // A later request is served after it (writes are serialized).
            try await client.execute(uri: "/v1/collections/info", method: .get) { r in #expect(r.status == .ok) }
        }
        let documents = try c.store.documents()
        #expect(Set(documents.keys) == ["doc:whole"])
        let chunks = try c.store.chunkTexts(documentId: documents["doc:whole"]!.id)
        #expect(chunks.count > 1)
        #expect(try c.store.consistencyProblems(dimensions: 384).isEmpty)
        #expect(try c.index.count == chunks.count)
    }

    @Test func liveOverASocket() async throws {
        let app = try makeApp(apiKey: "live-key")
        try await app.test(.live) { client in
            try await client.execute(uri: "/health", method: .get) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/embeddings", method: .post, headers: [.authorization: "Bearer live-key"],
                                     body: json(["input": ["over a real socket"]])) { r in
                #expect(r.status == .ok)
                #expect(floats((parse(r)["data"] as? [[String: Any]])?.first?["embedding"]).count == 384)
            }
            try await client.execute(uri: "/v1/search", method: .post, body: json(["query": "bread"])) { r in
                #expect(r.status == .unauthorized && errorCode(r) == "unauthorized")
            }
        }
    }
}
