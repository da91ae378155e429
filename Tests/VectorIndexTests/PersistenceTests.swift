import XCTest
@testable import VectorIndex

final class PersistenceTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let data = TestData.clustered(count: 1500, dimensions: 24, clusters: 6, seed: 51)

    func testRoundTripAllMetrics() throws {
        for metric in Metric.allCases {
            let index = try TestData.build(Self.data, metric: metric, parameters: HNSWParameters(trainingSize: 400))
            for i in 0..<100 { try index.remove(id: UInt64(i * 3)) }   // some tombstones, some freed
            let url = dir.appendingPathComponent("\(metric).hnsw")
            try index.save(to: url)
            let loaded = try HNSWIndex.load(from: url)
            XCTAssertEqual(loaded.count, index.count)
            XCTAssertEqual(loaded.metric, metric)
            XCTAssertEqual(loaded.parameters, index.parameters)
            // (Under inner product reachability is restored by repair, which would free the
            // tombstones this test keeps; it is checked in HNSWSearchTests.)
            try loaded.checkInvariants(reachability: metric != .innerProduct)
            for q in Self.data.prefix(20) {
                let a = try index.search(q, k: 10), b = try loaded.search(q, k: 10)
                XCTAssertEqual(a.map(\.id), b.map(\.id))
                XCTAssertEqual(a.map(\.distance), b.map(\.distance))
            }
            XCTAssertTrue(IndexFile.encode(loaded) == IndexFile.encode(index), "save ∘ load is the identity")
            // The loaded index keeps working, with the same future as the original.
            try loaded.add(id: 99_999, vector: Self.data[5])
            try index.add(id: 99_999, vector: Self.data[5])
            XCTAssertTrue(IndexFile.encode(loaded) == IndexFile.encode(index), "same future after load")
        }
    }

    func testUntrainedIndexRoundTrip() throws {
        let index = try HNSWIndex(dimensions: 24, metric: .l2)
        for i in 0..<10 { try index.add(id: UInt64(i), vector: Self.data[i]) }
        let url = dir.appendingPathComponent("small.hnsw")
        try index.save(to: url)
        let loaded = try HNSWIndex.load(from: url)
        XCTAssertEqual(loaded.count, 10)
        XCTAssertEqual(try loaded.search(Self.data[4], k: 1).first?.id, 4)
    }

    final class ArraySource: FullVectorSource {
        var vectors: [UInt64: [Float]]
        private(set) var calls = 0
        init(_ v: [UInt64: [Float]]) { vectors = v }
        func forEachVector(ids: [UInt64], _ body: (UInt64, UnsafeBufferPointer<Float>) -> Void) {
            calls += 1
            for id in ids { vectors[id]?.withUnsafeBufferPointer { body(id, $0) } }
        }
    }

    /// Without stored vectors the file holds codes and links only; rescoring reads a source.
    func testExternalVectorSource() throws {
        var p = HNSWParameters(trainingSize: 400)
        p.storesVectors = false
        let stored = try TestData.build(Self.data, metric: .cosine, parameters: HNSWParameters(trainingSize: 400))
        let index = try TestData.build(Self.data, metric: .cosine, parameters: p)
        XCTAssertEqual(index.vectorBytes, 0)
        XCTAssertThrowsError(try index.search(Self.data[0], k: 5)) { e in
            XCTAssertEqual((e as? VectorIndexError)?.code, .missingVector)
        }
        let source = ArraySource(Dictionary(uniqueKeysWithValues: Self.data.enumerated().map { (UInt64($0), $1) }))
        index.vectorSource = source
        for q in Self.data.prefix(20) {
            let a = try stored.search(q, k: 10), b = try index.search(q, k: 10)
            XCTAssertEqual(a.map(\.id), b.map(\.id))
            for (x, y) in zip(a, b) { XCTAssertEqual(x.distance, y.distance, accuracy: 1e-5) }
        }
        // One call to the source per search; filtered searches (the exact scan included) agree too.
        let before = source.calls
        _ = try index.search(Self.data[3], k: 10)
        XCTAssertEqual(source.calls, before + 1)
        for modulus in [2, 7, 97] as [UInt64] {
            let keep: (UInt64) -> Bool = { $0 % modulus == 1 }
            let a = try stored.search(Self.data[5], k: 10, filter: keep), b = try index.search(Self.data[5], k: 10, filter: keep)
            XCTAssertEqual(a.map(\.id), b.map(\.id), "filter modulus \(modulus)")
        }
        // A vector gone from the source (its chunk deleted after the index's last catch-up) is left out.
        let nearest = try index.search(Self.data[11], k: 3)
        XCTAssertEqual(nearest.first?.id, 11)
        source.vectors[11] = nil
        let without = try index.search(Self.data[11], k: 3)
        XCTAssertFalse(without.contains { $0.id == 11 })
        XCTAssertFalse(without.isEmpty)
        source.vectors[11] = Self.data[11]
        let url = dir.appendingPathComponent("ext.hnsw")
        try index.save(to: url)
        let loaded = try HNSWIndex.load(from: url, vectorSource: source)
        XCTAssertEqual(try loaded.search(Self.data[9], k: 1).first?.id, 9)
        try stored.save(to: dir.appendingPathComponent("stored.hnsw"))
        let sizes = try ["ext.hnsw", "stored.hnsw"].map {
            try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent($0).path)[.size] as! Int
        }
        XCTAssertLessThan(sizes[0], sizes[1] / 2)
        // A file without full vectors is format version 2, so that builds reading only version 1
        // refuse it (and rebuild) instead of loading an index they cannot rescore with.
        let versions = try ["ext.hnsw", "stored.hnsw"].map {
            try Data(contentsOf: dir.appendingPathComponent($0))[8..<12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        }
        XCTAssertEqual(versions, [2, 1])
    }

    /// Every damaged or truncated file gives `corrupt`, never a crash; a rebuild from the full
    /// vectors restores the index.
    func testDamageIsDetected() throws {
        let index = try TestData.build(Self.data, metric: .l2, parameters: HNSWParameters(trainingSize: 400))
        let url = dir.appendingPathComponent("good.hnsw")
        try index.save(to: url)
        let good = try Data(contentsOf: url)
        let bad = dir.appendingPathComponent("bad.hnsw")
        func expectCorrupt(_ bytes: Data, _ what: String) {
            try? bytes.write(to: bad)
            XCTAssertThrowsError(try HNSWIndex.load(from: bad), what) { e in
                XCTAssertEqual((e as? VectorIndexError)?.code, .corrupt, "\(what): \(e)")
            }
        }
        expectCorrupt(Data(), "empty")
        expectCorrupt(Data(repeating: 0x41, count: 5000), "garbage")
        var rng = TestRandom(seed: 77)
        for _ in 0..<60 {
            var d = good
            let at = rng.int(d.count)
            d[at] ^= UInt8(1 + rng.int(255))
            expectCorrupt(d, "byte \(at) flipped")
        }
        for _ in 0..<30 { expectCorrupt(good.prefix(rng.int(good.count)), "truncated") }
        expectCorrupt(good + Data([0]), "trailing byte")
        XCTAssertThrowsError(try HNSWIndex.load(from: dir.appendingPathComponent("missing"))) { e in
            XCTAssertEqual((e as? VectorIndexError)?.code, .io)
        }
        let rebuilt = try HNSWIndex.rebuild(dimensions: 24, metric: .l2, parameters: HNSWParameters(trainingSize: 400),
                                            from: Self.data.enumerated().map { (UInt64($0), $1) })
        try rebuilt.checkInvariants()
        XCTAssertEqual(rebuilt.count, Self.data.count)
        let queries = Self.data.prefix(30).map { v in v.map { $0 + 0.01 } }
        XCTAssertGreaterThanOrEqual(try TestData.recall(rebuilt, base: Self.data, queries: queries, k: 10, metric: .l2), 0.95)
    }
}
