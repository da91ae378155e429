import Foundation

/// An approximate nearest-neighbour index: an HNSW graph walked on int8 codes, its best
/// candidates rescored with full-precision vectors.
///
/// Ids are the caller's UInt64 keys; adding an existing id replaces its vector (a delete and an
/// insert). Until `parameters.trainingSize` vectors have arrived they are held and searched
/// exactly; then the quantizer is fitted on them and the graph is built. Many searches may run
/// at once with one writer (a readers-writer lock); a search never sees a half-inserted node.
/// `filter` closures run under the read lock and must not call back into the index's writers.
public final class HNSWIndex: @unchecked Sendable {   // the graph and vectors are guarded by `lock` (readers-writer)
    public let dimensions: Int
    public let metric: Metric
    public let parameters: HNSWParameters

    let lock = ReadWriteLock()
    var graph: HNSWGraph?
    var slotOf: [UInt64: UInt32] = [:]
    var pending = PendingVectors()
    let pool: ScratchPool
    var writerScratch: SearchScratch
    private var source: FullVectorSource?
    private var insertsSinceConnectivity = 0

    /// Filters expected to match fewer than this many ids per unit of ef are answered by a scan
    /// of the matching ids' codes instead of a walk of the graph.
    static let exactScanFactor = 10.0
    /// Filters matching less than this share of the live ids are answered by a scan of their
    /// codes too (the scan costs a few nanoseconds per slot; a walk slows as matches thin out).
    static let codeScanShare = 0.125

    /// Creates an empty index. Throws `invalidArgument` on bad dimensions or parameters.
    public init(dimensions: Int, metric: Metric = .cosine, parameters: HNSWParameters = HNSWParameters()) throws {
        guard dimensions >= 1, dimensions <= 65_536 else {
            throw VectorIndexError(.invalidArgument, "dimensions must be in 1...65536, got \(dimensions)")
        }
        try parameters.validate()
        self.dimensions = dimensions
        self.metric = metric
        self.parameters = parameters
        pool = ScratchPool(dimensions: dimensions, maxDegree: 2 * parameters.m)
        writerScratch = SearchScratch(dimensions: dimensions, maxDegree: 2 * parameters.m)
    }

    /// Builds a fresh index from full vectors (e.g. after a damaged file): the quantizer is
    /// fitted on a sample of all of them, then they are inserted in order.
    public static func rebuild(dimensions: Int, metric: Metric = .cosine, parameters: HNSWParameters = HNSWParameters(),
                               from items: [(id: UInt64, vector: [Float])],
                               vectorSource: FullVectorSource? = nil) throws -> HNSWIndex {
        let index = try HNSWIndex(dimensions: dimensions, metric: metric, parameters: parameters)
        index.vectorSource = vectorSource
        try index.lock.writing {
            var prepared: [[Float]] = []
            prepared.reserveCapacity(items.count)
            for item in items { prepared.append(try Distance.prepare(item.vector, dimensions: dimensions, metric: metric)) }
            guard !items.isEmpty else { return }
            let step = max(1, items.count / max(parameters.trainingSize, 4096))
            var sample: [Float] = []
            for i in stride(from: 0, to: items.count, by: step) { sample.append(contentsOf: prepared[i]) }
            index.startGraph(sample: sample, count: sample.count / dimensions)
            for (item, v) in zip(items, prepared) { index.insertPrepared(id: item.id, v) }
            index.graph?.connectUnreachable(scratch: &index.writerScratch)
        }
        return index
    }

    /// Rebuilds the graph from `items` (every live vector, e.g. from the caller's store), so that
    /// the slots of deleted vectors are given back. The new graph is built aside and swapped in
    /// under the write lock; searches before the swap see the old one.
    public func compact(from items: [(id: UInt64, vector: [Float])]) throws {
        let fresh = try HNSWIndex.rebuild(dimensions: dimensions, metric: metric, parameters: parameters, from: items)
        let (freshGraph, freshSlots, freshPending) = fresh.lock.reading { (fresh.graph, fresh.slotOf, fresh.pending) }
        lock.writing {
            graph = freshGraph
            slotOf = freshSlots
            pending = freshPending
            insertsSinceConnectivity = 0
        }
    }

    /// Where full vectors come from when the index does not store them.
    public var vectorSource: FullVectorSource? {
        get { lock.reading { source } }
        set { lock.writing { source = newValue } }
    }

    /// Live vectors in the index.
    public var count: Int {
        lock.reading { graph.map { $0.liveCount } ?? pending.ids.count }
    }

    /// Slots held in memory and in the index file: the live vectors, tombstones and freed slots
    /// (reused by later inserts). Well above `count` after many deletes.
    public var slotCount: Int {
        lock.reading { graph.map { $0.slotCount } ?? pending.ids.count }
    }

    /// The ids of every live vector, in no particular order.
    public var ids: [UInt64] {
        lock.reading { graph == nil ? pending.ids : Array(slotOf.keys) }
    }

    /// Whether `id` is in the index.
    public func contains(id: UInt64) -> Bool {
        lock.reading { slotOf[id] != nil || pending.position[id] != nil }
    }

    // MARK: Writes

    /// Adds `vector` under `id`, replacing any vector the id had.
    public func add(id: UInt64, vector: [Float]) throws {
        let v = try Distance.prepare(vector, dimensions: dimensions, metric: metric)
        lock.writing {
            if let graph {
                if let old = slotOf.removeValue(forKey: id) { graph.markDeleted(old) }
                insertPrepared(id: id, v)
                repairIfDue()
            } else {
                pending.remove(id)
                pending.append(id, v)
                if pending.ids.count >= parameters.trainingSize { trainOnPending() }
            }
        }
    }

    /// Removes `id`; throws `notFound` when it is not in the index. Its node becomes a
    /// tombstone until the next repair frees and relinks it.
    public func remove(id: UInt64) throws {
        try lock.writing {
            if let graph {
                guard let slot = slotOf.removeValue(forKey: id) else {
                    throw VectorIndexError(.notFound, "id \(id) is not in the index")
                }
                graph.markDeleted(slot)
                repairIfDue()
            } else {
                guard pending.remove(id) else { throw VectorIndexError(.notFound, "id \(id) is not in the index") }
            }
        }
    }

    /// Relinks around all tombstones now, frees their slots for reuse, and links every live
    /// node that a walk from the entry point no longer reaches. (Writes do this on their own
    /// once tombstones pass `repairFraction`, and check reachability every 1024 inserts or
    /// 1/32 of the index; under inner product, where unreachable nodes are most common, call it
    /// after a batch of inserts.)
    public func repair() {
        lock.writing { graph?.repair(scratch: &writerScratch) }
    }

    /// Throws `invariant` when the graph breaks one of its invariants: degree bounds, links to
    /// freed slots, in-degree records, the entry point not on the top level, a live node not
    /// reachable from it (see `repair()` for when reachability is restored; pass
    /// `reachability: false` to check the rest only).
    public func checkInvariants(reachability: Bool = true) throws {
        try lock.reading {
            var scratch = pool.take()
            defer { pool.give(scratch) }
            try graph?.checkInvariants(scratch: &scratch, reachability: reachability)
            let live = graph?.liveCount ?? 0
            guard slotOf.count == live else {
                throw VectorIndexError(.invariant, "\(slotOf.count) ids map to slots, \(live) live nodes")
            }
            if let graph {
                for (id, slot) in slotOf where graph.states[Int(slot)] != .live || graph.labels[Int(slot)] != id {
                    throw VectorIndexError(.invariant, "id \(id) maps to slot \(slot), which does not hold it")
                }
            }
        }
    }

    private func repairIfDue() {
        guard let graph, graph.deletedCount > 0 else { return }
        let used = graph.liveCount + graph.deletedCount
        if Double(graph.deletedCount) >= parameters.repairFraction * Double(used) {
            graph.repair(scratch: &writerScratch)
        }
    }

    func insertPrepared(id: UInt64, _ v: [Float]) {
        let graph = graph!
        let slot = v.withUnsafeBufferPointer { graph.insert(label: id, vector: $0.baseAddress!, scratch: &writerScratch) }
        slotOf[id] = slot
        insertsSinceConnectivity += 1
        if insertsSinceConnectivity >= max(1024, graph.liveCount / 32) {
            graph.connectUnreachable(scratch: &writerScratch)
            insertsSinceConnectivity = 0
        }
    }

    func startGraph(sample: [Float], count: Int) {
        let q = sample.withUnsafeBufferPointer { ScalarQuantizer(fitting: $0.baseAddress!, count: count, dimensions: dimensions) }
        graph = HNSWGraph(dimensions: dimensions, metric: metric, parameters: parameters, quantizer: q)
    }

    private func trainOnPending() {
        startGraph(sample: pending.vectors, count: pending.ids.count)
        for (i, id) in pending.ids.enumerated() {
            insertPrepared(id: id, Array(pending.vectors[i * dimensions..<(i + 1) * dimensions]))
        }
        pending = PendingVectors()
    }

    // MARK: Search

    /// The `k` nearest live vectors to `query` (fewer when fewer match), nearest first, with
    /// exact distances. `ef` (default `parameters.ef`, raised to k) sizes the candidate list;
    /// `filter` keeps only ids it returns true for; the best `k × oversampling` (default
    /// `parameters.oversampling`) candidates are rescored with full vectors. A caller that
    /// knows how many live ids pass the filter says so in `filterMatches` (else it is estimated
    /// from a sample); few matches are answered by an exact scan over them. `exact` always
    /// scans (brute force, for checking recall). Throws on a bad query, k < 0, ef < 1 or
    /// oversampling < 1.
    public func search(_ query: [Float], k: Int, ef: Int? = nil, filter: ((UInt64) -> Bool)? = nil,
                       filterMatches: Int? = nil, oversampling: Int? = nil,
                       exact: Bool = false) throws -> [(id: UInt64, distance: Float)] {
        try search(query, k: k, ef: ef, filter: filter, filterMatches: filterMatches, candidates: nil, oversampling: oversampling, exact: exact)
    }

    /// `search` keeping only the ids in `allowed`: membership is a bit test inside the walk,
    /// and when few ids are allowed only their codes are scanned.
    public func search(_ query: [Float], k: Int, ef: Int? = nil, allowed: IDBitmap, oversampling: Int? = nil,
                       exact: Bool = false) throws -> [(id: UInt64, distance: Float)] {
        try allowed.words.withUnsafeBufferPointer { words in
            let filter: (UInt64) -> Bool = { id in
                let w = Int(truncatingIfNeeded: id >> 6)
                return w < words.count && words[w] & (1 << (id & 63)) != 0
            }
            return try search(query, k: k, ef: ef, filter: filter, filterMatches: allowed.count, candidates: allowed,
                              oversampling: oversampling, exact: exact)
        }
    }

    private func search(_ query: [Float], k: Int, ef: Int?, filter: ((UInt64) -> Bool)?, filterMatches: Int?, candidates: IDBitmap?,
                        oversampling: Int?, exact: Bool) throws -> [(id: UInt64, distance: Float)] {
        guard k >= 0 else { throw VectorIndexError(.invalidArgument, "k must not be negative, got \(k)") }
        if let ef, ef < 1 { throw VectorIndexError(.invalidArgument, "ef must be at least 1, got \(ef)") }
        if let oversampling, oversampling < 1 {
            throw VectorIndexError(.invalidArgument, "oversampling must be at least 1, got \(oversampling)")
        }
        let rescored = k * (oversampling ?? parameters.oversampling)
        let q = try Distance.prepare(query, dimensions: dimensions, metric: metric)
        guard k > 0 else { return [] }
        return try lock.reading {
            try q.withUnsafeBufferPointer { qp -> [(id: UInt64, distance: Float)] in
                let qv = qp.baseAddress!
                guard let graph else { return pending.exactSearch(qv, k: k, dimensions: dimensions, metric: metric, filter: filter) }
                guard graph.liveCount > 0 else { return [] }
                if exact { return try exactScan(graph, qv, k: k, filter: filter) }
                let efUsed = max(ef ?? parameters.ef, k)
                var scratch = pool.take()
                defer { pool.give(scratch) }
                if let filter {
                    // Few matches: a walk would wander through slots that do not match; scanning
                    // the matching codes, then rescoring the best, is cheaper and finds them all.
                    let matches = filterMatches.map(Double.init) ?? estimatedMatches(graph, filter)
                    if matches < max(Self.exactScanFactor * Double(efUsed), Double(graph.liveCount) * Self.codeScanShare) {
                        if let candidates {
                            var slots: [UInt32] = []
                            slots.reserveCapacity(Int(matches))
                            candidates.forEach { id in
                                if let s = slotOf[id], graph.states[Int(s)] == .live { slots.append(s) }
                            }
                            graph.scanCodes(qv, keep: rescored, slots: slots, scratch: &scratch)
                        } else {
                            graph.scanCodes(qv, keep: rescored, filter: filter, scratch: &scratch)
                        }
                        return try rescore(graph, qv, k: k, count: rescored, scratch: &scratch)
                    }
                }
                graph.search(qv, ef: efUsed, filter: filter, scratch: &scratch)
                if scratch.results.count < k && (filter != nil || scratch.results.count < graph.liveCount) {
                    return try exactScan(graph, qv, k: k, filter: filter)
                }
                return try rescore(graph, qv, k: k, count: rescored, scratch: &scratch)
            }
        }
    }

    /// The candidates in `scratch.results`, nearest `count` by code distance,
    /// rescored with full vectors; the best k of them.
    private func rescore(_ graph: HNSWGraph, _ q: UnsafePointer<Float>, k: Int, count: Int,
                         scratch: inout SearchScratch) throws -> [(id: UInt64, distance: Float)] {
        while scratch.results.count > count { scratch.results.pop() }
        var out = try fullDistances(graph, q, scratch.results.items.map(\.slot))
        out.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
        if out.count > k { out.removeLast(out.count - k) }
        return out
    }

    /// Exact search over the live ids that pass `filter`, with full vectors (read from the
    /// vector source in batches when the index keeps none).
    private func exactScan(_ graph: HNSWGraph, _ q: UnsafePointer<Float>, k: Int,
                           filter: ((UInt64) -> Bool)?) throws -> [(id: UInt64, distance: Float)] {
        var heap = ScoredHeap(max: true, capacity: k + 1)
        var batch: [UInt32] = []
        batch.reserveCapacity(Self.sourceBatch)
        func flush() throws {
            for (id, d) in try fullDistances(graph, q, batch) where heap.count < k || d < heap.top.distance {
                heap.push(Scored(distance: d, slot: slotOf[id]!))
                if heap.count > k { heap.pop() }
            }
            batch.removeAll(keepingCapacity: true)
        }
        for s in 0..<graph.slotCount where graph.states[s] == .live {
            if let filter, !filter(graph.labels[s]) { continue }
            batch.append(UInt32(s))
            if batch.count == Self.sourceBatch { try flush() }
        }
        try flush()
        return heap.items.map { (graph.labels[Int($0.slot)], $0.distance) }
            .sorted { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
    }

    /// Slots whose full vectors an exact scan asks the vector source for at once.
    static let sourceBatch = 512

    /// The filter's expected match count, from a fixed spread of up to 512 live slots.
    private func estimatedMatches(_ graph: HNSWGraph, _ filter: (UInt64) -> Bool) -> Double {
        let n = graph.slotCount
        let samples = min(n, 512)
        var live = 0, hits = 0
        for i in 0..<samples {
            let s = Int((UInt64(i) &* UInt64(n)) / UInt64(samples))
            guard graph.states[s] == .live else { continue }
            live += 1
            if filter(graph.labels[s]) { hits += 1 }
        }
        guard live > 0 else { return 0 }
        return Double(hits) / Double(live) * Double(graph.liveCount)
    }

    /// Exact distances from a prepared query to the full vectors of `slots`, from the graph or
    /// in one call to the vector source. A vector the source no longer holds (its chunk was
    /// deleted after this index's last catch-up) leaves its slot out of the result.
    private func fullDistances(_ graph: HNSWGraph, _ q: UnsafePointer<Float>,
                               _ slots: [UInt32]) throws -> [(id: UInt64, distance: Float)] {
        if graph.storesVectors {
            return slots.map { (graph.labels[Int($0)], Distance.prepared(q, graph.vector($0)!, dimensions, metric)) }
        }
        guard let source else {
            throw VectorIndexError(.missingVector, "the index keeps no full vectors and has no vector source")
        }
        var out: [(id: UInt64, distance: Float)] = []
        out.reserveCapacity(slots.count)
        var mismatched: UInt64?
        try source.forEachVector(ids: slots.map { graph.labels[Int($0)] }) { id, v in
            guard v.count == dimensions, let p = v.baseAddress else { mismatched = id; return }
            let d: Float
            switch metric {
            case .cosine:
                let norm = Distance.dot(p, p, dimensions).squareRoot()
                d = norm > 0 ? 1 - Distance.dot(q, p, dimensions) / norm : 1
            case .innerProduct: d = -Distance.dot(q, p, dimensions)
            case .l2: d = Distance.l2sq(q, p, dimensions)
            }
            out.append((id, d))
        }
        if let mismatched {
            throw VectorIndexError(.missingVector, "the vector source's vector for id \(mismatched) does not have \(dimensions) dimensions")
        }
        return out
    }

    // MARK: Memory

    /// Bytes the index holds in memory (graph, codes, ids, and full vectors when it stores them).
    public var memoryBytes: Int {
        lock.reading {
            var total = pending.vectors.capacity * 4 + pending.ids.capacity * 8 + pending.position.capacity * 24
            total += slotOf.capacity * 12 + slotOf.capacity / 8
            if let g = graph { total += g.memoryBytes }
            return total
        }
    }

    /// The part of `memoryBytes` that is full-precision vectors.
    public var vectorBytes: Int {
        lock.reading { (graph?.storesVectors == true ? graph!.capacity * dimensions * 4 : 0) + pending.vectors.capacity * 4 }
    }
}

/// Vectors held (prepared) before the quantizer is fitted, in insertion order.
struct PendingVectors {
    var ids: [UInt64] = []
    var vectors: [Float] = []
    var position: [UInt64: Int] = [:]

    mutating func append(_ id: UInt64, _ v: [Float]) {
        position[id] = ids.count
        ids.append(id)
        vectors.append(contentsOf: v)
    }

    /// Removes `id` (the last vector takes its place); false when absent.
    @discardableResult
    mutating func remove(_ id: UInt64) -> Bool {
        guard let i = position.removeValue(forKey: id) else { return false }
        let d = vectors.count / max(ids.count, 1)
        let last = ids.count - 1
        if i != last {
            ids[i] = ids[last]
            position[ids[i]] = i
            for j in 0..<d { vectors[i * d + j] = vectors[last * d + j] }
        }
        ids.removeLast()
        vectors.removeLast(d)
        return true
    }

    func exactSearch(_ q: UnsafePointer<Float>, k: Int, dimensions: Int, metric: Metric,
                     filter: ((UInt64) -> Bool)?) -> [(id: UInt64, distance: Float)] {
        var out: [(id: UInt64, distance: Float)] = []
        vectors.withUnsafeBufferPointer { vp in
            for (i, id) in ids.enumerated() {
                if let filter, !filter(id) { continue }
                out.append((id, Distance.prepared(q, vp.baseAddress! + i * dimensions, dimensions, metric)))
            }
        }
        out.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
        return Array(out.prefix(k))
    }
}
