import Foundation

/// Draws node levels as floor(−ln U / ln M) from a seeded SplitMix64 stream, so a given seed
/// and insertion order always give the same graph.
struct LevelGenerator: Equatable {
    private(set) var state: UInt64
    let multiplier: Double
    static let maxLevel = 15

    init(seed: UInt64, m: Int) {
        state = seed
        multiplier = 1 / log(Double(m))
    }

    init(state: UInt64, m: Int) {
        self.state = state
        multiplier = 1 / log(Double(m))
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func level() -> Int {
        let u = (Double(next() >> 11) + 1) / 9_007_199_254_740_992.0   // in (0, 1]
        return min(Self.maxLevel, Int((-log(u) * multiplier).rounded(.down)))
    }
}
