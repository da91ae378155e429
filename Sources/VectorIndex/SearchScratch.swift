import Foundation

/// A node and its distance to the current query.
struct Scored {
    var distance: Float
    var slot: UInt32
}

/// A binary heap of `Scored` over reusable storage: a min-heap when `max` is false, else a
/// max-heap. Growth is amortized; clearing keeps the storage.
struct ScoredHeap {
    private(set) var items: [Scored] = []
    let max: Bool

    init(max: Bool, capacity: Int = 256) {
        self.max = max
        items.reserveCapacity(capacity)
    }

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    var top: Scored { items[0] }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    @inline(__always)
    private func before(_ a: Scored, _ b: Scored) -> Bool {
        max ? a.distance > b.distance : a.distance < b.distance
    }

    mutating func push(_ s: Scored) {
        items.append(s)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if !before(items[i], items[p]) { break }
            items.swapAt(i, p)
            i = p
        }
    }

    @discardableResult
    mutating func pop() -> Scored {
        let out = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                var c = l
                if l + 1 < n && before(items[l + 1], items[l]) { c = l + 1 }
                if !before(items[c], items[i]) { break }
                items.swapAt(i, c)
                i = c
            }
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
    private var marks: [UInt32] = []
    private var generation: UInt32 = 0
    /// The prepared query (scaled), the prepared owner of a neighbour list being shrunk, and
    /// the prepared candidate under the selection heuristic.
    var query: [Float]
    var owner: [Float]
    var candidate: [Float]
    var ids: [UInt32]
    var dots: [Float]

    init(dimensions: Int, maxDegree: Int) {
        query = [Float](repeating: 0, count: dimensions)
        owner = [Float](repeating: 0, count: dimensions)
        candidate = [Float](repeating: 0, count: dimensions)
        ids = [UInt32](repeating: 0, count: maxDegree + 1)
        dots = [Float](repeating: 0, count: maxDegree + 1)
    }

    /// Starts a new visited set over `slots` slots.
    mutating func resetVisited(slots: Int) {
        if marks.count < slots {
            marks = [UInt32](repeating: 0, count: Swift.max(slots, marks.count * 2))
            generation = 0
        }
        generation &+= 1
        if generation == 0 {
            for i in marks.indices { marks[i] = 0 }
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
final class ScratchPool: @unchecked Sendable {
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
