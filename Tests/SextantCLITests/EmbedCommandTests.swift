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

    /// Bit-identical vectors whatever the batch, order and thread count, in f32, bf16 and int8, on
    /// the machine's own paths and on the AVX2 ones (SEXTANT_CPU_PATH=avx2: the paths of AVX2-only
    /// CPUs, forced here so that an AVX-512 machine tests them too), and in f32 on portable code.
    @Test(arguments: ["", "f32-avx2", "f32-portable", "bf16", "bf16-avx2", "int8", "int8-avx2"])
    func vectorsDoNotDependOnTheBatch(_ variant: String) throws {
        let texts = ["Simmer vegetables in stock and season with salt.", "Knead the dough.", "A swept wing.",
                     "Simmer vegetables in stock and season with salt.", "Boundary layer transition at hypersonic speeds",
                     "x", "The quick brown fox jumps over the lazy dog, again and again and again.",
                     "Knead the dough."]
        let env = variant.hasSuffix("-avx2") ? ["SEXTANT_CPU_PATH": "avx2"]
            : variant.hasSuffix("-portable") ? ["SEXTANT_CPU_PATH": "portable"] : [:]
        let precision = variant.hasPrefix("bf16") ? ["--precision", "bf16"] : variant.hasPrefix("int8") ? ["--precision", "int8"] : []
        func run(_ lines: [String], _ extra: [String]) throws -> [String: String] {
            let r = try runSextant(["embed", "--lines"] + precision + extra, input: Data((lines.joined(separator: "\n") + "\n").utf8),
                                   environment: env)
            #expect(r.status == 0, "\(r.stderr)")
            let out = r.stdout.split(separator: "\n").map(String.init)
            #expect(out.count == lines.count)
            var byText: [String: String] = [:]
            for (text, line) in zip(lines, out) {
                // The vector as printed (shortest round-trip digits: equal text means equal bits).
                guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else {
                    Issue.record("no vector in \(line.prefix(80))"); continue
                }
                let printed = String(line[open...close])
                if let seen = byText[text] { #expect(seen == printed, "\(text): two vectors in one call") }
                byText[text] = printed
            }
            return byText
        }
        let reference = try run(texts, ["--threads", "1", "--batch-lines", "1"])
        for extra in [["--threads", "2"], ["--threads", "1"], ["--threads", "2", "--batch-lines", "3"]] {
            #expect(try run(texts.reversed(), extra) == reference, "\(variant) \(extra)")
        }
    }

    /// Ids and kept fields travel with their vectors, also across batches, exactly as given.
    @Test func idsAndKeptFieldsTravelWithTheirVectors() throws {
        var input = ""
        for i in 0..<7 {
            let id = i == 3 ? "9223372036854775807" : "\"d\(i)\""
            input += #"{"text": "Passage number \#(i) about wings.", "id": \#(id), "src": {"n": \#(i)}, "drop": true}"# + "\n"
        }
        input += #"{"text": "no id here"}"# + "\n"
        let batched = try runSextant(["embed", "--keep", "src", "--batch-lines", "3"], input: Data(input.utf8))
        #expect(batched.status == 0, "\(batched.stderr)")
        let lines = batched.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 8)
        for i in 0..<7 {
            let id = i == 3 ? "9223372036854775807" : "\"d\(i)\""
            #expect(lines[i].hasPrefix(#"{"id":\#(id),"src":{"n":\#(i)},"embedding":["#), "\(lines[i].prefix(60))")
            #expect(!lines[i].contains("drop"))
        }
        #expect(lines[7].hasPrefix(#"{"embedding":["#))
        // The vectors are those of a run without fields.
        let plain = try runSextant(["embed"], input: Data(input.utf8))
        for (a, b) in zip(lines, plain.stdout.split(separator: "\n")) {
            #expect(a[a.range(of: #""embedding":"#)!.lowerBound...] == b[b.range(of: #""embedding":"#)!.lowerBound...])
        }
        // Misuse: one error, non-zero, nothing on stdout.
        for (args, says) in [(["embed", "--lines", "--keep", "a"], "--keep"), (["embed", "--keep", "embedding"], "clash")] {
            let r = try runSextant(args, input: Data("{\"text\": \"x\"}\n".utf8))
            #expect(r.status != 0 && r.stderr.contains(says) && r.stdout.isEmpty, "\(args)")
        }
        let bad = try runSextant(["embed"], input: Data((#"{"text": "fine", "id": 1}"# + "\n" + #"{"id": 2}"# + "\n").utf8))
        #expect(bad.status != 0 && bad.stderr.contains("line 2"))
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
