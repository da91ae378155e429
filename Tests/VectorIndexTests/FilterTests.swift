import XCTest
@testable import VectorIndex

final class FilterTests: XCTestCase {
    /// Selectivities from 50 % down to 0.01 %: always min(k, matches) results, all passing the
    /// filter, nearly all of the exact filtered top k.
    func testSelectivities() throws {
        let all = TestData.clustered(count: 5050, dimensions: 32, clusters: 10, seed: 31)
        let base = Array(all[..<5000]), queries = Array(all[5000...])
        let index = try TestData.build(base, metric: .cosine, parameters: HNSWParameters(trainingSize: 500))
        for modulus in [2, 10, 100, 1000, 10000] as [UInt64] {
            let filter: (UInt64) -> Bool = { $0 % modulus == 3 % modulus }
            let matches = (0..<UInt64(5000)).filter(filter).count
            var hit = 0, total = 0
            for q in queries {
                let got = try index.search(q, k: 10, ef: 64, filter: filter)
                XCTAssertEqual(got.count, min(10, matches), "1/\(modulus)")
                XCTAssertTrue(got.allSatisfy { filter($0.id) })
                let truth = Set(TestData.exact(base, query: q, k: 10, metric: .cosine, filter: filter).map(\.id))
                hit += got.filter { truth.contains($0.id) }.count
                total += truth.count
            }
            let recall = Double(hit) / Double(total)
            print("filter 1/\(modulus): \(matches) matches, recall \(recall)")
            XCTAssertGreaterThanOrEqual(recall, 0.9, "1/\(modulus)")
        }
        // A filter nothing passes.
        XCTAssertEqual(try index.search(queries[0], k: 10, filter: { _ in false }).count, 0)
    }

    func testFilterWithTombstones() throws {
        let data = TestData.clustered(count: 2000, dimensions: 16, clusters: 5, seed: 41)
        let index = try TestData.build(data, metric: .l2, parameters: HNSWParameters(trainingSize: 500, repairFraction: 1))
        for i in stride(from: 0, to: 2000, by: 2) { try index.remove(id: UInt64(i)) }
        let filter: (UInt64) -> Bool = { $0 % 4 < 2 }      // passes ids ≡ 0, 1 (mod 4): live ones are ≡ 1
        let got = try index.search(data[1], k: 20, filter: filter)
        XCTAssertEqual(got.count, 20)
        XCTAssertTrue(got.allSatisfy { $0.id % 4 == 1 })
    }
}
