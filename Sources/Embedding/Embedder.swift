import Dispatch
import Foundation
import Synchronization
import Inference
import Tokenizers

/// Which side of a search an input is on.
public enum InputKind: Sendable, Equatable {
    /// A document or passage, embedded as it is (or with the model's passage prompt).
    case passage
    /// A search query with an optional task instruction and, for in-context-learning models,
    /// worked examples.
    case query(instruct: String? = nil, examples: [Example] = [])
}

/// Turns texts into vectors with a model folder's tokenizer, transformer, pooling and
/// normalization, giving the same vectors as the reference Python implementations.
///
/// Inputs are tokenized, sorted by length and cut into batches under a token budget; the
/// batches are spread over worker threads, each with its own scratch memory. Safe to call from
/// several threads at once.
public final class Embedder: @unchecked Sendable {   // the scratch pool and prefix caches are guarded by `lock`; the model is Sendable
    public let folder: ModelFolder
    public let tokenizer: Tokenizer
    let model: EmbeddingModel
    /// Length of the vectors.
    public var dimensions: Int { model.hiddenSize }
    /// How many texts this embedder has embedded (all calls, all threads).
    public var textsEmbedded: Int { embeddedCount.load(ordering: .relaxed) }
    private let embeddedCount = Atomic<Int>(0)
    /// Tokens per input at most, special tokens (and an appended EOS) included.
    public let maxTokens: Int
    /// Token budget of one batch.
    public let batchTokens: Int
    /// Worker threads used for one call.
    public let threads: Int
    /// How queries and passages are written for this model.
    public let promptFormat: PromptFormat
    /// The token appended to every input (decoders with last-token pooling), if any.
    public let eosToken: Int32?

    private let lock = NSLock()
    private var scratchPool: [Scratch] = []
    /// Key/value caches of recent example prefixes (bge-icl), most recent last.
    private var prefixCaches: [(text: String, tokens: [Int32], cache: KVCache)] = []
    private let prefixCacheLimit = 8
    /// Called with a message when an input is truncated (once per call).
    public var warn: (@Sendable (String) -> Void)? = nil

    /// Loads a model folder.
    /// - Parameters:
    ///   - batchTokens: tokens per batch (memory per worker grows with it; default 4096).
    ///   - threads: worker threads (default: the number of cores).
    ///   - promptFormat: overrides the format detected from the folder.
    ///   - precision: `.bf16` runs the transformer's linear layers in bf16 (opt-in; about twice as
    ///     fast on AVX-512 BF16 machines and half the weight memory, cosine ~0.999 to f32).
    public init(folder url: URL, batchTokens: Int = 4096, threads: Int? = nil, promptFormat: PromptFormat? = nil,
                precision: Precision = .f32) throws {
        let folder = try ModelFolder(url: url)
        self.folder = folder
        tokenizer = try folder.loadTokenizer()
        model = try folder.loadModel(precision: precision)
        maxTokens = min(folder.maxSequenceLength, model.maxPositions)
        self.batchTokens = max(batchTokens, maxTokens)
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        self.promptFormat = promptFormat ?? folder.promptFormat
        if folder.appendEOS {
            // A template that already ends sequences with a token (Qwen3-Embedding appends
            // <|endoftext|> while its eos_token is <|im_end|>) decides what the EOS is.
            guard let eos = tokenizer.template.suffix.last ?? folder.specialTokenId("eos_token", in: tokenizer) else {
                throw EmbeddingError(.badConfig, "\(url.path): last-token pooling needs an EOS token, but neither tokenizer_config.json nor config.json names one")
            }
            eosToken = eos
        } else {
            eosToken = nil
        }
        guard Int(tokenizer.idLimit) <= model.vocabSize else {
            throw EmbeddingError(.badConfig, "\(url.path): tokenizer.json has ids up to \(tokenizer.idLimit - 1) but the model's vocab_size is \(model.vocabSize): tokenizer and weights do not belong together")
        }
    }

    /// The exact string the model sees for `text` on the given side.
    public func prompt(for text: String, kind: InputKind) -> String {
        switch kind {
        case .passage:
            return promptFormat.passage(text, prompts: folder.prompts)
        case let .query(instruct, examples):
            return promptFormat.query(text, instruct: instruct, examples: examples, prompts: folder.prompts).prompt
        }
    }

    /// Token ids for `text` as the model will see them: the prompt, special tokens, at most
    /// `maxTokens` (a query is cut so that its examples and template never are), EOS appended
    /// when the model pools the last token.
    public func tokens(for text: String, kind: InputKind = .passage) -> [Int32] {
        var text = text
        if case .query = kind, promptFormat == .bgeICL {
            // The query sits inside the template: it is cut so that the whole prompt (examples
            // and template around it) fits; the examples are never cut. (In the other formats
            // the query comes last and the tokenizer's own truncation cuts it, as the references do.)
            let overhead = tokenizer.tokenize(prompt(for: "", kind: kind)).count
            let limit = maxTokens - tokenizer.specialTokenCount - (eosToken == nil ? 0 : 1) - overhead
            text = truncated(text, to: max(1, limit))
        }
        return encode(prompt(for: text, kind: kind))
    }

    private func encode(_ prompt: String) -> [Int32] {
        guard let eos = eosToken else { return tokenizer.encode(prompt, maxLength: maxTokens) }
        var ids = tokenizer.encode(prompt, maxLength: maxTokens - 1)
        if ids.last != eos { ids.append(eos) }
        return ids
    }

    /// The longest prefix of `text` whose tokens fit in `limit`.
    private func truncated(_ text: String, to limit: Int) -> String {
        guard tokenizer.tokenize(text).count > limit else { return text }
        let scalars = Array(text.unicodeScalars)
        var (lo, hi) = (0, scalars.count)
        func prefix(_ n: Int) -> String { var s = ""; s.unicodeScalars.append(contentsOf: scalars[..<n]); return s }
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if tokenizer.tokenize(prefix(mid)).count <= limit { lo = mid } else { hi = mid - 1 }
        }
        return prefix(lo)
    }

    /// Embeds `texts`; the result has one vector per text, in order.
    public func embed(_ texts: [String], kind: InputKind = .passage) -> [[Float]] {
        embedCountingTokens(texts, kind: kind).vectors
    }

    /// Embeds `texts` and tells how many tokens the model ran over (prompts and special tokens included).
    public func embedCountingTokens(_ texts: [String], kind: InputKind = .passage) -> (vectors: [[Float]], tokens: Int) {
        let (vectors, counts) = embedWithTokenCounts(texts, kind: kind)
        return (vectors, counts.reduce(0, +))
    }

    /// Whether queries of `kind` reuse a cached prefix (examples on a decoder model).
    public func usesPrefixCache(_ kind: InputKind) -> Bool {
        if case let .query(_, examples) = kind, !examples.isEmpty, model is DecoderModel { return true }
        return false
    }

    /// Embeds `texts` and tells each one's token count (prompt and special tokens included).
    public func embedWithTokenCounts(_ texts: [String], kind: InputKind = .passage) -> (vectors: [[Float]], tokens: [Int]) {
        embeddedCount.add(texts.count, ordering: .relaxed)
        let sequences = tokenizeAll(texts, kind: kind)
        let tokens = sequences.map(\.count)
        let n = sequences.count, dims = dimensions
        if n == 0 { return ([], []) }
        let flat = UnsafeMutablePointer<Float>.allocate(capacity: n * dims)
        defer { flat.deallocate() }
        var prefix: (tokens: [Int32], cache: KVCache)? = nil
        if case let .query(instruct, examples) = kind, !examples.isEmpty, let decoder = model as? DecoderModel {
            let prefixText = promptFormat.query("", instruct: instruct, examples: examples, prompts: folder.prompts).prefix
            if !prefixText.isEmpty { prefix = cachedPrefix(prefixText, decoder: decoder) }
        }
        embed(tokenized: sequences, prefix: prefix, into: flat)
        return ((0..<n).map { Array(UnsafeBufferPointer(start: flat + $0 * dims, count: dims)) }, tokens)
    }

    /// Embeds already tokenized inputs (each at most `maxTokens` long).
    public func embed(tokenized sequences: [[Int32]]) -> [[Float]] {
        let n = sequences.count, dims = dimensions
        if n == 0 { return [] }
        let flat = UnsafeMutablePointer<Float>.allocate(capacity: n * dims)
        defer { flat.deallocate() }
        embed(tokenized: sequences, prefix: nil, into: flat)
        return (0..<n).map { Array(UnsafeBufferPointer(start: flat + $0 * dims, count: dims)) }
    }

    /// Embeds into `output` (`sequences.count × dimensions` floats, row i for input i). With a
    /// `prefix`, each sequence reuses the cached keys and values of the tokens it shares with it.
    func embed(tokenized sequences: [[Int32]], prefix: (tokens: [Int32], cache: KVCache)?, into output: UnsafeMutablePointer<Float>) {
        let dims = dimensions
        // An input with no tokens at all (possible only without special tokens) gets a zero vector.
        for (i, seq) in sequences.enumerated() where seq.isEmpty {
            (output + i * dims).initialize(repeating: 0, count: dims)
        }
        // With a prefix: split each sequence into the shared part (cached) and the rest.
        var work = sequences
        var shared = [Int](repeating: 0, count: sequences.count)
        if let prefix {
            for (i, seq) in sequences.enumerated() {
                var n = 0
                while n < prefix.tokens.count, n < seq.count - 1, seq[n] == prefix.tokens[n] { n += 1 }
                shared[i] = n
                work[i] = Array(seq[n...])
            }
        }
        let batches = Self.batches(lengths: work.map(\.count), budget: batchTokens)
        let next = Counter()
        let workers = min(threads, batches.count)
        // Fewer batches than threads (a single query): the idle threads help within the batch.
        let gemmThreads = max(1, threads / max(1, batches.count))
        concurrentLoop(workers) { _ in
            let scratch = takeScratch()
            defer { returnScratch(scratch) }
            var pooled = [Float]()
            while let b = next.take(below: batches.count) {
                let members = batches[b]
                pooled = [Float](repeating: 0, count: members.count * dims)
                pooled.withUnsafeMutableBufferPointer { buf in
                    let inputs = members.map { work[$0] }
                    if let prefix, let decoder = model as? DecoderModel {
                        let pasts = members.map { shared[$0] > 0 ? (cache: prefix.cache, tokens: shared[$0]) : nil }
                        decoder.encode(inputs, prefixes: pasts, pooling: folder.pooling, scratch: scratch,
                                       output: buf.baseAddress!, threads: gemmThreads)
                    } else {
                        model.encode(inputs, pooling: folder.pooling, scratch: scratch, output: buf.baseAddress!, threads: gemmThreads)
                    }
                    for (j, index) in members.enumerated() {
                        let dst = output + index * dims
                        dst.update(from: buf.baseAddress! + j * dims, count: dims)
                        if folder.normalize { normalizeL2(dst, count: dims) }
                    }
                }
            }
        }
    }

    /// The key/value cache of an examples prefix, computed once and kept for later queries.
    private func cachedPrefix(_ text: String, decoder: DecoderModel) -> (tokens: [Int32], cache: KVCache) {
        lock.lock()
        if let i = prefixCaches.firstIndex(where: { $0.text == text }) {
            let hit = prefixCaches.remove(at: i)
            prefixCaches.append(hit)
            lock.unlock()
            return (hit.tokens, hit.cache)
        }
        lock.unlock()
        let tokens = Array((tokenizer.template.prefix + tokenizer.tokenize(text)).prefix(maxTokens - 1))
        let scratch = takeScratch()
        let cache = decoder.prefill(tokens, scratch: scratch, threads: threads)
        returnScratch(scratch)
        lock.lock()
        prefixCaches.append((text, tokens, cache))
        if prefixCaches.count > prefixCacheLimit { prefixCaches.removeFirst() }
        lock.unlock()
        return (tokens, cache)
    }

    /// GIRCSE refinement (decoders with an LM head): each text, tokenized without special
    /// tokens, is followed by `steps` generated soft tokens; its vector is the normalized mean
    /// of their final hidden states.
    public func embedRefined(_ texts: [String], kind: InputKind = .passage, steps: Int) throws -> [[Float]] {
        guard let decoder = model as? DecoderModel else {
            throw EmbeddingError(.unsupportedModel, "\(folder.name): refinement needs a decoder LLM, not \(folder.architectures.first ?? folder.modelType)")
        }
        guard decoder.hasLanguageModelHead else {
            throw EmbeddingError(.unsupportedModel, "\(folder.name): refinement needs an LM head (lm_head.weight) or tied embeddings")
        }
        guard steps >= 1 else { throw EmbeddingError(.badInput, "refinement needs at least 1 step") }
        let dims = dimensions
        let sequences = texts.map { text -> [Int32] in
            let ids = tokenizer.tokenize(prompt(for: text, kind: kind))
            return Array(ids.prefix(max(1, maxTokens - steps)))
        }
        if let empty = sequences.firstIndex(where: \.isEmpty) {
            throw EmbeddingError(.badInput, "input \(empty + 1) has no tokens to refine")
        }
        var result = [[Float]](repeating: [], count: texts.count)
        let next = Counter()
        result.withUnsafeMutableBufferPointer { out in
            let out = out
            concurrentLoop(min(threads, texts.count)) { _ in
                let scratch = takeScratch()
                defer { returnScratch(scratch) }
                var v = [Float](repeating: 0, count: dims)
                while let i = next.take(below: texts.count) {
                    v.withUnsafeMutableBufferPointer { buf in
                        // Cannot fail: the head and non-empty inputs were checked above.
                        try! decoder.refine(sequences[i], steps: steps, scratch: scratch, output: buf.baseAddress!)
                        normalizeL2(buf.baseAddress!, count: dims)
                    }
                    out[i] = v
                }
            }
        }
        return result
    }

    /// Tokenizes on all workers; warns once if any input was truncated.
    public func tokenizeAll(_ texts: [String], kind: InputKind) -> [[Int32]] {
        var result = [[Int32]](repeating: [], count: texts.count)
        let chunk = 64
        let chunks = (texts.count + chunk - 1) / chunk
        result.withUnsafeMutableBufferPointer { out in
            let out = out
            concurrentLoop(chunks) { c in
                for i in (c * chunk)..<min(texts.count, (c + 1) * chunk) {
                    out[i] = tokens(for: texts[i], kind: kind)
                }
            }
        }
        if let warn, let longest = result.map(\.count).max(), longest >= maxTokens {
            let cut = result.filter { $0.count >= maxTokens }.count
            warn("\(cut) input(s) reached the limit of \(maxTokens) tokens and may have been truncated")
        }
        return result
    }

    /// Groups input indices into batches: longest inputs first, each batch's total tokens within
    /// `budget` (a single input longer than the budget forms its own batch); empty inputs are left out.
    static func batches(lengths: [Int], budget: Int) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] > lengths[$1] }
        var batches: [[Int]] = []
        var current: [Int] = []
        var used = 0
        for i in order where lengths[i] > 0 {
            let len = lengths[i]
            if !current.isEmpty && used + len > budget {
                batches.append(current)
                current = []
                used = 0
            }
            current.append(i)
            used += len
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    private func takeScratch() -> Scratch {
        lock.lock()
        defer { lock.unlock() }
        return scratchPool.popLast() ?? Scratch()
    }

    private func returnScratch(_ s: Scratch) {
        lock.lock()
        scratchPool.append(s)
        lock.unlock()
    }
}

/// A shared counter handing out work items to threads.
final class Counter: Sendable {
    private let value = Mutex(0)

    func take(below limit: Int) -> Int? {
        value.withLock { value in
            guard value < limit else { return nil }
            value += 1
            return value - 1
        }
    }
}
