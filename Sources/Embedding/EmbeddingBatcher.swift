import Dispatch
import Foundation

/// Micro-batches the embedding work of concurrent callers (a server's requests): one worker
/// embeds; whatever requests arrived while it was busy are tokenized and embedded together in
/// its next call (up to `maxInputs` texts), so many small requests share one pass over the
/// model. Queries with in-context examples on a decoder are grouped by their examples and
/// reuse the embedder's prefix cache. Vectors are bit-identical to `Embedder.embed`.
public final class EmbeddingBatcher: @unchecked Sendable {   // mutable state is guarded by `lock`
    public struct Result: Sendable {
        public var vectors: [[Float]]
        /// Tokens of each input, as the model saw it.
        public var tokens: [Int]
    }
    private struct Job {
        var texts: [String]
        var kind: InputKind
        var done: (Result) -> Void
    }

    public let embedder: Embedder
    public let maxInputs: Int
    private let lock = NSLock()
    private var pending: [Job] = []
    private var running = false
    private let queue = DispatchQueue(label: "sextant.server.embed", qos: .userInitiated)
    /// Calls to the model so far and the requests they served (for tests and logs).
    private(set) var batches = 0
    private(set) var jobs = 0

    public init(embedder: Embedder, maxInputs: Int = 512) {
        self.embedder = embedder
        self.maxInputs = maxInputs
    }

    /// Embeds `texts` on one side; vectors in order and each text's token count.
    public func embed(_ texts: [String], kind: InputKind) async -> Result {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result, Never>) in
            lock.lock()
            pending.append(Job(texts: texts, kind: kind, done: { continuation.resume(returning: $0) }))
            let start = !running
            running = true
            lock.unlock()
            if start { queue.async { self.drain() } }
        }
    }

    /// Calls to the model so far and the requests they served.
    public var counts: (batches: Int, jobs: Int) {
        lock.lock(); defer { lock.unlock() }
        return (batches, jobs)
    }

    private func drain() {
        while true {
            lock.lock()
            guard !pending.isEmpty else {
                running = false
                lock.unlock()
                return
            }
            var take = 0, inputs = 0
            while take < pending.count, take == 0 || inputs + pending[take].texts.count <= maxInputs {
                inputs += pending[take].texts.count
                take += 1
            }
            let group = Array(pending[..<take])
            pending.removeFirst(take)
            batches += 1
            jobs += group.count
            lock.unlock()

            // Queries with examples reuse their prefix cache: one call per distinct examples set.
            var plain: [Job] = []
            var prefixed: [(kind: InputKind, jobs: [Job])] = []
            for job in group {
                if embedder.usesPrefixCache(job.kind) {
                    if let i = prefixed.firstIndex(where: { $0.kind == job.kind }) { prefixed[i].jobs.append(job) } else { prefixed.append((job.kind, [job])) }
                } else {
                    plain.append(job)
                }
            }
            for (kind, jobs) in prefixed {
                let (vectors, tokens) = embedder.embedWithTokenCounts(jobs.flatMap(\.texts), kind: kind)
                var at = 0
                for job in jobs {
                    job.done(Result(vectors: Array(vectors[at..<at + job.texts.count]), tokens: Array(tokens[at..<at + job.texts.count])))
                    at += job.texts.count
                }
            }
            guard !plain.isEmpty else { continue }
            let sequences = plain.map { job in job.texts.map { embedder.tokens(for: $0, kind: job.kind) } }
            let vectors = embedder.embed(tokenized: sequences.flatMap { $0 })
            var at = 0
            for (job, seqs) in zip(plain, sequences) {
                job.done(Result(vectors: Array(vectors[at..<at + seqs.count]), tokens: seqs.map(\.count)))
                at += seqs.count
            }
        }
    }
}
