import Foundation
@testable import Sextant
import Store
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `sextant serve` process on a random port, stopped when the test ends.
final class ServerProcess {
    let process: Process
    let port: Int

    init(index: URL, extra: [String] = []) throws {
        port = 20000 + Int.random(in: 0..<20000)
        process = Process()
        process.executableURL = sextantBinary
        process.arguments = ["serve", "--index", index.path, "--port", String(port)] + extra
        process.currentDirectoryURL = repoRoot
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<300 {
            if (try? request("GET", "/health").status) == 200 { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw SextantError(.io, "the server did not answer /health in 30 s")
    }

    deinit { stop() }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    /// One HTTP request; the status and the JSON body (nil when not JSON).
    func request(_ method: String, _ path: String, _ body: [String: Any]? = nil) throws -> (status: Int, json: [String: Any]?) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 60
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        final class Box: @unchecked Sendable { var status = -1; var data = Data() }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, _ in
            box.status = (response as? HTTPURLResponse)?.statusCode ?? -1
            box.data = data ?? Data()
            done.signal()
        }.resume()
        done.wait()
        return (box.status, try? JSONSerialization.jsonObject(with: box.data) as? [String: Any])
    }

    /// Paths of a dense search's hits, checking that ranks run 1, 2, 3… with no gap.
    func densePaths(_ query: String, k: Int = 5) throws -> [String] {
        let r = try request("POST", "/v1/search", ["query": query, "mode": "dense", "k": k])
        #expect(r.status == 200, "search answered \(r.status)")
        let hits = r.json?["hits"] as? [[String: Any]] ?? []
        #expect(hits.map { $0["rank"] as? Int ?? 0 } == Array(0..<hits.count).map { $0 + 1 })
        return hits.compactMap { $0["path"] as? String }
    }
}

/// A note with a phrase no other note has, so that its own text finds it first.
func distinctNote(_ i: Int, version: Int = 0) -> String {
    let topics = ["wing flutter", "jet engines", "sourdough bread", "tomato soup", "river deltas", "binary stars",
                  "chess openings", "rose gardens", "volcanic islands", "sea kayaks", "glacier ice", "honey bees"]
    return "Note \(i) version \(version) tells about \(topics[i % topics.count]) number \(i * 7 + version), "
        + "and only note \(i) mentions the code word zq\(i)v\(version)x."
}

/// A new folder of `count` distinct notes, `NAME-i.txt` holding note `first + i`.
func noteFolder(_ name: String, count: Int, first: Int = 0) throws -> URL {
    let folder = temporaryFolder("sextant-notes-\(name)")
    for i in 0..<count { try Data(distinctNote(first + i).utf8).write(to: folder.appendingPathComponent("\(name)-\(i).txt")) }
    return folder
}

@Suite(.serialized) struct SharedCollectionTests {
    /// Two `sextant index` runs on one collection at once both succeed and both are kept.
    @Test func twoIndexRunsAtOnceBothSucceed() throws {
        let a = try noteFolder("a", count: 30), b = try noteFolder("b", count: 30, first: 100)
        let index = temporaryFolder("sextant-shared-index")
        let first = try runSextant(["index", a.path, "--index", index.path, "--quiet"])   // creates the collection
        #expect(first.status == 0, "\(first.stderr)")
        try Data(distinctNote(0, version: 1).utf8).write(to: a.appendingPathComponent("a-0.txt"))
        let p1 = try startSextant(["index", a.path, "--index", index.path, "--quiet"])
        let p2 = try startSextant(["index", b.path, "--index", index.path, "--quiet"])
        p1.waitUntilExit(); p2.waitUntilExit()
        #expect(p1.terminationStatus == 0 && p2.terminationStatus == 0)
        let c = try Collection(directory: index, defaultModel: repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2"), warn: { _ in })
        #expect(try c.info().documents == 60)
        #expect(try c.store.consistencyProblems(dimensions: 384) == [])
        #expect(try c.index.count == c.store.counts().chunks)
        for (folder, name, n) in [(a, "a-0.txt", 0), (b, "b-7.txt", 107)] {
            let text = n == 0 ? distinctNote(0, version: 1) : distinctNote(n)
            let hit = try c.search(SearchRequest(query: text, k: 1, mode: .dense)).first
            #expect(hit?.path == folder.appendingPathComponent(name).path)
        }
    }

    /// A client that sends half a request and then nothing is disconnected after --idle-timeout.
    @Test func silentClientsAreDisconnected() throws {
        let index = temporaryFolder("sextant-idle-index")
        let server = try ServerProcess(index: index, extra: ["--idle-timeout", "1"])
        defer { server.stop() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(server.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(connected == 0)
        let partial = "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\""
        _ = partial.withCString { send(fd, $0, strlen($0), 0) }
        let started = Date()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while recv(fd, &buffer, buffer.count, 0) > 0 {}   // until the server closes (0) or the 10 s timeout (-1)
        let waited = Date().timeIntervalSince(started)
        #expect(waited < 5, "the server kept a silent connection for \(waited) s")
        #expect(try server.request("GET", "/health").status == 200)
    }

    /// A running server sees a CLI `index` and `remove` within a second.
    @Test func serverSeesCLIChangesWithinASecond() throws {
        let a = try noteFolder("a", count: 10), b = try noteFolder("b", count: 10, first: 200)
        let index = temporaryFolder("sextant-live-index")
        #expect(try runSextant(["index", a.path, "--index", index.path, "--quiet"]).status == 0)
        let server = try ServerProcess(index: index)
        defer { server.stop() }
        #expect(try server.densePaths(distinctNote(203), k: 3).allSatisfy { !$0.hasPrefix(b.path) })

        #expect(try runSextant(["index", b.path, "--index", index.path, "--quiet"]).status == 0)
        let added = Date()
        var seen = false
        while !seen && Date().timeIntervalSince(added) < 1 { seen = try server.densePaths(distinctNote(203), k: 1).first == b.appendingPathComponent("b-3.txt").path }
        #expect(seen, "the server did not return a file indexed by the CLI within a second")

        #expect(try runSextant(["remove", b.path, "--index", index.path]).status == 0)
        let removed = Date()
        var gone = false
        while !gone && Date().timeIntervalSince(removed) < 1 { gone = try server.densePaths(distinctNote(203), k: 10).allSatisfy { !$0.hasPrefix(b.path) } }
        #expect(gone, "the server still returned removed files a second after sextant remove")
    }

    /// Searchers, CLI writers killed with kill -9 at random moments and a server taking
    /// POST/DELETE at the same time; afterwards every committed document is the top dense hit
    /// for its own text, no removed one is returned, and the index agrees with the store.
    @Test func killedWritersAndConcurrentReadersLeaveAConsistentCollection() throws {
        let docs = try noteFolder("n", count: 40)
        let index = temporaryFolder("sextant-chaos-index")
        #expect(try runSextant(["index", docs.path, "--index", index.path, "--quiet"]).status == 0)
        let server = try ServerProcess(index: index)
        defer { server.stop() }

        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var stop = false
            var searchFailures: [String] = []
            var searches = 0
        }
        let shared = Shared()
        // Two searcher processes' worth of CLI searches, ranks checked on every answer.
        let searchers = DispatchGroup()
        for s in 0..<2 {
            DispatchQueue.global().async(group: searchers) {
                var n = 0
                while !shared.lock.withLock({ shared.stop }) {
                    n += 1
                    guard let r = try? runSextant(["search", distinctNote((n * 7 + s) % 40), "--index", index.path, "--mode", "dense", "--json", "-k", "5"]) else { continue }
                    var problem: String? = r.status == 0 ? nil : "search exited \(r.status): \(r.stderr)"
                    if problem == nil, let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] {
                        let ranks = (obj["hits"] as? [[String: Any]] ?? []).map { $0["rank"] as? Int ?? 0 }
                        if ranks != Array(1...5) { problem = "ranks \(ranks)" }
                    }
                    shared.lock.withLock {
                        shared.searches += 1
                        if let problem { shared.searchFailures.append(problem) }
                    }
                }
            }
        }
        // The server's writes, recorded when the server says they were done.
        var apiLive: [Int: Int] = [:]       // id -> version
        var apiDeleted = Set<Int>()
        var generator = SystemRandomNumberGenerator()
        let started = Date()
        var round = 0
        while Date().timeIntervalSince(started) < 25 {
            round += 1
            // Files change; an indexer starts and is killed at a random moment (or finishes).
            for _ in 0..<3 {
                let i = Int.random(in: 0..<40, using: &generator)
                try Data(distinctNote(i, version: round).utf8).write(to: docs.appendingPathComponent("n-\(i).txt"))
            }
            let indexer = try startSextant(["index", docs.path, "--index", index.path, "--quiet"])
            let api = 1000 + round
            let post = try server.request("POST", "/v1/documents", ["documents": [["id": "api-\(api)", "text": distinctNote(api)]]])
            if post.status == 200 { apiLive[api] = 0 }
            if round % 3 == 0, let victim = apiLive.keys.randomElement(using: &generator) {
                let delete = try server.request("DELETE", "/v1/documents/api-\(victim)")
                if delete.status == 200 { apiLive[victim] = nil; apiDeleted.insert(victim) }
            }
            #expect(post.status == 200, "POST answered \(post.status): \(post.json ?? [:])")
            usleep(UInt32.random(in: 100_000...1_500_000, using: &generator))
            kill(indexer.processIdentifier, SIGKILL)
            indexer.waitUntilExit()
        }
        shared.lock.withLock { shared.stop = true }
        searchers.wait()
        #expect(shared.searches > 10)
        #expect(shared.searchFailures.isEmpty, "\(shared.searchFailures.prefix(3))")

        // A last run finishes what the killed ones left.
        let final = try runSextant(["index", docs.path, "--index", index.path, "--quiet"])
        #expect(final.status == 0, "\(final.stderr)")
        let c = try Collection(directory: index, defaultModel: repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2"), warn: { _ in })
        #expect(try c.store.consistencyProblems(dimensions: 384) == [])
        #expect(try c.index.count == c.store.counts().chunks)
        #expect(try c.info().documents == 40 + apiLive.count)
        for i in 0..<40 {
            let text = try String(contentsOf: docs.appendingPathComponent("n-\(i).txt"), encoding: .utf8)
            #expect(try c.search(SearchRequest(query: text, k: 1, mode: .dense)).first?.path == docs.appendingPathComponent("n-\(i).txt").path)
        }
        for (api, _) in apiLive {
            #expect(try c.search(SearchRequest(query: distinctNote(api), k: 1, mode: .dense)).first?.path == "doc:api-\(api)")
            #expect(try server.densePaths(distinctNote(api), k: 1).first == "doc:api-\(api)", "the server misses api-\(api)")
        }
        for api in apiDeleted {
            #expect(try c.search(SearchRequest(query: distinctNote(api), k: 10, mode: .dense)).allSatisfy { $0.path != "doc:api-\(api)" })
            #expect(try server.densePaths(distinctNote(api), k: 10).allSatisfy { $0 != "doc:api-\(api)" })
        }
    }
}

/// Whether this process may mount file systems (root in a sandbox that allows it): needed to
/// make a small full disk and a read-only mount.
let canMount: Bool = {
    let dir = temporaryFolder("sextant-mount-probe")
    let ok = (try? runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir.path])) == 0
    if ok { _ = try? runCommand("/bin/umount", [dir.path]) }
    return ok
}()

@discardableResult
func runCommand(_ path: String, _ arguments: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

@Suite(.serialized) struct DegradedStorageTests {
    /// A collection on a read-only mount: info and search work with one warning, changes are
    /// refused with one clear error, and nothing is written.
    @Test(.enabled(if: canMount)) func readOnlyCollectionsCanBeSearched() throws {
        let source = temporaryFolder("sextant-ro-src"), view = temporaryFolder("sextant-ro-view")
        let index = source.appendingPathComponent("idx")
        #expect(try runSextant(["index", "fixtures/docs", "--index", index.path, "--quiet"]).status == 0)
        #expect(try runCommand("/bin/mount", ["--bind", source.path, view.path]) == 0)
        defer { _ = try? runCommand("/bin/umount", [view.path]) }
        #expect(try runCommand("/bin/mount", ["-o", "remount,bind,ro", view.path]) == 0)
        let roIndex = view.appendingPathComponent("idx").path
        let info = try runSextant(["info", "--index", roIndex, "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("\"documents\":4"))
        #expect(info.stderr.split(separator: "\n").count == 1 && info.stderr.contains("read-only"))
        let search = try runSextant(["search", "Does Sextant need a GPU", "--index", roIndex, "--mode", "dense", "--json", "-k", "1"])
        #expect(search.status == 0, "\(search.stderr)")
        #expect(search.stdout.contains("faq.html"))
        let remove = try runSextant(["remove", "fixtures/docs/faq.html", "--index", roIndex])
        #expect(remove.status != 0)
        #expect(remove.stderr.contains("error: ") && remove.stderr.contains("read-only"))
        let again = try runSextant(["info", "--index", roIndex, "--json"])
        #expect(again.stdout.contains("\"documents\":4"))
    }

    /// On a full disk, info and search still work, and remove works and frees space.
    @Test(.enabled(if: canMount)) func fullDiskStillReadsAndRemoves() throws {
        let disk = temporaryFolder("sextant-full")
        #expect(try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", disk.path]) == 0)
        defer { _ = try? runCommand("/bin/umount", [disk.path]) }
        let index = disk.appendingPathComponent("idx").path
        #expect(try runSextant(["index", "fixtures/docs", "--index", index, "--quiet"]).status == 0)
        // Fill the disk to the last byte.
        let filler = FileHandle(forWritingAtPath: { _ = FileManager.default.createFile(atPath: disk.appendingPathComponent("filler").path, contents: nil); return disk.appendingPathComponent("filler").path }())!
        let block = Data(count: 16 << 10)
        while (try? filler.write(contentsOf: block)) != nil {}
        try? filler.close()
        let before = try FileManager.default.attributesOfFileSystem(forPath: disk.path)[.systemFreeSize] as? NSNumber
        #expect(before?.intValue ?? 1 < 16 << 10)
        let info = try runSextant(["info", "--index", index, "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        let search = try runSextant(["search", "Does Sextant need a GPU", "--index", index, "--mode", "dense", "--json", "-k", "1"])
        #expect(search.status == 0 && search.stdout.contains("faq.html"), "\(search.stderr)")
        let remove = try runSextant(["remove", "fixtures/docs/faq.html", "fixtures/docs/guide", "--index", index])
        #expect(remove.status == 0, "\(remove.stderr)")
        let after = try runSextant(["info", "--index", index, "--json"])
        #expect(after.stdout.contains("\"documents\":1"), "\(after.stdout)")
        let search2 = try runSextant(["search", "Does Sextant need a GPU", "--index", index, "--mode", "dense", "--json", "-k", "3"])
        #expect(search2.status == 0 && !search2.stdout.contains("faq.html"))
    }
}
