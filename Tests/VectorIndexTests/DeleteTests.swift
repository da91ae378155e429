import XCTest
@testable import VectorIndex

final class DeleteTests: XCTestCase {
    static let all = TestData.clustered(count: 3100, dimensions: 32, clusters: 12, seed: 11)
    static let base = Array(all[..<3000])
    static let queries = Array(all[3000...])

    /// Tombstones are walked through but never returned; k live results are still found.
    func testTombstonesNeverReturned() throws {
        let p = HNSWParameters(trainingSize: 500, repairFraction: 1.0)   // no automatic repair
        let index = try TestData.build(Self.base, metric: .cosine, parameters: p)
        var rng = TestRandom(seed: 5)
        var deleted = Set<UInt64>()
        while deleted.count < 1800 {
            let id = UInt64(rng.int(Self.base.count))
            if deleted.insert(id).inserted { try index.remove(id: id) }
        }
        XCTAssertEqual(index.graph!.deletedCount, 1800, "still tombstones")
        try index.checkInvariants()
        let liveIds = (0..<UInt64(Self.base.count)).filter { !deleted.contains($0) }
        let liveBase = liveIds.map { Self.base[Int($0)] }
        var hit = 0
        for q in Self.queries {
            let got = try index.search(q, k: 10, ef: 20)
            XCTAssertEqual(got.count, 10)
            XCTAssertTrue(got.allSatisfy { !deleted.contains($0.id) })
            let truth = Set(TestData.exact(liveBase, ids: liveIds, query: q, k: 10, metric: .cosine).map(\.id))
            hit += got.filter { truth.contains($0.id) }.count
        }
        XCTAssertGreaterThanOrEqual(Double(hit) / 1000, 0.9)
        index.repair()
        XCTAssertEqual(index.graph!.deletedCount, 0)
        XCTAssertEqual(index.graph!.freeSlots.count, 1800)
        try index.checkInvariants()
        let r = try TestData.recall(index, base: liveBase, ids: liveIds, queries: Self.queries, k: 10, metric: .cosine, ef: 64)
        XCTAssertGreaterThanOrEqual(r, 0.95)
        // Freed slots are reused.
        for i in 0..<1000 { try index.add(id: 50_000 + UInt64(i), vector: Self.base[i]) }
        XCTAssertEqual(index.graph!.slotCount, 3000)
        try index.checkInvariants()
    }

    /// Compaction gives the slots of deleted vectors back, keeps recall, and is safe while
    /// searches run.
    func testCompactGivesSlotsBackUnderConcurrentSearches() throws {
        let p = HNSWParameters(trainingSize: 500)
        let index = try TestData.build(Self.base, metric: .cosine, parameters: p)
        let liveIds = (0..<UInt64(Self.base.count)).filter { $0 % 3 == 0 }
        for id in 0..<UInt64(Self.base.count) where id % 3 != 0 { try index.remove(id: id) }
        XCTAssertEqual(index.slotCount, 3000)
        let liveBase = liveIds.map { Self.base[Int($0)] }
        let searching = DispatchGroup()
        let failures = ManagedAtomicCounter()
        for t in 0..<2 {
            DispatchQueue.global().async(group: searching) {
                for (i, q) in Self.queries.enumerated() where i % 2 == t {
                    let got = (try? index.search(q, k: 10)) ?? []
                    if got.count != 10 || got.contains(where: { $0.id % 3 != 0 }) { failures.increment() }
                }
            }
        }
        try index.compact(from: liveIds.map { ($0, Self.base[Int($0)]) })
        searching.wait()
        XCTAssertEqual(failures.value, 0)
        XCTAssertEqual(index.count, 1000)
        XCTAssertEqual(index.slotCount, 1000)
        try index.checkInvariants()
        let r = try TestData.recall(index, base: liveBase, ids: liveIds, queries: Self.queries, k: 10, metric: .cosine, ef: 64)
        XCTAssertGreaterThanOrEqual(r, 0.95)
        try index.add(id: 99_999, vector: Self.base[1])
        XCTAssertEqual(index.count, 1001)
    }

    func testDeleteEverythingThenReuse() throws {
        let index = try TestData.build(Array(Self.base[..<1000]), metric: .l2, parameters: HNSWParameters(trainingSize: 200))
        for i in 0..<1000 { try index.remove(id: UInt64(i)) }
        XCTAssertEqual(index.count, 0)
        XCTAssertEqual(try index.search(Self.queries[0], k: 10).count, 0)
        index.repair()
        try index.checkInvariants()
        for i in 0..<1000 { try index.add(id: UInt64(i), vector: Self.base[i]) }
        XCTAssertEqual(index.count, 1000)
        try index.checkInvariants()
        XCTAssertEqual(try index.search(Self.base[3], k: 1).first?.id, 3)
    }

    /// Insert N, then delete and re-add 90 % three times: memory and file size stay within 1.3×
    /// of a fresh build, recall does not drop.
    func testChurn() throws {
        let p = HNSWParameters(trainingSize: 500)
        let fresh = try TestData.build(Self.base, metric: .l2, parameters: p)
        let freshRecall = try TestData.recall(fresh, base: Self.base, queries: Self.queries, k: 10, metric: .l2, ef: 40)
        let index = try TestData.build(Self.base, metric: .l2, parameters: p)
        var rng = TestRandom(seed: 3)
        for _ in 0..<3 {
            var ids = Array(0..<UInt64(Self.base.count))
            for i in stride(from: ids.count - 1, to: 0, by: -1) { ids.swapAt(i, rng.int(i + 1)) }
            let victims = ids.prefix(Self.base.count * 9 / 10)
            for id in victims { try index.remove(id: id) }
            for id in victims { try index.add(id: id, vector: Self.base[Int(id)]) }
        }
        index.repair()
        try index.checkInvariants()
        XCTAssertEqual(index.count, Self.base.count)
        let churnRecall = try TestData.recall(index, base: Self.base, queries: Self.queries, k: 10, metric: .l2, ef: 40)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("churn-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try fresh.save(to: dir.appendingPathComponent("fresh"))
        try index.save(to: dir.appendingPathComponent("churn"))
        let size = { (n: String) in try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(n).path)[.size] as! Int }
        print("churn: recall \(freshRecall) -> \(churnRecall), memory \(fresh.memoryBytes) -> \(index.memoryBytes), file \(try size("fresh")) -> \(try size("churn"))")
        XCTAssertLessThanOrEqual(Double(index.memoryBytes), 1.3 * Double(fresh.memoryBytes))
        XCTAssertLessThanOrEqual(Double(try size("churn")), 1.3 * Double(try size("fresh")))
        XCTAssertGreaterThanOrEqual(churnRecall, freshRecall - 0.02)
    }

    /// Deleting a whole cluster leaves the others findable.
    func testDeleteWholeCluster() throws {
        let data = TestData.clustered(count: 3000, dimensions: 32, clusters: 6, seed: 21)
        let index = try TestData.build(data, metric: .l2, parameters: HNSWParameters(trainingSize: 500))
        // The cluster of vector 0: its 500 nearest by exact distance are (mostly) its cluster.
        let cluster = Set(TestData.exact(data, query: data[0], k: 400, metric: .l2).map(\.id))
        for id in cluster { try index.remove(id: id) }
        index.repair()
        try index.checkInvariants()
        let liveIds = (0..<UInt64(data.count)).filter { !cluster.contains($0) }
        let live = liveIds.map { data[Int($0)] }
        let queries = (0..<50).map { i in data[Int(liveIds[i * 37])].map { $0 + 0.05 } }
        let r = try TestData.recall(index, base: live, ids: liveIds, queries: queries, k: 10, metric: .l2, ef: 64)
        XCTAssertGreaterThanOrEqual(r, 0.95)
        let near = try index.search(data[0], k: 10)
        XCTAssertEqual(near.count, 10)
        XCTAssertTrue(near.allSatisfy { !cluster.contains($0.id) })
    }
}

/// A counter that threads may bump.
final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
