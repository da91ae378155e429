/// A set of ids as a bitmap (bit `id` of the words is set): what a search may return when
/// the caller already knows the allowed ids as a bitmap, e.g. from a metadata filter.
public struct IDBitmap: Sendable {
    /// 64 ids per word, id 0 in the lowest bit of the first word.
    public let words: [UInt64]
    /// The number of ids in the set.
    public let count: Int

    public init(words: [UInt64]) {
        self.words = words
        count = words.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Whether `id` is in the set.
    public func contains(_ id: UInt64) -> Bool {
        let w = Int(truncatingIfNeeded: id >> 6)
        return w < words.count && words[w] & (1 << (id & 63)) != 0
    }

    /// Calls `body` with each id in the set, in increasing order.
    public func forEach(_ body: (UInt64) -> Void) {
        for (i, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                body(UInt64(i) << 6 | UInt64(bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
    }
}
