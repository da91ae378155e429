import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

@Suite(.serialized) struct ServeCommandTests {
    @Test func refusesAnOpenHostWithoutAKey() throws {
        let index = FileManager.default.temporaryDirectory.appendingPathComponent("sextant-serve-\(UUID().uuidString)").path
        let open = try runSextant(["serve", "--index", index, "--host", "0.0.0.0", "--port", "0"])
        #expect(open.status == 1)
        #expect(open.stderr.hasPrefix("error: refusing to listen on 0.0.0.0 without an API key"))
        #expect(open.stderr.split(separator: "\n").count == 1)
        let port = try runSextant(["serve", "--index", index, "--port", "70000"])
        #expect(port.status == 1 && port.stderr == "error: --port must be in 0...65535\n")
        // Nothing was created: the checks come before the collection is opened.
        #expect(!FileManager.default.fileExists(atPath: index))
    }

    @Test func servesHealthUntilTerminated() throws {
        let index = FileManager.default.temporaryDirectory.appendingPathComponent("sextant-serve-\(UUID().uuidString)").path
        let port = 20000 + Int.random(in: 0..<20000)
        let process = Process()
        process.executableURL = sextantBinary
        process.arguments = ["serve", "--index", index, "--port", String(port), "--api-key", "k"]
        process.currentDirectoryURL = repoRoot
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        func get(_ path: String, key: String? = nil) -> Int? {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
            final class Box: @unchecked Sendable { var status: Int? }
            let box = Box()
            let done = DispatchSemaphore(value: 0)
            URLSession.shared.dataTask(with: request) { _, response, _ in
                box.status = (response as? HTTPURLResponse)?.statusCode
                done.signal()
            }.resume()
            done.wait()
            return box.status
        }
        var health: Int? = nil
        for _ in 0..<150 where health == nil {
            Thread.sleep(forTimeInterval: 0.2)
            health = get("/health")
        }
        #expect(health == 200)
        #expect(get("/v1/collections/info") == 401)
        #expect(get("/v1/collections/info", key: "k") == 200)
        process.terminate()   // SIGTERM: a graceful shutdown
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
