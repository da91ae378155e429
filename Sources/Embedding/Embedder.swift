import Dispatch
import Foundation
import Inference
import Tokenizers

/// Which side of a search an input is on.
public enum InputKind: Sendable, Equatable {
    /// A document or passage, embedded as it is (or with the model's passage prompt).
    case passage
    /// A search query, optionally carrying a task instruction.
    case query(instruct: String? = nil)
}

/// Turns texts into vectors with a model folder's tokenizer, transformer, pooling and
/// normalization, giving the same vectors as sentence-transformers.
///
/// Inputs are tokenized, sorted by length and cut into batches under a token budget; the
/// batches are spread over worker threads, each with its own scratch memory. Safe to call from
/// several threads at once.
public final class Embedder: @unchecked Sendable {
    public let folder: ModelFolder
    public let tokenizer: Tokenizer
    let model: EmbeddingModel
    /// Length of the vectors.
    public var dimensions: Int { model.hiddenSize }
    /// Tokens per input at most, special tokens included.
    public let maxTokens: Int
    /// Token budget of one batch.
    public let batchTokens: Int
    /// Worker threads used for one call.
    public let threads: Int

    private let scratchLock = NSLock()
    private var scratchPool: [Scratch] = []

    /// Loads a model folder.
    /// - Parameters:
    ///   - batchTokens: tokens per batch (memory per worker grows with it; default 4096).
    ///   - threads: worker threads (default: the number of cores).
    public init(folder url: URL, batchTokens: Int = 4096, threads: Int? = nil) throws {
        let folder = try ModelFolder(url: url)
        self.folder = folder
        tokenizer = try Tokenizer(contentsOf: url.appendingPathComponent("tokenizer.json"))
        model = try folder.loadModel()
        maxTokens = min(folder.maxSequenceLength, model.maxPositions)
        self.batchTokens = max(batchTokens, maxTokens)
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        guard Int(tokenizer.idLimit) <= model.vocabSize else {
            throw EmbeddingError(.badConfig, "\(url.path): tokenizer.json has ids up to \(tokenizer.idLimit - 1) but the model's vocab_size is \(model.vocabSize): tokenizer and weights do not belong together")
        }
    }

    /// The exact string the model sees for `text` on the given side.
    public func prompt(for text: String, kind: InputKind) -> String {
        switch kind {
        case .passage:
            return (folder.prompts["passage"] ?? folder.prompts["document"] ?? "") + text
        case let .query(instruct):
            if let instruct, !instruct.isEmpty {
                return instruct + " " + text
            }
            return (folder.prompts["query"] ?? "") + text
        }
    }

    /// Token ids for `text` as the model will see them, truncated to `maxTokens`.
    public func tokens(for text: String, kind: InputKind = .passage) -> [Int32] {
        tokenizer.encode(prompt(for: text, kind: kind), maxLength: maxTokens)
    }

    /// Embeds `texts`; the result has one vector per text, in order.
    public func embed(_ texts: [String], kind: InputKind = .passage) -> [[Float]] {
        let sequences = tokenizeAll(texts, kind: kind)
        return embed(tokenized: sequences)
    }

    /// Embeds already tokenized inputs (each at most `maxTokens` long).
    public func embed(tokenized sequences: [[Int32]]) -> [[Float]] {
        let n = sequences.count, dims = dimensions
        if n == 0 { return [] }
        let flat = UnsafeMutablePointer<Float>.allocate(capacity: n * dims)
        defer { flat.deallocate() }
        embed(tokenized: sequences, into: flat)
        return (0..<n).map { Array(UnsafeBufferPointer(start: flat + $0 * dims, count: dims)) }
    }

    /// Embeds into `output` (`sequences.count × dimensions` floats, row i for input i).
    public func embed(tokenized sequences: [[Int32]], into output: UnsafeMutablePointer<Float>) {
        let dims = dimensions
        // An input with no tokens at all (possible only without special tokens) gets a zero vector.
        for (i, seq) in sequences.enumerated() where seq.isEmpty {
            (output + i * dims).initialize(repeating: 0, count: dims)
        }
        let batches = Self.batches(lengths: sequences.map(\.count), budget: batchTokens)
        let next = Counter()
        let workers = min(threads, batches.count)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let scratch = takeScratch()
            defer { returnScratch(scratch) }
            var pooled = [Float]()
            while let b = next.take(below: batches.count) {
                let members = batches[b]
                pooled = [Float](repeating: 0, count: members.count * dims)
                pooled.withUnsafeMutableBufferPointer { buf in
                    model.encode(members.map { sequences[$0] },
                                 pooling: folder.pooling, scratch: scratch, output: buf.baseAddress!)
                    for (j, index) in members.enumerated() {
                        let dst = output + index * dims
                        dst.update(from: buf.baseAddress! + j * dims, count: dims)
                        if folder.normalize { normalizeL2(dst, count: dims) }
                    }
                }
            }
        }
    }

    /// Tokenizes on all workers.
    public func tokenizeAll(_ texts: [String], kind: InputKind) -> [[Int32]] {
        var result = [[Int32]](repeating: [], count: texts.count)
        let chunk = 64
        let chunks = (texts.count + chunk - 1) / chunk
        result.withUnsafeMutableBufferPointer { out in
            let out = out
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in (c * chunk)..<min(texts.count, (c + 1) * chunk) {
                    out[i] = tokens(for: texts[i], kind: kind)
                }
            }
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
        scratchLock.lock()
        defer { scratchLock.unlock() }
        return scratchPool.popLast() ?? Scratch()
    }

    private func returnScratch(_ s: Scratch) {
        scratchLock.lock()
        scratchPool.append(s)
        scratchLock.unlock()
    }
}

/// A shared counter handing out work items to threads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
