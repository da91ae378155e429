import ArgumentParser
import Dispatch
import Foundation
import Sextant
import SextantServer

/// `sextant serve`: the HTTP API over one collection (see README: HTTP server).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve a collection over HTTP: embeddings, rerank, search, documents.")

    @OptionGroup var collection: CollectionOptions

    @Option(help: "Address to listen on (a non-loopback address needs --api-key or --insecure).")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port: Int = 8080

    @Option(help: "Require 'Authorization: Bearer KEY' on every route but /health (default: $SEXTANT_API_KEY).")
    var apiKey: String?

    @Flag(help: "Allow a non-loopback --host without an API key.")
    var insecure = false

    @Option(help: "Largest request body in bytes.")
    var maxBodyBytes: Int = ServerLimits().maxBodyBytes

    @Option(help: "A reranker model folder (cross-encoder or LLM reranker) for /v1/rerank, TEI's /rerank and reranked searches.")
    var reranker: String?

    @Option(help: "Close a connection that sends nothing for this many seconds (slow or stuck clients).")
    var idleTimeout: Int = 60

    func run() throws {
        var config = ServerConfiguration(host: host, port: port,
                                         apiKey: apiKey ?? ProcessInfo.processInfo.environment["SEXTANT_API_KEY"], insecure: insecure)
        guard maxBodyBytes >= 1024 else { throw fail("--max-body-bytes must be at least 1024") }
        config.limits.maxBodyBytes = maxBodyBytes
        guard idleTimeout >= 1 else { throw fail("--idle-timeout must be at least 1 second") }
        config.limits.idleTimeoutSeconds = Int64(idleTimeout)
        do { try config.validate() } catch { throw fail("\(error)") }
        let settings = config
        let c = try collection.open(mustExist: false)
        let scorer: CrossEncoder?
        do { scorer = try reranker.map { try CrossEncoder(folder: URL(fileURLWithPath: $0)) } } catch { throw fail("\(error)") }
        let service = SextantService(collection: c, reranker: scorer)
        let documents = (try? c.info().documents) ?? 0
        let directory = collection.indexURL.path
        let app = try attempt {
            try buildApplication(service: service, configuration: settings) { port in
                FileHandle.standardError.write(Data("""
                    sextant: serving \(directory) (\(documents) documents, model \(service.modelName)\(scorer.map { ", reranker \($0.folder.name)" } ?? "")) \
                    on http://\(settings.urlHost):\(port)\(settings.apiKey == nil ? "" : " (API key required)")\n
                    """.utf8))
            }
        }
        final class Outcome: @unchecked Sendable { var error: Error? }   // written by the task before `finished` is signalled, read after
        let outcome = Outcome()
        let finished = DispatchSemaphore(value: 0)
        Task {
            do { try await app.runService() } catch { outcome.error = error }
            finished.signal()
        }
        finished.wait()
        if let error = outcome.error {
            throw fail("""
                cannot serve on \(settings.urlHost):\(settings.port): \(error). \
                Is another process using the port, or is the address not one of this machine's? Try another --port or --host
                """)
        }
    }
}
