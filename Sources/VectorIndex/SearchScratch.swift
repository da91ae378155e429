import Foundation

/// A node and its distance to the current query.
struct Scored {
    var distance: Float
    var slot: UInt32
}

/// Memory that outlives copies of the struct that points into it.
final class RawBlock<T> {
    let pointer: UnsafeMutablePointer<T>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
    }

    deinit { pointer.deallocate() }
}

/// A binary heap of `Scored` over reusable raw storage: a min-heap when `isMax` is false, else a
/// max-heap. Growth is amortized; clearing keeps the storage. Used `inout` by one thread.
struct ScoredHeap {
    private var block: RawBlock<Scored>
    private var base: UnsafeMutablePointer<Scored>
    private(set) var count = 0
    let isMax: Bool

    init(max: Bool, capacity: Int = 256) {
        isMax = max
        block = RawBlock(capacity: capacity)
        base = block.pointer
    }

    var isEmpty: Bool { count == 0 }
    var top: Scored { base[0] }
    /// The heap's items in heap order (valid until the next change).
    var items: UnsafeBufferPointer<Scored> { UnsafeBufferPointer(start: base, count: count) }
    var array: [Scored] { Array(items) }

    mutating func removeAll() { count = 0 }

    @inline(__always)
    private func before(_ a: Float, _ b: Float) -> Bool { isMax ? a > b : a < b }

    mutating func push(_ s: Scored) {
        if count == block.capacity {
            let bigger = RawBlock<Scored>(capacity: 2 * block.capacity)
            bigger.pointer.initialize(from: base, count: count)
            block = bigger
            base = bigger.pointer
        }
        var i = count
        count += 1
        while i > 0 {
            let p = (i - 1) >> 1
            if !before(s.distance, base[p].distance) { break }
            base[i] = base[p]
            i = p
        }
        base[i] = s
    }

    @discardableResult
    mutating func pop() -> Scored {
        let out = base[0]
        count -= 1
        if count > 0 {
            let last = base[count]
            var i = 0
            while true {
                let l = 2 * i + 1
                if l >= count { break }
                var c = l
                if l + 1 < count && before(base[l + 1].distance, base[l].distance) { c = l + 1 }
                if !before(base[c].distance, last.distance) { break }
                base[i] = base[c]
                i = c
            }
            base[i] = last
        }
        return out
    }
}

/// Per-search working memory, reused across searches: heaps, the visited set (marks by
/// generation, so clearing is O(1)), the prepared query and neighbour buffers. A value type
/// passed `inout`, so the hot loops touch no class state.
struct SearchScratch {
    var candidates = ScoredHeap(max: false)
    var results = ScoredHeap(max: true)
    /// Exact duplicates of walked nodes, set aside during a level search (see `searchLayer`).
    var ties: [Scored] = []
    private var marksBlock = RawBlock<UInt32>(capacity: 1)
    private var marks: UnsafeMutablePointer<UInt32>
    private var generation: UInt32 = 0
    /// The prepared query (scaled), the prepared owner of a neighbour list being shrunk, and
    /// the prepared candidate under the selection heuristic.
    var query: [Float]
    var owner: [Float]
    var candidate: [Float]
    var ids: [UInt32]
    var dots: [Float]
    /// Neighbour ids and their dot products for the inner loop (fixed-size, never reallocated).
    let neighbours: NeighbourBuffers

    init(dimensions: Int, maxDegree: Int) {
        query = [Float](repeating: 0, count: dimensions)
        owner = [Float](repeating: 0, count: dimensions)
        candidate = [Float](repeating: 0, count: dimensions)
        ids = [UInt32](repeating: 0, count: maxDegree + 1)
        dots = [Float](repeating: 0, count: maxDegree + 1)
        neighbours = NeighbourBuffers(capacity: maxDegree + 1)
        marksBlock.pointer.initialize(to: 0)
        marks = marksBlock.pointer
    }

    /// Starts a new visited set over `slots` slots.
    mutating func resetVisited(slots: Int) {
        if marksBlock.capacity < slots {
            marksBlock = RawBlock(capacity: Swift.max(slots, marksBlock.capacity * 2))
            marksBlock.pointer.initialize(repeating: 0, count: marksBlock.capacity)
            marks = marksBlock.pointer
            generation = 0
        }
        generation &+= 1
        if generation == 0 {
            marks.update(repeating: 0, count: marksBlock.capacity)
            generation = 1
        }
    }

    /// Marks `slot` visited; returns false when it already was.
    @inline(__always)
    mutating func visit(_ slot: UInt32) -> Bool {
        let i = Int(slot)
        if marks[i] == generation { return false }
        marks[i] = generation
        return true
    }
}

/// Scratch for concurrent searches: each search takes one and gives it back.
final class ScratchPool: @unchecked Sendable {   // `free` is guarded by `lock`; a scratch is used by one search at a time
    private let lock = NSLock()
    private var free: [SearchScratch] = []
    let dimensions: Int, maxDegree: Int

    init(dimensions: Int, maxDegree: Int) {
        self.dimensions = dimensions
        self.maxDegree = maxDegree
    }

    func take() -> SearchScratch {
        lock.lock()
        defer { lock.unlock() }
        return free.popLast() ?? SearchScratch(dimensions: dimensions, maxDegree: maxDegree)
    }

    func give(_ s: SearchScratch) {
        lock.lock()
        defer { lock.unlock() }
        if free.count < 64 { free.append(s) }
    }
}

/// Two fixed buffers behind `let` pointers, for the hottest loop.
final class NeighbourBuffers {
    let ids: UnsafeMutablePointer<UInt32>
    let dots: UnsafeMutablePointer<Float>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        ids = .allocate(capacity: capacity)
        dots = .allocate(capacity: capacity)
    }

    deinit {
        ids.deallocate()
        dots.deallocate()
    }
}
