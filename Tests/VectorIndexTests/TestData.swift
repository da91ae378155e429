import Foundation
@testable import VectorIndex

/// Seeded test data: Gaussian clusters, exact search, recall.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Float { Float(Double(next() >> 11) / 9_007_199_254_740_992.0) }

    mutating func gaussian() -> Float {
        let u1 = max(Double(next() >> 11) / 9_007_199_254_740_992.0, 1e-12)
        let u2 = Double(next() >> 11) / 9_007_199_254_740_992.0
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

enum TestData {
    /// `count` vectors around `clusters` Gaussian centres (spread 1 around centres of spread 3).
    static func clustered(count: Int, dimensions: Int, clusters: Int = 20, seed: UInt64 = 7) -> [[Float]] {
        var rng = TestRandom(seed: seed)
        let centres = (0..<clusters).map { _ in (0..<dimensions).map { _ in 3 * rng.gaussian() } }
        return (0..<count).map { _ in
            let c = centres[rng.int(clusters)]
            return c.map { $0 + rng.gaussian() }
        }
    }

    /// The ids of the k nearest vectors by exact distance, ties broken by id.
    static func exact(_ base: [[Float]], ids: [UInt64]? = nil, query: [Float], k: Int, metric: Metric,
                      filter: ((UInt64) -> Bool)? = nil) -> [(id: UInt64, distance: Float)] {
        var all: [(id: UInt64, distance: Float)] = []
        for (i, v) in base.enumerated() {
            let id = ids?[i] ?? UInt64(i)
            if let filter, !filter(id) { continue }
            all.append((id, Distance.exact(query, v, metric: metric)))
        }
        all.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
        return Array(all.prefix(k))
    }

    /// Mean fraction of the exact top-k ids found.
    static func recall(_ index: HNSWIndex, base: [[Float]], ids: [UInt64]? = nil, queries: [[Float]], k: Int,
                       metric: Metric, ef: Int? = nil) throws -> Double {
        var hit = 0, total = 0
        for q in queries {
            let truth = Set(exact(base, ids: ids, query: q, k: k, metric: metric).map(\.id))
            let got = try index.search(q, k: k, ef: ef).map(\.id)
            hit += got.filter { truth.contains($0) }.count
            total += truth.count
        }
        return Double(hit) / Double(max(total, 1))
    }

    static func build(_ base: [[Float]], metric: Metric, parameters: HNSWParameters = HNSWParameters(),
                      ids: [UInt64]? = nil) throws -> HNSWIndex {
        let index = try HNSWIndex(dimensions: base[0].count, metric: metric, parameters: parameters)
        for (i, v) in base.enumerated() { try index.add(id: ids?[i] ?? UInt64(i), vector: v) }
        return index
    }
}
