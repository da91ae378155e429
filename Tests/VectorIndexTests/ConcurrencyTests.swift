import XCTest
@testable import VectorIndex

final class ConcurrencyTests: XCTestCase {
    /// Readers search while one writer adds and removes: every answer is well formed and only
    /// names ids that were in the index at some point; the graph is sound afterwards.
    func testReadersWithOneWriter() throws {
        let data = TestData.clustered(count: 3000, dimensions: 16, clusters: 6, seed: 71)
        let index = try TestData.build(Array(data[..<1500]), metric: .cosine, parameters: HNSWParameters(trainingSize: 500))
        let group = DispatchGroup()
        final class Problems: @unchecked Sendable {
            let lock = NSLock()
            var list: [String] = []
            func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
        }
        let problems = Problems()
        for r in 0..<3 {
            DispatchQueue.global().async(group: group) {
                for i in 0..<300 {
                    do {
                        let got = try index.search(data[(i * 7 + r) % 3000], k: 10)
                        let sorted = zip(got, got.dropFirst()).allSatisfy { $0.distance <= $1.distance }
                        if got.count != 10 || !sorted || got.contains(where: { $0.id >= 3000 }) || Set(got.map(\.id)).count != got.count {
                            problems.add("bad answer \(got.map(\.id))")
                        }
                    } catch {
                        problems.add("\(error)")
                    }
                }
            }
        }
        for i in 1500..<3000 {
            try index.add(id: UInt64(i), vector: data[i])
            if i % 3 == 0 { try index.remove(id: UInt64(i - 1500)) }
        }
        group.wait()
        XCTAssertEqual(problems.list, [])
        index.repair()
        try index.checkInvariants()
        XCTAssertEqual(index.count, 2500)
    }
}
