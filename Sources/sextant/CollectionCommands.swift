import ArgumentParser
import Foundation
import Sextant
#if canImport(Glibc)
import Glibc
#endif

/// Options shared by the commands that open a collection.
struct CollectionOptions: ParsableArguments {
    @Option(help: "Index folder (default: $SEXTANT_INDEX, else indexes/default).")
    var index: String?

    @Option(help: "Model folder (default: the collection's own model; for a new collection $SEXTANT_MODEL, else models/all-MiniLM-L6-v2).")
    var model: String?

    @Option(help: "f32 (default), bf16 (faster on AVX-512 BF16 CPUs, cosine ~0.9999 to f32) or int8 (faster, cosine ~0.999 to f32).")
    var precision: String = "f32"

    var indexURL: URL {
        URL(fileURLWithPath: index ?? ProcessInfo.processInfo.environment["SEXTANT_INDEX"] ?? "indexes/default")
    }

    func open(chunkTokens: Int? = nil, overlap: Int? = nil, mustExist: Bool = true) throws -> Collection {
        try openCollection(indexURL, model: model, precision: precision, chunkTokens: chunkTokens, overlap: overlap, mustExist: mustExist)
    }
}

/// Opens the collection in `directory` (which must exist unless `mustExist` is false), turning
/// every failure into one clear line.
func openCollection(_ directory: URL, model: String?, precision: String, chunkTokens: Int? = nil, overlap: Int? = nil,
                    mustExist: Bool = true) throws -> Collection {
    if mustExist && !Collection.exists(at: directory) {
        throw fail("\(directory.path) is not a collection yet: run sextant index FOLDER --index \(directory.path) first")
    }
    do {
        guard let precision = Precision(rawValue: precision) else { throw fail("--precision must be f32, bf16 or int8") }
        return try Collection(directory: directory, model: model.map { URL(fileURLWithPath: $0) }, defaultModel: modelURL(nil),
                              chunkTokens: chunkTokens, overlapTokens: overlap, precision: precision, warn: warnLine)
    } catch let e as ExitCode {
        throw e
    } catch {
        throw fail("\(error)")
    }
}

func warnLine(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

/// Writes a JSON value as one line on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Runs a library call, turning its errors into one clear line (after `context`) and a non-zero exit.
func attempt<T>(context: String? = nil, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch {
        throw fail(context.map { "\($0): \(error)" } ?? "\(error)")
    }
}

/// Query-side options: instruction and worked examples (`search`, `embed`).
struct QueryOptions: ParsableArguments {
    @Option(help: "Task instruction for the query (for embed: implies --query).")
    var instruct: String?

    @Option(name: .customLong("example"), help: "A worked example 'QUERY=>PASSAGE' (repeatable; for in-context-learning models).")
    var examples: [String] = []

    @Option(name: .customLong("examples"), help: "A JSON lines file of examples {\"query\", \"response\"}.")
    var examplesFile: String?

    /// Refuses an `--example` without `=>` before any work starts (for a command's `validate`).
    func checkExampleFormat() throws {
        for e in examples where !e.contains("=>") {
            throw ValidationError("--example '\(e)' must be written QUERY=>PASSAGE")
        }
    }

    func allExamples() throws -> [Example] {
        try examples.map(parseExample) + (examplesFile.map(readExamples) ?? [])
    }
}

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index", abstract: "Index folders (or files): embed new and changed files, drop deleted ones.")

    @Argument(help: "Folders or files to index.")
    var folders: [String]

    @OptionGroup var collection: CollectionOptions

    @Option(help: "Chunk size in model tokens (new collections; default 200; 0: one chunk per document, cut at the model's limit).")
    var chunkTokens: Int?

    @Option(help: "Tokens shared by consecutive chunks (new collections; default 32).")
    var overlap: Int?

    @Option(help: "Only files matching this glob (repeatable).")
    var include: [String] = []

    @Option(help: "Skip files and folders matching this glob (repeatable).")
    var exclude: [String] = []

    @Option(help: "Skip files larger than this many MB.")
    var maxFileMb: Int = 100

    @Flag(help: "No progress bar.")
    var quiet = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if folders.isEmpty { throw ValidationError("give at least one folder to index") }
        if let c = chunkTokens, c != 0, c < 8 { throw ValidationError("--chunk-tokens must be 0 or at least 8") }
        if let o = overlap, o < 0 { throw ValidationError("--overlap must not be negative") }
        if maxFileMb < 1 { throw ValidationError("--max-file-mb must be at least 1") }
    }

    func run() throws {
        let c = try collection.open(chunkTokens: chunkTokens, overlap: overlap, mustExist: false)
        var options = SyncOptions(folders: folders.map { URL(fileURLWithPath: $0) }, include: include, exclude: exclude)
        options.maxFileBytes = maxFileMb * 1_000_000
        let bar = ProgressBar(enabled: !quiet && isatty(2) == 1)
        let report = try attempt { try c.sync(options, progress: bar.update) }
        bar.finish()
        if json { return try printJSON(report) }
        let rate = report.embedSeconds > 0 ? Double(report.chunksEmbedded) / report.embedSeconds : 0
        print("""
            \(report.documentsAdded) added, \(report.documentsUpdated) updated, \(report.documentsRemoved) removed, \
            \(report.documentsUnchanged) unchanged, \(report.filesSkipped) skipped; \(report.chunksEmbedded) chunks embedded \
            in \(String(format: "%.1f", report.seconds)) s (\(String(format: "%.0f", rate)) chunks/s)
            """)
    }
}

/// A one-line progress bar on stderr: files, chunks, chunks/s, ETA.
final class ProgressBar {
    let enabled: Bool
    private var last = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: SyncProgress) {
        guard enabled, Date().timeIntervalSince(last) > 0.2 || p.filesDone == p.filesTotal else { return }
        last = Date()
        let fraction = p.filesTotal > 0 ? Double(p.filesDone) / Double(p.filesTotal) : 1
        let width = 24
        let filled = Int(fraction * Double(width))
        let eta = fraction > 0.01 ? p.seconds / fraction - p.seconds : 0
        let line = "\r[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] "
            + "\(p.filesDone)/\(p.filesTotal) files, \(p.chunksEmbedded) chunks, \(String(format: "%.0f", p.chunksPerSecond)) chunks/s, "
            + "ETA \(String(format: "%.0f", eta)) s  "
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Search a collection.")

    @Argument(help: "The query.")
    var query: String = ""

    @OptionGroup var collection: CollectionOptions
    @OptionGroup var queryOptions: QueryOptions

    @Option(help: "A saved task (sextant task add) supplying the instruction and examples.")
    var task: String?

    @Option(name: .short, help: "Number of hits.")
    var k: Int = 10

    @Option(help: "dense, lexical or hybrid.")
    var mode: String = "hybrid"

    @Option(help: "Only documents whose path matches this glob, e.g. '*.md' or '/notes/*'.")
    var filter: String?

    @Option(name: .customLong("where"), help: ArgumentHelp("Only documents whose metadata matches this JSON filter, e.g. '{\"tags\": {\"$contains\": \"physics\"}}' (see README: filters).", valueName: "json"))
    var whereFilter: String?

    @Flag(help: "Print the hits as JSON (see README: search output).")
    var json = false

    @Option(help: "Run every query of a file (JSON lines {\"text\"} or plain lines) instead of QUERY; with --json one line per query.")
    var queries: String?

    @Flag(help: "Print latency percentiles (embed + search + rescore) of the queries to stderr.")
    var latency = false

    @Flag(help: "Hits without snippets (the cheapest: e.g. candidates for a reranker).")
    var noSnippets = false

    @Flag(help: "Hits with their whole chunk text instead of a snippet.")
    var fullText = false

    @Flag(help: "Dense candidates by brute force over every (matching) chunk instead of the index: slow, to measure recall.")
    var exact = false

    @Option(help: "A reranker model folder (cross-encoder or LLM reranker): the best --rerank-depth hits are read again with the query and reordered.")
    var rerank: String?

    @Option(help: "Hits the reranker reads (default 50; at least -k).")
    var rerankDepth: Int?

    var hitText: HitText { noSnippets ? .none : fullText ? .full : .snippet }

    func validate() throws {
        guard SearchMode(rawValue: mode) != nil else { throw ValidationError("--mode must be dense, lexical or hybrid") }
        guard (1...10_000).contains(k) else { throw ValidationError("-k must be in 1...10000") }
        if query.isEmpty && queries == nil { throw ValidationError("give a QUERY or --queries FILE") }
        if let filter, filter.isEmpty { throw ValidationError("--filter is empty: give a glob such as '*.md', or leave it out") }
        if noSnippets && fullText { throw ValidationError("--no-snippets and --full-text exclude each other") }
        if let d = rerankDepth {
            guard rerank != nil || task != nil else { throw ValidationError("--rerank-depth needs --rerank DIR (or a --task that names a reranker)") }
            guard (1...10_000).contains(d) else { throw ValidationError("--rerank-depth must be in 1...10000") }
        }

        if let whereFilter {
            do { _ = try MetadataFilter.parse(whereFilter) } catch { throw ValidationError("--where: \(error)") }
        }
    }

    /// The `--where` filter (checked in `validate`).
    var metadataFilter: MetadataFilter? { whereFilter.flatMap { try? MetadataFilter.parse($0) } }

    /// The reranker of `--rerank`, else the one `--task` names (with its depth), loaded once.
    func loadReranker(_ c: Collection) throws -> (CrossEncoder, depth: Int)? {
        var folder = rerank, depth = rerankDepth
        if folder == nil, let task, let saved = try attempt({ try c.taskReranker(named: task) }) {
            folder = saved.folder
            depth = depth ?? saved.depth
        }
        guard let folder else {
            if rerankDepth != nil { throw fail("--rerank-depth: task '\(task ?? "")' names no reranker; give --rerank DIR") }
            return nil
        }
        do { return (try CrossEncoder(folder: URL(fileURLWithPath: folder)), max(k, depth ?? 50)) } catch { throw fail("\(error)") }
    }

    /// One search, reranked when a reranker is given.
    func search(_ c: Collection, _ request: SearchRequest, reranker: (CrossEncoder, depth: Int)?) throws -> [SearchHit] {
        guard let reranker else { return try c.search(request) }
        return try c.search(request, reranker: reranker.0, depth: reranker.depth)
    }

    func run() throws {
        let c = try collection.open()
        let reranker = try loadReranker(c)
        if let queries { return try runMany(c, file: queries, reranker: reranker) }
        let request = SearchRequest(query: query, instruct: queryOptions.instruct, examples: try queryOptions.allExamples(),
                                    task: task, k: k, mode: SearchMode(rawValue: mode)!, pathFilter: filter, filter: metadataFilter,
                                    text: hitText, exact: exact)
        let hits = try attempt { try search(c, request, reranker: reranker) }
        if json {
            struct Output: Encodable { let query: String; let mode: String; let k: Int; let hits: [SearchHit] }
            return try printJSON(Output(query: query, mode: mode, k: k, hits: hits))
        }
        if hits.isEmpty { print("no results") }
        let cwd = FileManager.default.currentDirectoryPath + "/"
        for h in hits {
            let path = h.path.hasPrefix(cwd) ? String(h.path.dropFirst(cwd.count)) : h.path
            let heading = h.headingPath.isEmpty ? "" : "  § \(h.headingPath)"
            print("\(h.rank). \(String(format: "%.4f", h.score))  \(path):\(h.lineStart)-\(h.lineEnd)\(heading)")
            if let snippet = h.snippet { print("   \(snippet)") }
            if let text = h.text { print(text.split(separator: "\n", omittingEmptySubsequences: false).map { "   " + $0 }.joined(separator: "\n")) }
        }
    }
}

extension SearchCommand {
    /// Every query of a file, one after another, as a server would see them.
    func runMany(_ c: Collection, file: String, reranker: (CrossEncoder, depth: Int)?) throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw fail("\(file): cannot read the queries") }
        var texts: [(line: Int, text: String)] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            // Blank lines (a trailing newline, spacing between queries) are not queries.
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let isJSON = line.first == UInt8(ascii: "{")
            do {
                texts.append((i + 1, try LineInput.text(from: ArraySlice(line), lineNumber: i + 1, plain: !isJSON)))
            } catch {
                throw fail("\(file): \(error)")
            }
        }
        let examples = try queryOptions.allExamples()
        let where_ = metadataFilter
        var times: [Double] = []
        for (lineNumber, text) in texts {
            let started = Date()
            let hits = try attempt(context: "\(file) line \(lineNumber)") {
                try search(c, SearchRequest(query: text, instruct: queryOptions.instruct, examples: examples, task: task,
                                            k: k, mode: SearchMode(rawValue: mode)!, pathFilter: filter, filter: where_, text: hitText,
                                            exact: exact), reranker: reranker)
            }
            times.append(Date().timeIntervalSince(started))
            if json {
                struct Output: Encodable { let query: String; let hits: [SearchHit] }
                try printJSON(Output(query: text, hits: hits))
            } else {
                print("\(text)\t\(hits.first.map { "\($0.path):\($0.lineStart)" } ?? "no results")")
            }
        }
        if latency, !times.isEmpty {
            let sorted = times.sorted()
            func pct(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)] * 1000 }
            let line = String(format: "{\"queries\": %d, \"mode\": \"%@\", \"p50_ms\": %.2f, \"p90_ms\": %.2f, \"p99_ms\": %.2f, \"mean_ms\": %.2f}\n",
                              times.count, mode, pct(0.5), pct(0.9), pct(0.99), times.reduce(0, +) / Double(times.count) * 1000)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Saved tasks: an instruction and examples used by search --task.",
        subcommands: [Add.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Save (or replace) a task.")
        @Argument(help: "Task name.") var name: String
        @OptionGroup var collection: CollectionOptions
        @Option(help: "The instruction.") var instruct: String
        @Option(name: .customLong("example"), help: "A worked example 'QUERY=>PASSAGE' (repeatable).") var examples: [String] = []
        @Option(name: .customLong("examples"), help: "A JSON lines file of examples.") var examplesFile: String?
        @Option(help: "A reranker model folder that search --task uses by default.") var rerank: String?
        @Option(help: "Hits that reranker reads (default 50).") var rerankDepth: Int?

        func validate() throws {
            if rerankDepth != nil && rerank == nil { throw ValidationError("--rerank-depth needs --rerank DIR") }
        }

        func run() throws {
            let c = try collection.open()
            let all = try examples.map(parseExample) + (examplesFile.map(readExamples) ?? [])
            try attempt { try c.saveTask(name: name, instruct: instruct, examples: all, reranker: rerank, rerankDepth: rerankDepth) }
            print("saved task '\(name)' (\(all.count) example\(all.count == 1 ? "" : "s")\(rerank == nil ? "" : ", reranked"))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List saved tasks.")
        @OptionGroup var collection: CollectionOptions
        @Flag(help: "JSON output.") var json = false

        func run() throws {
            let c = try collection.open()
            let tasks = try attempt { try c.tasks() }
            if json {
                struct T: Encodable { let name: String; let instruct: String; let examples: [Example]; let reranker: String?; let rerank_depth: Int? }
                return try printJSON(tasks.map { T(name: $0.name, instruct: $0.instruct, examples: $0.examples, reranker: $0.reranker, rerank_depth: $0.rerankDepth) })
            }
            if tasks.isEmpty { print("no saved tasks") }
            for t in tasks {
                print("\(t.name): \(t.instruct) (\(t.examples.count) examples\(t.reranker.map { ", reranked by \($0)" } ?? ""))")
            }
        }
    }
}

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe a collection.")
    @OptionGroup var collection: CollectionOptions
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let info = try attempt { try collection.open().info() }
        if json { return try printJSON(info) }
        print("""
            collection: \(info.directory)
            documents:  \(info.documents)
            chunks:     \(info.chunks)
            model:      \(info.model) (\(info.dimensions) dimensions, prompt format \(info.promptFormat), weights sha256 \(info.modelSHA256.prefix(16))…)
            chunking:   \(info.chunkTokens) tokens, overlap \(info.overlapTokens)
            on disk:    \(info.databaseBytes / 1024) KiB database, \(info.indexBytes / 1024) KiB vector index (\(info.bytesPerChunkOnDisk) bytes per chunk)
            in memory:  \(info.indexMemoryBytes / 1024) KiB vector index (\(info.bytesPerChunkInMemory) bytes per chunk; full vectors are read from the database)
            fields:     \(info.fields.isEmpty ? "none" : info.fields.map { "\($0.name) (\($0.documents))" }.joined(separator: ", "))
            """)
    }
}

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove files or folders from a collection.")
    @Argument(help: "Paths (files, folders, or file#id records).") var paths: [String]
    @OptionGroup var collection: CollectionOptions

    func run() throws {
        let c = try collection.open()
        let total = try attempt { try c.remove(paths: paths) }
        print("removed \(total) document\(total == 1 ? "" : "s")")
    }
}

struct ReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex", abstract: "Re-embed every chunk (e.g. with another --model) and rebuild the vector index.")
    @OptionGroup var collection: CollectionOptions

    func run() throws {
        let (n, model) = try attempt {
            try Collection.reindex(directory: collection.indexURL, model: collection.model.map { URL(fileURLWithPath: $0) }, warn: warnLine)
        }
        print("re-embedded \(n) documents with \(model.lastPathComponent)")
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Index a BEIR dataset into a temporary collection and report nDCG@10, recall@100, MRR@10.")
    @Argument(help: "BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.") var beir: String
    @Option(help: "Model folder (default: $SEXTANT_MODEL, else models/all-MiniLM-L6-v2).") var model: String?
    @Option(help: "dense, lexical or hybrid.") var mode: String = "dense"
    @Option(help: "Write the run (top 100 per query) in TREC format.") var runOut: String?
    @Option(help: "f32 (default), bf16 or int8: the precision of the embedder's matrix products.") var precision: String = "f32"
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard SearchMode(rawValue: mode) != nil else { throw ValidationError("--mode must be dense, lexical or hybrid") }
        guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be f32, bf16 or int8") }
    }

    func run() throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("sextant-eval-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: temp) }
        let say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let (result, run) = try attempt { () -> (EvaluationResult, [(query: String, docs: [(id: String, score: Double)])]) in
            // One chunk per document, cut at the model's limit, as the reference exact search embeds.
            let c = try Collection(directory: temp, model: modelURL(model), defaultModel: modelURL(nil),
                                   chunkTokens: 0, overlapTokens: 0, precision: try precisionOption(precision), warn: warnLine)
            return try c.evaluate(beir: URL(fileURLWithPath: beir), mode: SearchMode(rawValue: mode)!, progress: say)
        }
        if let runOut {
            try attempt { try Evaluation.trecRun(run, tag: "sextant-\(mode)").write(toFile: runOut, atomically: true, encoding: .utf8) }
        }
        if json { return try printJSON(result) }
        print(String(format: "nDCG@10 %.4f  recall@100 %.4f  MRR@10 %.4f  (%d queries, %@)",
                     result.ndcgAt10, result.recallAt100, result.mrrAt10, result.queries, mode))
    }
}
