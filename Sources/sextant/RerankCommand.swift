import ArgumentParser
import Foundation
import Sextant
#if canImport(Glibc)
import Glibc
#endif

struct RerankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerank",
        abstract: "Reorder candidates from another system by the embedder: one query's list, or every query of a TREC run.",
        discussion: """
            One query:  sextant rerank --query TEXT --candidates FILE   (JSON lines {"id", "text"} or a JSON array; - reads stdin)
            A run:      sextant rerank --run RUN.trec --queries queries.jsonl (--corpus corpus.jsonl | --index DIR) --run-out OUT.trec
            """)

    @Option(help: "The query (with --candidates).")
    var query: String?

    @Option(help: "Candidates: JSON lines {\"id\", \"text\"} or a JSON array of them (or of strings); - reads stdin.")
    var candidates: String?

    @Option(help: "Print only the best N candidates.")
    var topN: Int?

    @Option(name: .customLong("run"), help: "A TREC run to rerank (qid Q0 docid rank score tag).")
    var runFile: String?

    @Option(help: "The run's queries: BEIR queries.jsonl ({\"_id\", \"text\"}) or qid<TAB>text lines (.tsv).")
    var queries: String?

    @Option(help: "Document texts: a BEIR corpus.jsonl ({\"_id\", \"title\", \"text\"}); only the documents the run needs are embedded.")
    var corpus: String?

    @Option(help: "Score the run's documents by the vectors stored in this collection (instead of --corpus): only the queries are embedded.")
    var index: String?

    @Option(help: "Model folder (default: $SEXTANT_MODEL, else models/all-MiniLM-L6-v2; with --index, the collection's model).")
    var model: String?

    @Option(help: "A reranker model folder: a cross-encoder (BERT/XLM-R …ForSequenceClassification) or an LLM reranker (Qwen3-Reranker). Without it the embedder's cosine ranks.")
    var reranker: String?

    @Option(help: "Tokens per (query, passage) pair for --reranker (default: the model's limit).")
    var maxLength: Int?

    @Option(help: "f32 (default), bf16 (faster on AVX-512 BF16 CPUs, cosine ~0.9999 to f32) or int8 (faster, cosine ~0.999 to f32).")
    var precision: String = "f32"

    @Option(help: "Rerank each query's top N documents; the rest follow in their original order (default 100).")
    var depth: Int?

    @Flag(help: "Fuse the original ranking with the embedder's by reciprocal rank instead of replacing it.")
    var fuse = false

    @Option(help: "k of the reciprocal-rank fusion (default 60).")
    var rrfK: Double?

    @Option(help: "Write the reranked run here (default: stdout).")
    var runOut: String?

    @Option(help: "Relevance judgements (BEIR qrels/test.tsv): report nDCG@10, recall@100 and MRR@10 before and after.")
    var qrels: String?

    @Option(help: "The run tag written in the last column (default sextant-rerank).")
    var tag: String?

    @OptionGroup var queryOptions: QueryOptions

    @Option(help: "A saved task of the --index collection supplying the instruction and examples.")
    var task: String?

    @Flag(help: "JSON output (candidates: the results; runs: the report, which needs --run-out).")
    var json = false

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        let oneQuery = query != nil || candidates != nil
        let runMode = runFile != nil || queries != nil || corpus != nil
        if oneQuery && runMode {
            throw ValidationError("give either --query and --candidates, or --run, --queries and --corpus/--index")
        }
        if runMode {
            guard runFile != nil, queries != nil else { throw ValidationError("--run needs --queries (and the other way round)") }
            guard (corpus == nil) != (index == nil) else {
                throw ValidationError("give the documents' texts with --corpus FILE or their vectors with --index DIR (one of them)")
            }
            if json && runOut == nil { throw ValidationError("--json prints the report, so the run needs --run-out FILE") }
            if topN != nil { throw ValidationError("--top-n is for --candidates; use --depth with a run") }
        } else {
            guard let q = query, candidates != nil else {
                throw ValidationError("give --query TEXT and --candidates FILE, or --run RUN --queries FILE --corpus FILE")
            }
            if q.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--query is empty") }
            if index != nil { throw ValidationError("--index is for reranking a run (--run)") }
            if qrels != nil || runOut != nil || fuse || depth != nil || rrfK != nil || tag != nil {
                throw ValidationError("--qrels, --run-out, --depth, --fuse, --rrf-k and --tag are for reranking a run (--run)")
            }
        }
        if task != nil && index == nil { throw ValidationError("--task needs --index (tasks are saved in a collection)") }
        if reranker != nil {
            if index != nil { throw ValidationError("--reranker reads the documents' texts: give them with --corpus, not --index") }
            if model != nil { throw ValidationError("--model and --reranker: give one (the reranker scores on its own)") }
            if !queryOptions.examples.isEmpty || queryOptions.examplesFile != nil { throw ValidationError("--reranker takes an --instruct but no examples") }
        }
        if let m = maxLength {
            guard reranker != nil else { throw ValidationError("--max-length is for --reranker") }
            if m < 4 { throw ValidationError("--max-length must be at least 4") }
        }
        if Precision(rawValue: precision) == nil { throw ValidationError("--precision must be f32, bf16 or int8") }
        if let n = topN, n < 1 { throw ValidationError("--top-n must be at least 1") }
        if let d = depth, d < 1 { throw ValidationError("--depth must be at least 1") }
        if let k = rrfK, !(k > 0 && k.isFinite) { throw ValidationError("--rrf-k must be a positive number") }
        if let t = tag, t.isEmpty || t.contains(where: \.isWhitespace) { throw ValidationError("--tag must be one word") }
        if rrfK != nil && !fuse { throw ValidationError("--rrf-k needs --fuse") }
        try queryOptions.checkExampleFormat()
    }

    func run() throws {
        if let query, let candidates { return try rerankCandidates(query: query, file: candidates) }
        try rerankRun()
    }

    private var showProgress: Bool { !quiet && isatty(2) == 1 }

    private func progressLine(_ what: String) -> (Int, Int) -> Void {
        guard showProgress else { return { _, _ in } }
        return { done, total in
            FileHandle.standardError.write(Data("\r\(what) \(done)/\(total)\(done == total ? "\n" : "")".utf8))
        }
    }

    private func readInput(_ path: String) throws -> Data {
        if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("\(path): cannot read it") }
        return data
    }

    private func rerankCandidates(query: String, file: String) throws {
        let data = try readInput(file)
        let list = try attempt { try RerankInput.candidates(from: data, source: file == "-" ? "stdin" : file) }
        let ranked: [RerankResult], modelName: String
        if let reranker {
            let scorer = try loadReranker(reranker)
            ranked = try attempt { try scorer.rerank(query: query, instruction: queryOptions.instruct, candidates: list,
                                                     progress: progressLine("scoring candidates")) }
            modelName = scorer.folder.name
        } else {
            let embedder = try loadEmbedder(model, precision: try precisionOption(precision))
            let kind = InputKind.query(instruct: queryOptions.instruct, examples: try queryOptions.allExamples())
            ranked = embedder.rerank(query: query, kind: kind, candidates: list, progress: progressLine("embedding candidates"))
            modelName = embedder.folder.name
        }
        let results = Array(ranked.prefix(topN ?? list.count))
        if json {
            struct Output: Encodable { let query: String; let model: String; let results: [RerankResult] }
            return try printJSON(Output(query: query, model: modelName, results: results))
        }
        for r in results {
            let text = list[r.index].text.split(whereSeparator: \.isNewline).joined(separator: " ")
            let preview = text.count > 80 ? text.prefix(79) + "…" : Substring(text)
            print("\(r.rank). \(String(format: "%.4f", r.score))  \(r.id)  \(preview)")
        }
    }

    private func rerankRun() throws {
        let started = Date()
        let runPath = runFile!, queriesPath = queries!
        let depth = self.depth ?? 100
        let input = try attempt { try TrecRun.parse(try readInput(runPath), source: runPath) }
        let texts = try attempt { try RunReranker.queryTexts(URL(fileURLWithPath: queriesPath)) }
        let judgements = try qrels.map { path in try attempt { try Evaluation.readQrels(URL(fileURLWithPath: path)) } }
        let wanted = input.queries.filter { texts[$0.id] != nil }
        guard !wanted.isEmpty else {
            throw fail("""
                none of the run's \(input.queries.count) queries is in \(queriesPath) \
                (run ids such as '\(input.queries[0].id)', file ids such as '\(texts.keys.sorted().first ?? "none")')
                """)
        }
        let needed = Set(wanted.flatMap { $0.documents.prefix(depth).map(\.id) })
        if let reranker { return try rerankRunWithReranker(reranker, input: input, texts: texts, needed: needed, depth: depth,
                                                           judgements: judgements, started: started) }

        let embedder: Embedder
        let documentVectors: [String: [[Float]]]
        var kind = InputKind.query(instruct: queryOptions.instruct, examples: try queryOptions.allExamples())
        var embedded = 0
        let source = corpus ?? index!
        if let corpus {
            embedder = try loadEmbedder(model, precision: try precisionOption(precision))
            let corpusTexts = try attempt { try RunReranker.corpusTexts(URL(fileURLWithPath: corpus), ids: needed, warn: warnLine) }
            let ids = needed.filter { corpusTexts[$0] != nil }.sorted()
            let vectors = embedder.embedInGroups(ids.map { corpusTexts[$0]! }, progress: progressLine("embedding documents"))
            embedded = ids.count
            documentVectors = Dictionary(uniqueKeysWithValues: zip(ids, vectors.map { [$0] }))
        } else {
            _ = try precisionOption(precision)   // for its bf16 warning
            let c = try openCollection(URL(fileURLWithPath: source), model: model, precision: precision)
            embedder = c.embedder
            if case let .query(instruct, examples) = kind {
                kind = try attempt { try c.queryKind(instruct: instruct, examples: examples, task: task) }
            }
            documentVectors = try attempt { try c.documentVectors(forRunIds: needed) }
        }
        guard !documentVectors.isEmpty else {
            throw fail("none of the \(needed.count) documents the run lists is in \(source) (run ids such as '\(needed.sorted()[0])')")
        }
        let queryIds = wanted.map(\.id)
        let queryVectors = Dictionary(uniqueKeysWithValues: zip(queryIds, embedder.embed(queryIds.map { texts[$0]! }, kind: kind)))
        let (output, report) = RunReranker.rerank(input, queryVectors: queryVectors, documentVectors: documentVectors,
                                                  depth: depth, fusionK: fuse ? (rrfK ?? 60) : nil)
        try finishRun(output: output, report: report, input: input, needed: needed, depth: depth, embedded: embedded,
                      scoredBy: corpus != nil ? " (\(embedded) embedded)" : " (stored vectors)", source: source,
                      judgements: judgements, started: started)
    }

    /// `sextant rerank --run … --reranker DIR`: each query's top documents scored by the cross-encoder.
    private func rerankRunWithReranker(_ folder: String, input: TrecRun, texts: [String: String], needed: Set<String>, depth: Int,
                                       judgements: [String: [String: Int]]?, started: Date) throws {
        let scorer = try loadReranker(folder)
        let source = corpus!
        let corpusTexts = try attempt { try RunReranker.corpusTexts(URL(fileURLWithPath: source), ids: needed, warn: warnLine) }
        guard needed.contains(where: { corpusTexts[$0] != nil }) else {
            throw fail("none of the \(needed.count) documents the run lists is in \(source) (run ids such as '\(needed.sorted()[0])')")
        }
        let progress = progressLine("queries reranked")
        var done = 0
        let total = input.queries.count
        let (output, report) = RunReranker.rerank(input, depth: depth, fusionK: fuse ? (rrfK ?? 60) : nil) { qid, ids in
            defer { done += 1; progress(done, total) }
            guard let query = texts[qid] else { return nil }
            let known = ids.filter { corpusTexts[$0] != nil }
            guard !known.isEmpty else { return ids.map { _ in nil } }
            let scores = scorer.scores(query: query, passages: known.map { corpusTexts[$0]! }, instruction: queryOptions.instruct)
            let byId = Dictionary(zip(known, scores), uniquingKeysWith: { a, _ in a })
            return ids.map { byId[$0] }
        }
        try finishRun(output: output, report: report, input: input, needed: needed, depth: depth, embedded: 0,
                      scoredBy: " by \(scorer.folder.name)", source: source, judgements: judgements, started: started)
    }

    private func loadReranker(_ folder: String) throws -> CrossEncoder {
        do {
            return try CrossEncoder(folder: URL(fileURLWithPath: folder), precision: try precisionOption(precision), maxLength: maxLength)
        } catch {
            throw fail("\(error)")
        }
    }

    /// Writes the reranked run and prints the summary (and the evaluation with --qrels).
    private func finishRun(output: TrecRun, report: RunRerankReport, input: TrecRun, needed: Set<String>, depth: Int, embedded: Int,
                           scoredBy: String, source: String, judgements: [String: [String: Int]]?, started: Date) throws {
        let queriesPath = queries!
        let formatted = output.formatted(tag: tag ?? "sextant-rerank")
        if let runOut {
            try attempt { try formatted.write(toFile: runOut, atomically: true, encoding: .utf8) }
        } else {
            FileHandle.standardOutput.write(Data(formatted.utf8))
        }
        if report.documentsMissing > 0 {
            warnLine("\(report.documentsMissing) of the \(needed.count) documents in the top \(depth) lists are not in \(source); "
                     + "they stay below the reranked ones of their queries")
        }
        if !report.queriesWithoutText.isEmpty {
            let some = report.queriesWithoutText.prefix(3).joined(separator: ", ") + (report.queriesWithoutText.count > 3 ? ", …" : "")
            warnLine("\(report.queriesWithoutText.count) queries of the run are not in \(queriesPath) (\(some)); "
                     + "their lists are written back unchanged")
        }
        let seconds = Date().timeIntervalSince(started)
        let before = judgements.map { Evaluation.score(runs: input.rankings, qrels: $0) }
        let after = judgements.map { Evaluation.score(runs: output.rankings, qrels: $0) }
        if json {
            struct Output: Encodable {
                let report: RunRerankReport; let documentsEmbedded: Int; let seconds: Double
                let input: EvaluationResult?; let reranked: EvaluationResult?
                enum CodingKeys: String, CodingKey { case report, documentsEmbedded = "documents_embedded", seconds, input, reranked }
            }
            return try printJSON(Output(report: report, documentsEmbedded: embedded, seconds: (seconds * 1000).rounded() / 1000,
                                        input: before, reranked: after))
        }
        var lines = ["reranked \(report.queries) queries: \(report.pairsScored) documents scored" + scoredBy
                     + " in \(String(format: "%.1f", seconds)) s"]
        if let before, let after {
            for (name, r) in [("input run", before), ("reranked", after)] {
                lines.append(String(format: "%@  nDCG@10 %.4f  recall@100 %.4f  MRR@10 %.4f  (%d queries)",
                                    name.padding(toLength: 9, withPad: " ", startingAt: 0), r.ndcgAt10, r.recallAt100, r.mrrAt10, r.queries))
            }
        }
        // The summary is the output when the run goes to a file; otherwise stdout carries the run.
        let summary = Data((lines.joined(separator: "\n") + "\n").utf8)
        (runOut != nil ? FileHandle.standardOutput : FileHandle.standardError).write(summary)
    }
}
