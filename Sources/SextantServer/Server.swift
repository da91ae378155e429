import Dispatch
import Foundation
import Hummingbird
import Sextant

/// Limits on what one request may ask for.
public struct ServerLimits: Sendable {
    /// Bytes of a request body.
    public var maxBodyBytes = 8 << 20
    /// Inputs of one /v1/embeddings call, documents of one /v1/rerank or /v1/documents call.
    public var maxBatch = 256
    /// Characters of one text (input, document, query).
    public var maxTextCharacters = 100_000
    /// Hits of one search.
    public var maxK = 1000
    /// Seconds a connection may stay silent (mid-request or between requests) before it is closed.
    public var idleTimeoutSeconds: Int64 = 60

    public init() {}
}

/// How the server listens and who may call it.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// With a key, every route but /health needs `Authorization: Bearer KEY`.
    public var apiKey: String?
    /// Allows a non-loopback host without an API key.
    public var insecure = false
    public var limits = ServerLimits()

    /// `host` may be an IPv6 address in URL brackets (`[::1]`); they are dropped.
    public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, insecure: Bool = false) {
        self.host = host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 ? String(host.dropFirst().dropLast()) : host
        self.port = port
        self.apiKey = apiKey
        self.insecure = insecure
    }

    /// The host as written in a URL: IPv6 addresses in brackets.
    public var urlHost: String { host.contains(":") ? "[\(host)]" : host }

    /// True for 127.0.0.0/8, ::1 and localhost.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h == "::1" || h == "[::1]" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Refuses a non-loopback host without an API key (unless insecure) and bad ports.
    public func validate() throws {
        guard (0...65535).contains(port) else { throw SextantError(.invalidArgument, "--port must be in 0...65535") }
        if let key = apiKey, key.isEmpty { throw SextantError(.invalidArgument, "--api-key must not be empty") }
        if let key = apiKey, key.trimmingCharacters(in: .whitespacesAndNewlines) != key || key.contains(" ") {
            throw SextantError(.invalidArgument, "--api-key must not contain spaces (a client could never send it in a Bearer header)")
        }
        if !Self.isLoopback(host) && apiKey == nil && !insecure {
            throw SextantError(.invalidArgument, """
                refusing to listen on \(host) without an API key: anyone who can reach it could read and change the collection. \
                Give --api-key KEY, or --insecure to do it anyway
                """)
        }
    }
}

/// The engine behind the routes: one collection and its embedder. Searches run concurrently;
/// writes (document upserts and deletes) run one at a time on their own queue, to completion
/// even when the client goes away.
public final class SextantService: Sendable {
    public let collection: Collection
    public var embedder: Embedder { collection.embedder }
    public let modelName: String
    var batcher: EmbeddingBatcher { collection.batcher }
    private let writes = DispatchQueue(label: "sextant.server.writes")
    private let reads = DispatchQueue(label: "sextant.server.reads", qos: .userInitiated, attributes: .concurrent)

    /// The cross-encoder or LLM reranker behind `/v1/rerank`, `/rerank` and reranked searches
    /// (nil: `/v1/rerank` ranks by the embedder's cosine).
    public let reranker: CrossEncoder?

    public init(collection: Collection, reranker: CrossEncoder? = nil) {
        self.collection = collection
        self.reranker = reranker
        modelName = collection.embedder.folder.name
    }

    private let taskRerankers = TaskRerankers()

    /// The reranker a saved task names, loaded on first use and kept.
    func reranker(forTask name: String) throws -> (CrossEncoder, depth: Int?)? {
        guard let (folder, depth) = try collection.taskReranker(named: name) else { return nil }
        return (try taskRerankers.get(folder), depth)
    }

    /// Scores `documents` against `query` with the reranker, off the async threads; with the
    /// number of tokens it read.
    func rerankScores(_ reranker: CrossEncoder, query: String, documents: [String], instruction: String?) async throws -> (scores: [Double], tokens: Int) {
        try await read { reranker.scoresCountingTokens(query: query, passages: documents, instruction: instruction) }
    }

    /// Runs `body` off the async threads (the engine blocks while it computes).
    func read<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            reads.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs a write: one at a time, and always to the end once started.
    func write<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            writes.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Embeddings batched with those of concurrent requests.
    func embed(_ texts: [String], kind: InputKind) async -> EmbeddingBatcher.Result {
        await batcher.embed(texts, kind: kind)
    }
}

/// The router with every route, the error middleware and (with a key) the API-key check.
public func buildRouter(service: SextantService, configuration: ServerConfiguration) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: ErrorMiddleware<BasicRequestContext>())
    if let key = configuration.apiKey {
        router.add(middleware: APIKeyMiddleware<BasicRequestContext>(key: key))
    }
    Routes(service: service, limits: configuration.limits).register(on: router)
    return router
}

/// The application: the router bound to the configured host and port.
public func buildApplication(service: SextantService, configuration: ServerConfiguration,
                             onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
    throws -> some ApplicationProtocol {
    try configuration.validate()
    return Application(router: buildRouter(service: service, configuration: configuration),
                       server: .http1(configuration: .init(idleTimeout: .seconds(configuration.limits.idleTimeoutSeconds))),
                       configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "sextant"),
                       onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) })
}

/// Rerankers named by saved tasks, by folder, loaded once each (a folder that failed to load
/// keeps its error, so a request does not load it again).
final class TaskRerankers: @unchecked Sendable {   // the dictionary is only touched under the lock
    private let lock = NSLock()
    private var loaded: [String: Result<CrossEncoder, Error>] = [:]

    func get(_ folder: String) throws -> CrossEncoder {
        lock.lock()
        defer { lock.unlock() }
        if let r = loaded[folder] { return try r.get() }
        let r = Result { try CrossEncoder(folder: URL(fileURLWithPath: folder)) }
        loaded[folder] = r
        return try r.get()
    }
}
