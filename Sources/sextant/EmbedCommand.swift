import ArgumentParser
import Foundation
import Sextant

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed texts from stdin: one JSON line {\"text\": ...} in, one {\"embedding\": [...]} out, in order.")

    @Option(help: "Model folder (default: $SEXTANT_MODEL, else models/all-MiniLM-L6-v2).")
    var model: String?

    @Flag(help: "Embed the inputs as search queries rather than passages.")
    var query = false

    @Option(help: "Task instruction for queries (implies --query).")
    var instruct: String?

    @Flag(help: "Read plain text lines instead of JSON lines.")
    var lines = false

    @Flag(help: "Print {\"texts\", \"tokens\", \"seconds\"} of the embedding work to stderr at the end.")
    var stats = false

    @Option(help: "Tokens per batch (memory per worker grows with it).")
    var batchTokens: Int?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let b = batchTokens, b < 1 { throw ValidationError("--batch-tokens must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let embedder = try loadEmbedder(model, batchTokens: batchTokens, threads: threads)
        let kind: InputKind = (query || instruct != nil) ? .query(instruct: instruct) : .passage
        let stdin = FileHandle.standardInput
        let stdout = FileHandle.standardOutput
        var pending: [UInt8] = []
        var texts: [String] = []
        var lineNumber = 1
        var totalTexts = 0, totalTokens = 0
        var seconds = 0.0

        func flush() {
            guard !texts.isEmpty else { return }
            let started = Date()
            let tokens = embedder.tokenizeAll(texts, kind: kind)
            let vectors = embedder.embed(tokenized: tokens)
            seconds += Date().timeIntervalSince(started)
            totalTexts += texts.count
            totalTokens += tokens.reduce(0) { $0 + $1.count }
            var out = ""
            for v in vectors { out += LineInput.embeddingLine(v); out += "\n" }
            stdout.write(Data(out.utf8))
            texts.removeAll(keepingCapacity: true)
        }

        do {
            while true {
                let data = stdin.availableData
                let atEnd = data.isEmpty
                pending.append(contentsOf: data)
                if atEnd, !pending.isEmpty, pending.last != UInt8(ascii: "\n") {
                    pending.append(UInt8(ascii: "\n"))   // a last line without newline
                }
                let (rest, count) = try LineInput.forEachLine(in: pending, startingAt: lineNumber) { line, number in
                    texts.append(try LineInput.text(from: line, lineNumber: number, plain: lines))
                }
                lineNumber += count
                pending = Array(rest)
                if texts.count >= 2048 || atEnd { flush() }
                if atEnd { break }
            }
        } catch let e as InputError {
            throw fail("stdin \(e)")
        }
        if stats {
            let line = "{\"texts\": \(totalTexts), \"tokens\": \(totalTokens), \"seconds\": \(String(format: "%.3f", seconds))}\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
