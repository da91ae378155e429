/// A set of chunk ids as a bitmap over 0…`limit` (chunk ids are small, dense integers): what a
/// metadata filter matches. Membership is one load and a mask, so it can run inside a graph walk.
public struct ChunkSet: Sendable, Equatable {
    /// 64 ids per word, id 0 in the lowest bit of the first word.
    public private(set) var words: [UInt64]

    /// An empty set for ids up to `limit`.
    public init(limit: Int64) {
        words = [UInt64](repeating: 0, count: Int(max(0, limit)) / 64 + 1)
    }

    /// Whether `id` is in the set.
    @inline(__always)
    public func contains(_ id: Int64) -> Bool {
        let w = Int(truncatingIfNeeded: id >> 6)
        guard id >= 0, w < words.count else { return false }
        return words[w] & (1 << UInt64(id & 63)) != 0
    }

    /// The number of ids in the set.
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Adds the ids `lo...hi` (clipped to the set's limit).
    public mutating func insert(_ lo: Int64, _ hi: Int64) {
        let lo = max(0, lo), hi = min(hi, Int64(words.count) * 64 - 1)
        guard lo <= hi else { return }
        let a = Int(lo >> 6), b = Int(hi >> 6)
        let first: UInt64 = ~0 << UInt64(lo & 63), last: UInt64 = ~0 >> UInt64(63 - (hi & 63))
        words.withUnsafeMutableBufferPointer { w in
            if a == b { w[a] |= first & last; return }
            w[a] |= first
            if b > a + 1 { for i in (a + 1)..<b { w[i] = ~0 } }
            w[b] |= last
        }
    }

    public mutating func formUnion(_ other: ChunkSet) {
        combine(other) { $0 | $1 }
    }

    public mutating func formIntersection(_ other: ChunkSet) {
        combine(other) { $0 & $1 }
    }

    /// Removes the ids of `other`.
    public mutating func subtract(_ other: ChunkSet) {
        combine(other) { $0 & ~$1 }
    }

    private mutating func combine(_ other: ChunkSet, _ op: (UInt64, UInt64) -> UInt64) {
        if other.words.count > words.count { words += [UInt64](repeating: 0, count: other.words.count - words.count) }
        words.withUnsafeMutableBufferPointer { w in
            other.words.withUnsafeBufferPointer { o in
                for i in 0..<w.count { w[i] = op(w[i], i < o.count ? o[i] : 0) }
            }
        }
    }
}
