import ArgumentParser
import Foundation
import Sextant

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed texts from stdin: one JSON line {\"text\": ...} in, one {\"embedding\": [...]} out, in order.",
        discussion: "An input's \"id\" (and each field named with --keep) is copied to its output line, before \"embedding\". Any error exits non-zero; stdout carries only results.")

    @Option(help: "Model folder (default: $SEXTANT_MODEL, else models/all-MiniLM-L6-v2).")
    var model: String?

    @Flag(help: "Embed the inputs as search queries rather than passages.")
    var query = false

    /// --instruct, --example, --examples (any of them implies --query).
    @OptionGroup var queryOptions: QueryOptions

    @Option(help: "Prompt format: \(PromptFormat.allCases.map(\.rawValue).joined(separator: ", ")) (default: detected from the model folder).")
    var promptFormat: String?

    @Option(help: "GIRCSE refinement: generate K soft tokens and embed their mean hidden state (decoder models with an LM head).")
    var refine: Int?

    @Option(help: "f32 (default, reference results), bf16 (faster on AVX-512 BF16 CPUs, cosine ~0.9999 to f32) or int8 (faster, cosine ~0.999 to f32).")
    var precision: String = "f32"

    @Flag(help: "Read plain text lines instead of JSON lines.")
    var lines = false

    @Option(help: "A field of the input objects to copy to the output lines (repeatable; \"id\" is always copied).")
    var keep: [String] = []

    @Flag(help: "Print {\"texts\", \"tokens\", \"seconds\"} of the embedding work to stderr at the end.")
    var stats = false

    @Option(help: "Tokens per batch (memory per worker grows with it).")
    var batchTokens: Int?

    @Option(help: "Inputs embedded per call (1: one at a time, as a server sees queries; default 2048).")
    var batchLines: Int = 2048

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let r = refine, r < 1 { throw ValidationError("--refine must be at least 1") }
        guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be f32, bf16 or int8") }
        if let f = promptFormat, PromptFormat(rawValue: f) == nil {
            throw ValidationError("unknown --prompt-format '\(f)' (known: \(PromptFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        try queryOptions.checkExampleFormat()
        if let b = batchTokens, b < 1 { throw ValidationError("--batch-tokens must be at least 1") }
        if batchLines < 1 { throw ValidationError("--batch-lines must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if lines && !keep.isEmpty { throw ValidationError("--keep copies fields of JSON input lines; it does not apply to --lines") }
        if keep.contains("embedding") { throw ValidationError("--keep embedding would clash with the output's own field") }
    }

    func run() throws {
        let allExamples = try queryOptions.allExamples()
        let instruct = queryOptions.instruct
        let embedder = try loadEmbedder(model, batchTokens: batchTokens, threads: threads,
                                        promptFormat: promptFormat.flatMap(PromptFormat.init(rawValue:)),
                                        precision: try precisionOption(precision))
        embedder.warn = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
        let isQuery = query || instruct != nil || !allExamples.isEmpty
        let kind: InputKind = isQuery ? .query(instruct: instruct, examples: allExamples) : .passage
        let stdin = FileHandle.standardInput
        let stdout = FileHandle.standardOutput
        var pending: [UInt8] = []
        var texts: [String] = []
        var kept: [[(String, JSONValue)]] = []
        var lineNumber = 1
        var totalTexts = 0, totalTokens = 0
        var seconds = 0.0

        func flush() throws {
            guard !texts.isEmpty else { return }
            let started = Date()
            let vectors: [[Float]]
            if let refine {
                vectors = try embedder.embedRefined(texts, kind: kind, steps: refine)
                totalTokens += texts.reduce(0) { $0 + embedder.tokenizer.tokenize(embedder.prompt(for: $1, kind: kind)).count }
            } else {
                let result = embedder.embedCountingTokens(texts, kind: kind)
                vectors = result.vectors
                totalTokens += result.tokens
            }
            seconds += Date().timeIntervalSince(started)
            totalTexts += texts.count
            var out = ""
            for (i, v) in vectors.enumerated() { out += LineInput.embeddingLine(v, kept: kept.isEmpty ? [] : kept[i]); out += "\n" }
            stdout.write(Data(out.utf8))
            texts.removeAll(keepingCapacity: true)
            kept.removeAll(keepingCapacity: true)
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
                    if lines {
                        texts.append(try LineInput.text(from: line, lineNumber: number, plain: true))
                    } else {
                        let record = try LineInput.record(from: line, lineNumber: number, keep: keep)
                        texts.append(record.text)
                        kept.append(record.kept)
                    }
                }
                lineNumber += count
                pending = Array(rest)
                while texts.count >= batchLines {
                    let rest = Array(texts[batchLines...])
                    let restKept = kept.count > batchLines ? Array(kept[batchLines...]) : []
                    texts.removeSubrange(batchLines...)
                    if kept.count > batchLines { kept.removeSubrange(batchLines...) }
                    try flush()
                    texts = rest
                    kept = restKept
                }
                if atEnd { try flush() }
                if atEnd { break }
            }
        } catch let e as InputError {
            throw fail("stdin \(e)")
        } catch let e as EmbeddingError {
            throw fail("\(e)")
        }
        if stats {
            let line = "{\"texts\": \(totalTexts), \"tokens\": \(totalTokens), \"seconds\": \(String(format: "%.3f", seconds))}\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

/// `QUERY=>PASSAGE` as an example.
func parseExample(_ text: String) throws -> Example {
    guard let arrow = text.range(of: "=>") else {
        throw fail("--example '\(text)' must be written QUERY=>PASSAGE")
    }
    return Example(query: String(text[..<arrow.lowerBound]), response: String(text[arrow.upperBound...]))
}

/// Examples from a JSON lines file of {"query", "response"} (or "passage") objects.
func readExamples(_ path: String) throws -> [Example] {
    guard let data = try? Data(contentsOf: URL(fileURLWithPath: path)) else {
        throw fail("\(path): cannot read the examples file")
    }
    var examples: [Example] = []
    let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    for (i, line) in lines.enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any],
              let q = obj["query"] as? String, let r = (obj["response"] ?? obj["passage"]) as? String else {
            throw fail("\(path): line \(i + 1): expected {\"query\": ..., \"response\": ...}")
        }
        examples.append(Example(query: q, response: r))
    }
    return examples
}
