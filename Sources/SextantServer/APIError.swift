import Foundation
import Hummingbird
import NIOHTTP1
import Sextant

/// An error answered as `{"error": {"code", "message"}}` with an HTTP status. The library's
/// errors (codes and messages) are mapped to statuses here and only here.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "invalid_request", message) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        jsonResponse(ErrorBody(error: .init(code: code, message: message)), status: status)
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable { let code: String; let message: String }
        let error: Detail
    }

    /// Any error as an API error: library errors by their code, HTTP errors by their status,
    /// anything else as an internal error (500, with its description).
    static func from(_ error: Error) -> APIError {
        switch SextantError.lifted(error) {
        case let e as APIError:
            return e
        case let e as SextantError:
            switch e.code {
            case .invalidArgument: return APIError(.badRequest, "invalid_request", e.message)
            case .notFound: return APIError(.notFound, "not_found", e.message)
            case .modelMismatch: return APIError(.conflict, "model_mismatch", e.message)
            case .readOnly: return APIError(.serviceUnavailable, "read_only", e.message)
            case .diskFull: return APIError(.init(code: 507, reasonPhrase: "Insufficient Storage"), "disk_full", e.message)
            case .io, .corrupt, .database: return APIError(.internalServerError, e.code.rawValue, e.message)
            }
        case let e as EmbeddingError:
            switch e.code {
            case .badInput: return APIError(.badRequest, "invalid_request", e.message)
            case .modelNotFound, .badConfig, .unsupportedModel: return APIError(.internalServerError, e.code.rawValue, e.message)
            }
        case let e as DecodingError:
            return .badRequest(describe(e))
        case let e as HTTPError:
            return APIError(e.status, codeName(e.status), e.body ?? e.status.reasonPhrase)
        case let e as HTTPParserError:
            // The client's fault: it closed the connection mid-request or sent malformed HTTP.
            if case .invalidEOFState = e {
                return APIError(.badRequest, "incomplete_request", "the connection closed before the whole request body arrived")
            }
            return APIError(.badRequest, "malformed_http", "malformed HTTP request: \(e.debugDescription)")
        case let e as HTTPResponseError:
            let message = e.status == .contentTooLarge ? "the request body is too large" : e.status.reasonPhrase
            return APIError(e.status, codeName(e.status), message)
        default:
            return APIError(.internalServerError, "internal", "\(error)")
        }
    }

    static func codeName(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: return "invalid_request"
        case 401: return "unauthorized"
        case 404: return "not_found"
        case 405: return "method_not_allowed"
        case 413: return "body_too_large"
        case 415: return "unsupported_media_type"
        default: return status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_")
        }
    }

    /// A decoding error as one line naming the field (`documents[2].text: expected a string`).
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out.isEmpty ? "the body" : out
        }
        switch error {
        case let .typeMismatch(type, context):
            if !context.debugDescription.isEmpty, context.debugDescription.hasPrefix("expected") {
                return "\(path(context.codingPath)): \(context.debugDescription)"
            }
            return "\(path(context.codingPath)): expected \(typeName(type))"
        case let .valueNotFound(type, context):
            return "\(path(context.codingPath)): expected \(typeName(type)), got null"
        case let .keyNotFound(key, context):
            return "\(path(context.codingPath + [key])): missing"
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                // Syntax errors, but also numbers that do not fit the field (k: 2.5) land here.
                let detail = context.debugDescription
                return detail.isEmpty || detail.contains("not valid JSON") ? "the body is not valid JSON" : "the body cannot be read: \(detail)"
            }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the body does not match the expected shape"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}

/// Turns every error into the JSON error body, so no route (nor an unknown one) answers in
/// another shape. Internal errors are logged.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let api = APIError.from(error)
            if api.status.code >= 500 {
                context.logger.error("\(request.method) \(request.uri.path): \(api.message)")
            } else if api.code == "incomplete_request" {
                context.logger.debug("\(request.method) \(request.uri.path): \(api.message)")
            }
            return try api.response(from: request, context: context)
        }
    }
}

/// `Authorization: Bearer KEY` on every route but `/health`.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "unauthorized", "missing Authorization: Bearer <key>")
        }
        // The scheme is case-insensitive (RFC 9110); spaces around the token are not part of it.
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              constantTimeEqual(Array(parts[1].trimmingCharacters(in: .whitespaces).utf8), Array(key.utf8)) else {
            throw APIError(.unauthorized, "unauthorized", "invalid API key")
        }
        return try await next(request, context)
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}

/// A JSON response with sorted keys (as the CLI prints).
func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"internal","message":"cannot encode the response"}}"#.utf8)
    return Response(status: status, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
