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
    /// "snippet" (default), "full" (the chunk text) or "none".
    var text: String?
}

struct SearchResponse: Encodable {
    let query: String
    let mode: String
    let k: Int
    let hits: [SearchHit]
}

/// Any JSON value (document metadata).
indirect enum JSONValue: Codable, Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else if let o = try? c.decode([String: JSONValue].self) { self = .object(o) }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a JSON value") }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(n): try c.encode(n)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
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

struct DeleteResponse: Encodable {
    let id: String
    let deleted: Bool
}
