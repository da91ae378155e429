internal import CKernels
import Foundation

/// What a slot of the graph holds.
enum SlotState: UInt8 {
    case free = 0, live = 1, deleted = 2
}

/// The HNSW graph over int8 codes: flat slot-indexed storage and insertion.
///
/// Slot `s` owns `dimensions` code bytes at `codes + s * dimensions`, two corrections at
/// `corrections + 2 * s` (delta, normSq), and a level-0 neighbour list of `m0 + 1` words at
/// `links0 + s * (m0 + 1)` (count, then links). A node of level L > 0 also owns `upper[s]`:
/// L lists of `m + 1` words for levels 1...L. Not thread-safe: `HNSWIndex` serializes writers
/// and lets readers in only between writes.
final class HNSWGraph {
    let dimensions: Int
    let metric: Metric
    let m: Int
    let m0: Int
    let efConstruction: Int
    let quantizer: ScalarQuantizer
    let storesVectors: Bool
    var levelGenerator: LevelGenerator

    private(set) var capacity = 0
    /// Slots in use or freed (the high-water mark); slots at or above it are untouched.
    var slotCount = 0
    private(set) var codes: UnsafeMutablePointer<Int8>
    private(set) var corrections: UnsafeMutablePointer<Float>
    private(set) var links0: UnsafeMutablePointer<UInt32>
    private(set) var upper: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>?>
    /// Full vectors by slot when `storesVectors`.
    private(set) var vectors: UnsafeMutablePointer<Float>?
    var levels: [UInt8] = []
    var labels: [UInt64] = []
    var states: [SlotState] = []
    /// Level-0 in-links per slot, kept so that no pruning leaves a node without one.
    var indegree: [UInt32] = []
    var freeSlots: [UInt32] = []
    var entry: UInt32 = .max
    var maxLevel = -1
    var liveCount = 0
    var deletedCount = 0

    static let none = UInt32.max

    init(dimensions: Int, metric: Metric, parameters: HNSWParameters, quantizer: ScalarQuantizer) {
        self.dimensions = dimensions
        self.metric = metric
        m = parameters.m
        m0 = 2 * parameters.m
        efConstruction = parameters.efConstruction
        self.quantizer = quantizer
        storesVectors = parameters.storesVectors
        levelGenerator = LevelGenerator(seed: parameters.seed, m: parameters.m)
        codes = .allocate(capacity: 1)
        corrections = .allocate(capacity: 1)
        links0 = .allocate(capacity: 1)
        upper = .allocate(capacity: 1)
        reserve(1024)
    }

    deinit {
        for s in 0..<slotCount { upper[s]?.deallocate() }
        codes.deallocate()
        corrections.deallocate()
        links0.deallocate()
        upper.deallocate()
        vectors?.deallocate()
    }

    var linkStride: Int { m0 + 1 }
    var upperStride: Int { m + 1 }

    /// Grows the flat buffers to hold at least `n` slots.
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let newCapacity = max(n, capacity + capacity / 2)
        // The tails stay untouched (so not resident) until `place` writes a slot; only the
        // upper-link pointers start out nil.
        codes = grow(codes, from: capacity * dimensions, to: newCapacity * dimensions)
        corrections = grow(corrections, from: capacity * 2, to: newCapacity * 2)
        links0 = grow(links0, from: capacity * linkStride, to: newCapacity * linkStride)
        upper = grow(upper, from: capacity, to: newCapacity)
        (upper + capacity).initialize(repeating: nil, count: newCapacity - capacity)
        if storesVectors {
            let v = vectors ?? .allocate(capacity: 1)
            vectors = grow(v, from: capacity * dimensions, to: newCapacity * dimensions)
        }
        capacity = newCapacity
    }

    private func grow<T>(_ p: UnsafeMutablePointer<T>, from old: Int, to new: Int) -> UnsafeMutablePointer<T> {
        let q = UnsafeMutablePointer<T>.allocate(capacity: new)
        q.moveInitialize(from: p, count: old)
        p.deallocate()
        return q
    }

    // MARK: Slot accessors

    @inline(__always)
    func code(_ slot: UInt32) -> UnsafeMutablePointer<Int8> { codes + Int(slot) * dimensions }

    @inline(__always)
    func links(_ slot: UInt32, _ level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return links0 + Int(slot) * linkStride }
        return upper[Int(slot)]! + (level - 1) * upperStride
    }

    @inline(__always)
    func maxDegree(_ level: Int) -> Int { level == 0 ? m0 : m }

    @inline(__always)
    func vector(_ slot: UInt32) -> UnsafeMutablePointer<Float>? { vectors.map { $0 + Int(slot) * dimensions } }

    /// Whether two slots have byte-identical codes (exact ties).
    @inline(__always)
    func sameCode(_ a: UInt32, _ b: UInt32) -> Bool {
        // Identical vectors have identical corrections: compare those first.
        let ca = corrections + Int(a) * 2, cb = corrections + Int(b) * 2
        guard ca[0] == cb[0], ca[1] == cb[1] else { return false }
        return memcmp(code(a), code(b), dimensions) == 0
    }

    /// A slot for a new node: a freed one if any, else a fresh one.
    private func allocateSlot() -> UInt32 {
        if let s = freeSlots.popLast() { return s }
        reserve(slotCount + 1)
        let s = UInt32(slotCount)
        slotCount += 1
        levels.append(0)
        labels.append(0)
        states.append(.free)
        indegree.append(0)
        return s
    }

    /// Writes a node's data into `slot` with empty neighbour lists.
    func place(_ slot: UInt32, label: UInt64, vector: UnsafePointer<Float>, level: Int) {
        let c = quantizer.encode(vector, into: code(slot))
        corrections[Int(slot) * 2] = c.delta
        corrections[Int(slot) * 2 + 1] = c.normSq
        if let v = self.vector(slot) { v.update(from: vector, count: dimensions) }
        links(slot, 0).update(repeating: 0, count: linkStride)
        upper[Int(slot)]?.deallocate()
        upper[Int(slot)] = nil
        if level > 0 {
            let p = UnsafeMutablePointer<UInt32>.allocate(capacity: level * upperStride)
            p.initialize(repeating: 0, count: level * upperStride)
            upper[Int(slot)] = p
        }
        levels[Int(slot)] = UInt8(level)
        labels[Int(slot)] = label
        states[Int(slot)] = .live
    }

    // MARK: Insertion

    /// Inserts a prepared vector (normalized under cosine) and returns its slot.
    @discardableResult
    func insert(label: UInt64, vector: UnsafePointer<Float>, scratch: inout SearchScratch) -> UInt32 {
        let slot = allocateSlot()
        let level = levelGenerator.level()
        place(slot, label: label, vector: vector, level: level)
        liveCount += 1
        guard entry != Self.none else {
            entry = slot
            maxLevel = level
            return slot
        }
        let q = prepareQuery(vector, scratch: &scratch)
        connect(slot, level: level, query: q, scratch: &scratch)
        if level > maxLevel {
            entry = slot
            maxLevel = level
        }
        return slot
    }

    /// Links a placed node at levels min(level, maxLevel)...0, searching from the entry point.
    /// `scratch.query` holds the node's prepared vector.
    func connect(_ slot: UInt32, level: Int, query q: PreparedQuery, scratch: inout SearchScratch) {
        var ep = entry
        var epDistance = distance(q, entry, scratch: &scratch)
        if maxLevel > level {
            for lc in stride(from: maxLevel, to: level, by: -1) {
                greedy(q, from: &ep, distance: &epDistance, level: lc, scratch: &scratch)
            }
        }
        var entries = [Scored(distance: epDistance, slot: ep)]
        var selected: [UInt32] = []
        for lc in stride(from: min(level, maxLevel), through: 0, by: -1) {
            entries.withUnsafeBufferPointer { e in
                searchLayer(q, entries: e, ef: efConstruction, level: lc, exclude: slot, filter: nil,
                            scratch: &scratch)
            }
            var found = scratch.results.array
            if found.isEmpty { found = entries.filter { $0.slot != slot && states[Int($0.slot)] == .live } }
            sortForSelection(&found, owner: slot)
            selectNeighbours(found, owner: slot, max: m, into: &selected, scratch: &scratch)
            setLinks(slot, level: lc, selected)
            for n in selected { addLink(from: n, to: slot, level: lc, scratch: &scratch) }
            if lc == 0, indegree[Int(slot)] == 0, let nearest = selected.first {
                forceLink(from: nearest, to: slot, scratch: &scratch)
            }
            if !found.isEmpty { entries = found }
        }
    }
}

extension HNSWGraph {
    /// Bytes held by the graph's buffers (codes, corrections, links, ids, and full vectors
    /// when stored).
    var memoryBytes: Int {
        var total = capacity * (dimensions + 8 + linkStride * 4 + MemoryLayout<UInt>.size)
        if storesVectors { total += capacity * dimensions * 4 }
        total += levels.capacity + labels.capacity * 8 + states.capacity + freeSlots.capacity * 4
        for s in 0..<slotCount where levels[s] > 0 { total += Int(levels[s]) * upperStride * 4 }
        return total + quantizer.dimensions * 8
    }
}
