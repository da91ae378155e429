import Foundation
import Sextant

// Request and response bodies. Unknown fields are ignored (clients of other APIs send extra ones).

/// A string or an array of strings (`input` of /v1/embeddings).
struct StringOrArray: Decodable {
    var values: [String]
    var wasArray: Bool

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let s = try? container.decode(String.self) {
            values = [s]
            wasArray = false
        } else if let a = try? container.decode([String].self) {
            values = a
            wasArray = true
        } else {
            throw DecodingError.typeMismatch([String].self, .init(codingPath: decoder.codingPath,
                                                                  debugDescription: "expected a string or an array of strings"))
        }
    }
}

struct EmbeddingsRequest: Decodable {
    var model: String?
    var input: StringOrArray
    var encoding_format: String?
    var dimensions: Int?
    var input_type: String?
    var instruction: String?
}

struct EmbeddingsResponse: Encodable {
    struct Item: Encodable {
        let object = "embedding"
        let index: Int
        let embedding: Embedding
    }
    enum Embedding: Encodable {
        case floats([Float])
        case base64(String)
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case let .floats(v): try c.encode(v)
            case let .base64(s): try c.encode(s)
            }
        }
    }
    let object = "list"
    let data: [Item]
    let model: String
    let usage: Usage
}

struct Usage: Encodable {
    let prompt_tokens: Int
    let total_tokens: Int
}

/// A rerank document: a string or `{"text": ...}`.
struct RerankDocument: Decodable {
    var text: String

    private enum Keys: String, CodingKey { case text }

    init(from decoder: Decoder) throws {
        if let s = try? decoder.singleValueContainer().decode(String.self) {
            text = s
            return
        }
        guard let c = try? decoder.container(keyedBy: Keys.self) else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath,
                                                                debugDescription: "expected a string or an object {\"text\": ...}"))
        }
        text = try c.decode(String.self, forKey: .text)
    }
}

struct RerankRequest: Decodable {
    var model: String?
    var query: String
    var documents: [RerankDocument]
    var top_n: Int?
    var return_documents: Bool?
    var instruction: String?
}

/// Hugging Face TEI's `POST /rerank` request.
struct TEIRerankRequest: Decodable {
    var query: String
    var texts: [String]
    var raw_scores: Bool?
    var return_text: Bool?
    var truncate: Bool?
}

/// One item of TEI's `/rerank` response (a JSON array of them, best first).
struct TEIRerankItem: Encodable {
    let index: Int
    let score: Double
    let text: String?
}

struct RerankResponse: Encodable {
    struct Result: Encodable {
        let index: Int
        let relevance_score: Double
        let document: DocumentText?
    }
    struct DocumentText: Encodable { let text: String }
    let results: [Result]
    let model: String
    let usage: Usage
}

struct SearchBody: Decodable {
    var query: String
    var instruction: String?
    var examples: [Example]?
    var task: String?
    var k: Int?
    var mode: String?
    var filter: String?
    /// A metadata filter (see `MetadataFilter`).
    var `where`: JSONValue?
    /// "snippet" (default), "full" (the chunk text) or "none".
    var text: String?
    /// Whether hits carry their document's metadata (default true).
    var metadata: Bool?
    /// Rerank the best `rerank_depth` hits with the server's reranker (default: true when it has one).
    var rerank: Bool?
    var rerank_depth: Int?
    /// Brute force over every (matching) chunk instead of the HNSW walk (default false).
    var exact: Bool?
}

struct SearchResponse: Encodable {
    let query: String
    let mode: String
    let k: Int
    let hits: [SearchHit]
}

struct DocumentsRequest: Decodable {
    struct Document: Decodable {
        var id: String
        var text: String
        var metadata: [String: JSONValue]?
    }
    var documents: [Document]
}

struct DocumentsResponse: Encodable {
    let documents: [TextDocumentResult]
    let upserted: Int
}

/// A document and its fields (`GET /v1/documents/{id}`, listings, `PATCH`).
struct DocumentOutput: Encodable {
    /// The API id of a `doc:` document; nil for files.
    let id: String?
    let path: String
    let title: String
    let chunks: Int
    let metadata: [String: JSONValue]

    init(_ d: DocumentInfo) {
        id = d.path.hasPrefix("doc:") ? String(d.path.dropFirst(4)) : nil
        path = d.path
        title = d.title
        chunks = d.chunks
        metadata = d.fields
    }
}

struct DocumentListResponse: Encodable {
    let documents: [DocumentOutput]
    /// Pass as `after` for the next page; null on the last page.
    let next_after: Int64?

    enum CodingKeys: CodingKey { case documents, next_after }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(documents, forKey: .documents)
        try c.encode(next_after, forKey: .next_after)   // null, not left out
    }
}

struct PatchDocumentBody: Decodable {
    var metadata: [String: JSONValue]
}

struct DeleteResponse: Encodable {
    let id: String
    let deleted: Bool
}
