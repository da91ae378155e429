import Foundation
import Testing

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The `sextant` binary built next to the test bundle.
let sextantBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sextant")

struct RunResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs `sextant` from the repository root with `input` on stdin.
func runSextant(_ arguments: [String], input: Data = Data(), environment: [String: String] = [:]) throws -> RunResult {
    signal(SIGPIPE, SIG_IGN)   // a child that exits before reading its input must not kill the test run
    let process = Process()
    process.executableURL = sextantBinary
    process.arguments = arguments
    process.currentDirectoryURL = repoRoot
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let (inPipe, outPipe, errPipe) = (Pipe(), Pipe(), Pipe())
    process.standardInput = inPipe
    process.standardOutput = outPipe
    process.standardError = errPipe
    try process.run()
    DispatchQueue.global().async {
        try? inPipe.fileHandleForWriting.write(contentsOf: input)   // the child may exit first (EPIPE)
        try? inPipe.fileHandleForWriting.close()
    }
    // Drain stderr on another thread while stdout is read here, so neither pipe can fill up.
    final class Box: @unchecked Sendable { var data = Data() }
    let err = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { err.data = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let out = outPipe.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return RunResult(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                     stderr: String(decoding: err.data, as: UTF8.self))
}

func embeddings(_ stdout: String) throws -> [[Double]] {
    try stdout.split(separator: "\n").map { line in
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        return obj["embedding"] as! [Double]
    }
}

@Suite struct EmbedCommandTests {
    @Test func embedsJSONLinesInOrder() throws {
        let input = Data("{\"text\": \"first line\"}\n{\"text\": \"the second one\"}\n{\"text\": \"\"}".utf8)
        let r = try runSextant(["embed"], input: input)
        #expect(r.status == 0, "\(r.stderr)")
        let vectors = try embeddings(r.stdout)
        #expect(vectors.count == 3)
        #expect(vectors.allSatisfy { $0.count == 384 })
        // Same text, same vector; plain lines give the same result as JSON lines.
        let plain = try runSextant(["embed", "--lines"], input: Data("first line\nthe second one\n".utf8))
        let p = try embeddings(plain.stdout)
        #expect(p.count == 2)
        for (a, b) in zip(p, vectors) { #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 }) }
    }

    @Test func queriesWithAnInstructionDifferFromPassages() throws {
        let input = Data("what is a slipstream\n".utf8)
        let passage = try embeddings(try runSextant(["embed", "--lines"], input: input).stdout)[0]
        let query = try embeddings(try runSextant(["embed", "--lines", "--instruct", "Retrieve aeronautics abstracts"], input: input).stdout)[0]
        #expect(zip(passage, query).contains { abs($0 - $1) > 1e-3 })
    }

    @Test func malformedInputNamesTheLine() throws {
        let bad = try runSextant(["embed"], input: Data("{\"text\": \"ok\"}\n{\"text\": 5}\n".utf8))
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("line 2"))
        let notJSON = try runSextant(["embed"], input: Data("{\"text\": \"ok\"}\n\n{oops\n".utf8))
        #expect(notJSON.status != 0)
        #expect(notJSON.stderr.contains("line 2"))
        var bytes = Array("{\"text\": \"ok\"}\n".utf8)
        bytes += [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D, 0x0A]
        let invalidUTF8 = try runSextant(["embed"], input: Data(bytes))
        #expect(invalidUTF8.status != 0)
        #expect(invalidUTF8.stderr.contains("line 2") && invalidUTF8.stderr.contains("UTF-8"))
    }

    @Test func missingModelIsOneClearError() throws {
        let r = try runSextant(["embed", "--model", "/nonexistent/model"], input: Data("x\n".utf8))
        #expect(r.status != 0)
        #expect(r.stderr.hasPrefix("error: "))
        #expect(r.stderr.contains("/nonexistent/model"))
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stdout.isEmpty)
    }
}
