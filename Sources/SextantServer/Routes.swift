import Foundation
import Hummingbird
import Sextant

/// The handlers: decode and check the JSON, call the engine, encode the answer.
struct Routes: Sendable {
    let service: SextantService
    let limits: ServerLimits

    func register(on router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in jsonResponse(["status": "ok"]) }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: openAPIDocument)))
        }
        router.post("/v1/embeddings") { request, _ in try await embeddings(request) }
        router.post("/v1/rerank") { request, _ in try await rerank(request) }
        router.post("/rerank") { request, _ in try await teiRerank(request) }
        router.post("/v1/search") { request, _ in try await search(request) }
        router.post("/v1/documents") { request, _ in try await upsertDocuments(request) }
        router.delete("/v1/documents/:id") { _, context in try await deleteDocument(context) }
        router.get("/v1/documents") { request, _ in try await listDocuments(request) }
        router.patch("/v1/documents") { request, _ in try await patchDocument(request, id: nil) }
        router.get("/v1/documents/:id") { _, context in try await getDocument(try documentPath(context)) }
        router.patch("/v1/documents/:id") { request, context in try await patchDocument(request, id: try documentPath(context)) }
        router.get("/v1/collections/info") { _, _ in
            jsonResponse(try await service.read { try service.collection.info() })
        }
    }

    // MARK: Decoding and checks

    func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limits.maxBodyBytes {
            throw APIError(.contentTooLarge, "body_too_large", "the request body has \(length) bytes; the limit is \(limits.maxBodyBytes)")
        }
        var request = request
        let buffer = try await request.collectBody(upTo: limits.maxBodyBytes)
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("the body is empty: expected a JSON object") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
               (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])) != nil {
                // Valid JSON that Foundation's decoder still calls invalid: a number that does not fit its field.
                throw APIError.badRequest("the body is JSON but a value does not fit its field (e.g. a fraction or a too large number where an integer belongs)")
            }
            throw APIError.badRequest(APIError.describe(error))
        }
    }

    func checkText(_ text: String, _ name: String, limit: Int? = nil) throws {
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw APIError.badRequest("\(name) is empty") }
        let limit = limit ?? limits.maxTextCharacters
        let count = text.utf8.count > limit ? text.count : 0
        if count > limit {
            throw APIError(.contentTooLarge, "text_too_long", "\(name) has \(count) characters; the limit is \(limit)")
        }
    }

    func checkBatch(_ count: Int, _ name: String) throws {
        if count == 0 { throw APIError.badRequest("\(name) is empty") }
        if count > limits.maxBatch {
            throw APIError(.contentTooLarge, "too_many_inputs", "\(name) has \(count) items; the limit is \(limits.maxBatch) per request")
        }
    }

    /// The query side (with the instruction) when `input_type` says query or an instruction is given.
    func inputKind(inputType: String?, instruction: String?) throws -> InputKind {
        if let instruction { try checkText(instruction, "instruction") }
        switch inputType?.lowercased() {
        case nil:
            return instruction == nil ? .passage : .query(instruct: instruction)
        case "query", "search_query":
            return .query(instruct: instruction)
        case "passage", "document", "search_document":
            if instruction != nil { throw APIError.badRequest("an instruction applies to queries; input_type is '\(inputType!)'") }
            return .passage
        default:
            throw APIError.badRequest("input_type must be 'query' or 'passage' (or 'document')")
        }
    }

    // MARK: Handlers

    func embeddings(_ request: Request) async throws -> Response {
        let body = try await decodeBody(EmbeddingsRequest.self, request)
        let texts = body.input.values
        try checkBatch(texts.count, "input")
        for (i, t) in texts.enumerated() { try checkText(t, body.input.wasArray ? "input[\(i)]" : "input") }
        let base64: Bool
        switch body.encoding_format {
        case nil, "float": base64 = false
        case "base64": base64 = true
        default: throw APIError.badRequest("encoding_format must be 'float' or 'base64'")
        }
        let full = service.embedder.dimensions
        let dimensions = body.dimensions ?? full
        guard dimensions >= 1 else { throw APIError.badRequest("dimensions must be at least 1") }
        guard dimensions <= full else {
            throw APIError.badRequest("dimensions must be at most \(full) (the model's vectors have \(full))")
        }
        let kind = try inputKind(inputType: body.input_type, instruction: body.instruction)
        let result = await service.embed(texts, kind: kind)
        let items = result.vectors.enumerated().map { i, vector in
            let v = dimensions < full ? truncatedNormalized(vector, dimensions) : vector
            return EmbeddingsResponse.Item(index: i, embedding: base64 ? .base64(littleEndianBase64(v)) : .floats(v))
        }
        let tokens = result.tokens.reduce(0, +)
        return jsonResponse(EmbeddingsResponse(data: items, model: service.modelName,
                                               usage: Usage(prompt_tokens: tokens, total_tokens: tokens)))
    }

    func rerank(_ request: Request) async throws -> Response {
        let body = try await decodeBody(RerankRequest.self, request)
        try checkText(body.query, "query")
        try checkBatch(body.documents.count, "documents")
        for (i, d) in body.documents.enumerated() { try checkText(d.text, "documents[\(i)]") }
        if let n = body.top_n, n < 1 { throw APIError.badRequest("top_n must be at least 1") }
        if let reranker = service.reranker {
            let texts = body.documents.map(\.text)
            let (scores, tokens) = try await service.rerankScores(reranker, query: body.query, documents: texts, instruction: body.instruction)
            let top = orderByScore(scores).prefix(body.top_n ?? scores.count)
            let withText = body.return_documents ?? false
            let results = top.map {
                RerankResponse.Result(index: $0, relevance_score: scores[$0], document: withText ? .init(text: texts[$0]) : nil)
            }
            return jsonResponse(RerankResponse(results: results, model: reranker.folder.name,
                                               usage: Usage(prompt_tokens: tokens, total_tokens: tokens)))
        }
        let kind = try inputKind(inputType: "query", instruction: body.instruction)
        async let queryResult = service.embed([body.query], kind: kind)
        async let documentResult = service.embed(body.documents.map(\.text), kind: .passage)
        let (q, d) = await (queryResult, documentResult)
        let scores = d.vectors.map { cosineSimilarity(q.vectors[0], $0) }
        let top = orderByScore(scores).prefix(body.top_n ?? scores.count)
        let withText = body.return_documents ?? false
        let results = top.map {
            RerankResponse.Result(index: $0, relevance_score: scores[$0],
                                  document: withText ? .init(text: body.documents[$0].text) : nil)
        }
        let tokens = q.tokens.reduce(0, +) + d.tokens.reduce(0, +)
        return jsonResponse(RerankResponse(results: results, model: service.modelName,
                                           usage: Usage(prompt_tokens: tokens, total_tokens: tokens)))
    }

    /// Hugging Face TEI's `/rerank`: `{query, texts, raw_scores?, return_text?}` → `[{index, score, text?}]`,
    /// best first. Needs a server started with `--reranker`.
    func teiRerank(_ request: Request) async throws -> Response {
        guard let reranker = service.reranker else {
            throw APIError.badRequest("this server has no reranker: start it with --reranker DIR (or use /v1/rerank)")
        }
        let body = try await decodeBody(TEIRerankRequest.self, request)
        try checkText(body.query, "query")
        try checkBatch(body.texts.count, "texts")
        for (i, t) in body.texts.enumerated() { try checkText(t, "texts[\(i)]") }
        let raw = body.raw_scores ?? false
        let scores = try await service.read { () -> [Double] in
            raw ? reranker.logits(query: body.query, passages: body.texts) : reranker.scores(query: body.query, passages: body.texts)
        }
        let withText = body.return_text ?? false
        return jsonResponse(orderByScore(scores).map { TEIRerankItem(index: $0, score: scores[$0], text: withText ? body.texts[$0] : nil) })
    }

    func search(_ request: Request) async throws -> Response {
        let body = try await decodeBody(SearchBody.self, request)
        try checkText(body.query, "query")
        if let instruction = body.instruction { try checkText(instruction, "instruction") }
        let k = body.k ?? 10
        guard (1...limits.maxK).contains(k) else { throw APIError.badRequest("k must be in 1...\(limits.maxK)") }
        let modeName = body.mode ?? "hybrid"
        guard let mode = SearchMode(rawValue: modeName) else { throw APIError.badRequest("mode must be dense, lexical or hybrid") }
        let examples = body.examples ?? []
        if examples.count > 64 { throw APIError.badRequest("examples has \(examples.count) items; the limit is 64") }
        for (i, e) in examples.enumerated() {
            try checkText(e.query, "examples[\(i)].query")
            try checkText(e.response, "examples[\(i)].response")
        }
        if let filter = body.filter, filter.isEmpty { throw APIError.badRequest("filter is empty") }
        guard let text = HitText(rawValue: body.text ?? "snippet") else {
            throw APIError.badRequest("text must be snippet, full or none")
        }
        let filter = try body.where.map { try parseFilter($0, "where") }
        let searchRequest = SearchRequest(query: body.query, instruct: body.instruction, examples: examples, task: body.task,
                                          k: k, mode: mode, pathFilter: body.filter, filter: filter, text: text,
                                          metadata: body.metadata ?? true, exact: body.exact ?? false)
        if let d = body.rerank_depth, !(1...limits.maxK).contains(d) {
            throw APIError.badRequest("rerank_depth must be in 1...\(limits.maxK)")
        }
        // The server's reranker, else the one the task names (a saved task's default).
        var reranker = service.reranker.map { ($0, depth: nil as Int?) }
        if reranker == nil, body.rerank ?? true, let task = body.task {
            do { reranker = try await service.read { try service.reranker(forTask: task) } } catch let e as SextantError where e.code == .notFound {
                throw e
            } catch {
                throw APIError.badRequest("task '\(task)': its reranker cannot be loaded: \(error)")
            }
        }
        if body.rerank == true && reranker == nil {
            throw APIError.badRequest("this server has no reranker: start it with --reranker DIR (or save one in the task), or leave out rerank")
        }
        // One call into the engine: the query is micro-batched with concurrent ones there.
        let hits: [SearchHit]
        if let (scorer, taskDepth) = reranker, body.rerank ?? true {
            hits = try await service.collection.search(searchRequest, reranker: scorer, depth: max(k, body.rerank_depth ?? taskDepth ?? 50))
        } else {
            hits = try await service.collection.search(searchRequest)
        }
        return jsonResponse(SearchResponse(query: body.query, mode: modeName, k: k, hits: hits))
    }

    func upsertDocuments(_ request: Request) async throws -> Response {
        let body = try await decodeBody(DocumentsRequest.self, request)
        try checkBatch(body.documents.count, "documents")
        var documents: [TextDocument] = []
        for (i, d) in body.documents.enumerated() {
            do { try Collection.validateDocumentId(d.id) } catch let e as SextantError {
                throw APIError.badRequest("documents[\(i)].id: \(e.message)")
            }
            try checkText(d.text, "documents[\(i)].text")
            var title = ""
            if case let .string(t)? = d.metadata?["title"] { title = t }
            documents.append(TextDocument(id: d.id, text: d.text, title: title, metadataJSON: JSONValue.object(d.metadata ?? [:]).serialized))
        }
        let collection = service.collection, batch = documents
        let results = try await service.write { try collection.upsertTexts(batch) }
        return jsonResponse(DocumentsResponse(documents: results, upserted: results.filter(\.changed).count))
    }

    func deleteDocument(_ context: BasicRequestContext) async throws -> Response {
        let raw = context.parameters.get("id") ?? ""
        let id = raw.removingPercentEncoding ?? raw
        do { try Collection.validateDocumentId(id) } catch let e as SextantError { throw APIError.badRequest(e.message) }
        let collection = service.collection
        let deleted = try await service.write { try collection.removeDocument(id: id) }
        guard deleted else { throw APIError(.notFound, "not_found", "no document with id '\(id)'") }
        return jsonResponse(DeleteResponse(id: id, deleted: true))
    }
}

// MARK: Documents and metadata

extension Routes {
    /// A metadata filter from a request; a bad one is a 400 naming the field and operator.
    func parseFilter(_ value: JSONValue, _ name: String) throws -> MetadataFilter {
        do { return try MetadataFilter(value) } catch {
            throw APIError.badRequest("\(name): \(SextantError.lifted(error))")
        }
    }

    /// The stored path of the `doc:` document named in the URL.
    func documentPath(_ context: BasicRequestContext) throws -> String {
        let raw = context.parameters.get("id") ?? ""
        let id = raw.removingPercentEncoding ?? raw
        do { try Collection.validateDocumentId(id) } catch let e as SextantError { throw APIError.badRequest(e.message) }
        return Collection.documentPath(id: id)
    }

    func getDocument(_ path: String) async throws -> Response {
        let collection = service.collection
        guard let doc = try await service.read({ try collection.document(path: path) }) else {
            throw APIError(.notFound, "not_found", "no document \(path)")
        }
        return jsonResponse(DocumentOutput(doc))
    }

    /// `GET /v1/documents?limit=&after=&where=` (a page), or `?path=` (one document).
    func listDocuments(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        if let path = query["path"].map(String.init) {
            guard !path.isEmpty else { throw APIError.badRequest("path is empty") }
            return try await getDocument(path)
        }
        var limit = 100
        if let text = query["limit"] {
            guard let n = Int(String(text)), (1...1000).contains(n) else { throw APIError.badRequest("limit must be an integer in 1...1000") }
            limit = n
        }
        var after: Int64 = 0
        if let text = query["after"] {
            guard let n = Int64(String(text)), n >= 0 else { throw APIError.badRequest("after must be a non-negative integer (a listing's next_after)") }
            after = n
        }
        var filter: MetadataFilter? = nil
        if let text = query["where"].map(String.init) {
            let value: JSONValue
            do { value = try JSONValue.parse(text) } catch { throw APIError.badRequest("where is not valid JSON (\(error))") }
            filter = try parseFilter(value, "where")
        }
        let collection = service.collection, chosen = filter, start = after, count = limit
        let docs = try await service.read { try collection.documents(filter: chosen, after: start, limit: count) }
        return jsonResponse(DocumentListResponse(documents: docs.map(DocumentOutput.init),
                                                 next_after: docs.count == limit ? docs.last?.rowId : nil))
    }

    /// `PATCH /v1/documents/{id}` (or `?path=` for files) with `{"metadata": {...}}`: sets those
    /// fields (null removes one) without embedding anything again.
    func patchDocument(_ request: Request, id path: String?) async throws -> Response {
        var path = path
        if path == nil {
            guard let p = request.uri.queryParameters["path"].map(String.init), !p.isEmpty else {
                throw APIError.badRequest("name the document: PATCH /v1/documents/{id}, or /v1/documents?path=... for a file")
            }
            path = p
        }
        let body = try await decodeBody(PatchDocumentBody.self, request)
        guard !body.metadata.isEmpty else { throw APIError.badRequest("metadata is empty: give the fields to set") }
        let collection = service.collection, target = path!, fields = body.metadata
        let doc = try await service.write { try collection.setFields(path: target, fields) }
        return jsonResponse(DocumentOutput(doc))
    }
}

// MARK: Vector helpers

/// The first `n` components, scaled back to unit length (Matryoshka-style truncation).
func truncatedNormalized(_ v: [Float], _ n: Int) -> [Float] {
    var out = Array(v.prefix(n))
    let norm = out.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
    if norm > 0 { for i in out.indices { out[i] = Float(Double(out[i]) / norm) } }
    return out
}

/// The vector as little-endian f32 bytes in base64 (OpenAI's `encoding_format: "base64"`).
func littleEndianBase64(_ v: [Float]) -> String {
    var bytes = [UInt8]()
    bytes.reserveCapacity(v.count * 4)
    for f in v {
        let bits = f.bitPattern.littleEndian
        withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
    }
    return Data(bytes).base64EncodedString()
}
