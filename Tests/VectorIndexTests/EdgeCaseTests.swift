import XCTest
@testable import VectorIndex

final class EdgeCaseTests: XCTestCase {
    func code(_ body: () throws -> Void) -> VectorIndexError.Code? {
        do { try body() } catch let e as VectorIndexError { return e.code } catch { return nil }
        return nil
    }

    func testBadInputGivesOneClearError() throws {
        XCTAssertEqual(code { _ = try HNSWIndex(dimensions: 0) }, .invalidArgument)
        XCTAssertEqual(code { _ = try HNSWIndex(dimensions: 4, parameters: HNSWParameters(m: 1)) }, .invalidArgument)
        XCTAssertEqual(code { _ = try HNSWIndex(dimensions: 4, parameters: HNSWParameters(oversampling: 0)) }, .invalidArgument)
        let index = try HNSWIndex(dimensions: 4)
        XCTAssertEqual(try index.search([1, 0, 0, 0], k: 5).count, 0, "empty index")
        XCTAssertEqual(code { try index.add(id: 1, vector: [1, 2, 3]) }, .dimensionMismatch)
        XCTAssertEqual(code { try index.add(id: 1, vector: [1, .nan, 3, 4]) }, .invalidVector)
        XCTAssertEqual(code { try index.add(id: 1, vector: [1, .infinity, 3, 4]) }, .invalidVector)
        XCTAssertEqual(code { try index.add(id: 1, vector: [0, 0, 0, 0]) }, .invalidVector, "zero vector under cosine")
        XCTAssertEqual(code { try index.remove(id: 9) }, .notFound)
        try index.add(id: 1, vector: [1, 2, 3, 4])
        XCTAssertEqual(try index.search([1, 2, 3, 4], k: 0).count, 0)
        XCTAssertEqual(code { _ = try index.search([1, 2, 3, 4], k: -1) }, .invalidArgument)
        XCTAssertEqual(code { _ = try index.search([1, 2, 3, 4], k: 1, ef: 0) }, .invalidArgument)
        XCTAssertEqual(code { _ = try index.search([1, 2, 3], k: 1) }, .dimensionMismatch)
        XCTAssertEqual(code { _ = try index.search([1, .nan, 3, 4], k: 1) }, .invalidVector)
        XCTAssertEqual(index.count, 1, "failed adds change nothing")
        let l2 = try HNSWIndex(dimensions: 4, metric: .l2)
        XCTAssertNoThrow(try l2.add(id: 1, vector: [0, 0, 0, 0]), "a zero vector is fine under L2")
    }

    /// Below `trainingSize` the index answers exactly; across the threshold nothing is lost.
    func testSmallIndexIsExactAndTrainingKeepsEverything() throws {
        let data = TestData.clustered(count: 600, dimensions: 16, clusters: 5)
        let p = HNSWParameters(trainingSize: 300)
        let index = try HNSWIndex(dimensions: 16, metric: .l2, parameters: p)
        for i in 0..<299 { try index.add(id: UInt64(i), vector: data[i]) }
        XCTAssertNil(index.graph)
        let q = data[500]
        let got = try index.search(q, k: 10)
        let want = TestData.exact(Array(data[..<299]), query: q, k: 10, metric: .l2)
        XCTAssertEqual(got.map(\.id), want.map(\.id))
        for i in 299..<600 { try index.add(id: UInt64(i), vector: data[i]) }
        XCTAssertNotNil(index.graph)
        XCTAssertEqual(index.count, 600)
        for i in 0..<600 { XCTAssertTrue(index.contains(id: UInt64(i))) }
        try index.checkInvariants()
        XCTAssertEqual(try index.search(data[42], k: 1).first?.id, 42)
    }

    func testUpdateReplacesVector() throws {
        let data = TestData.clustered(count: 1500, dimensions: 16, clusters: 5)
        let index = try TestData.build(data, metric: .l2, parameters: HNSWParameters(trainingSize: 500))
        let far = [Float](repeating: 40, count: 16)
        try index.add(id: 7, vector: far)
        XCTAssertEqual(index.count, 1500)
        let hit = try index.search(far, k: 1)
        XCTAssertEqual(hit.first?.id, 7)
        XCTAssertEqual(Double(hit.first!.distance), 0, accuracy: 1e-3)
        XCTAssertNotEqual(try index.search(data[7], k: 1).first?.id, 7, "the old vector is gone")
        try index.checkInvariants()
    }

    /// A group of identical vectors must not capture its members' links: the group stays
    /// connected to the rest and all of it can be found.
    func testIdenticalVectorsDoNotCaptureTheGraph() throws {
        let data = TestData.clustered(count: 2000, dimensions: 16, clusters: 8)
        let same = data[0]
        let index = try HNSWIndex(dimensions: 16, metric: .l2, parameters: HNSWParameters(trainingSize: 500))
        var next: UInt64 = 0
        for (i, v) in data.enumerated() {
            try index.add(id: next, vector: v); next += 1
            if i % 5 == 0 { try index.add(id: 100_000 + UInt64(i), vector: same) }   // 400 copies
        }
        try index.checkInvariants()
        let copies = try index.search(same, k: 50, ef: 100)
        XCTAssertEqual(copies.count, 50)
        XCTAssertTrue(copies.allSatisfy { $0.distance < 1e-3 })
        let others = Array(data[1000..<1100])
        let queries = others.map { v in v.map { $0 + 0.01 } }
        var hit = 0
        for (i, q) in queries.enumerated() where try index.search(q, k: 1).first?.id == UInt64(1000 + i) { hit += 1 }
        XCTAssertGreaterThanOrEqual(hit, 95, "the rest of the graph stays reachable")
    }

    /// Half of the vectors are one identical vector (boilerplate chunks: a footer, a licence
    /// header), far more copies than efConstruction: a search for it returns k copies, and the
    /// rest stays reachable. (The case where the copies used to trap the walk needs real text
    /// embeddings: `CollectionTests.boilerplateChunksDoNotHideTheRest`.)
    func testALargeGroupOfIdenticalVectors() throws {
        // The data in a narrow cone (like text embeddings), the copies well away from all of it.
        let data = TestData.clustered(count: 1500, dimensions: 16, clusters: 8).map { v in
            v.enumerated().map { $0.offset == 0 ? $0.element + 40 : $0.element }
        }
        let same = (0..<16).map { $0 == 15 ? Float(1) : 0 }
        let index = try HNSWIndex(dimensions: 16, metric: .cosine, parameters: HNSWParameters(trainingSize: 500))
        for (i, v) in data.enumerated() {
            try index.add(id: UInt64(i), vector: v)
            try index.add(id: 100_000 + UInt64(i), vector: same)   // 1500 copies
        }
        try index.checkInvariants()
        // Asked for the copy itself, k copies come back (ties are gathered through the group).
        let copies = try index.search(same, k: 200, ef: 100)
        XCTAssertTrue(copies.count == 200 && copies.allSatisfy { $0.id >= 100_000 })
        var hit = 0
        for i in 700..<800 where try index.search(data[i].map { $0 + 0.01 }, k: 1).first?.id == UInt64(i) { hit += 1 }
        XCTAssertGreaterThanOrEqual(hit, 95, "the rest of the graph stays reachable")
    }

    func testSameSeedSameGraph() throws {
        let data = TestData.clustered(count: 1200, dimensions: 16)
        let a = try TestData.build(data, metric: .cosine, parameters: HNSWParameters(trainingSize: 400))
        let b = try TestData.build(data, metric: .cosine, parameters: HNSWParameters(trainingSize: 400))
        let fa = IndexFile.encode(a), fb = IndexFile.encode(b)
        XCTAssertTrue(fa == fb, "two builds with one seed differ")
    }
}
