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

    /// A bitmap filter finds nearly all of the exact filtered top k through the walk (many
    /// allowed ids) and the code scan (few), `exact` finds all of them, and removed ids in the
    /// bitmap are never returned.
    func testBitmapFilterAgreesWithExactSearch() throws {
        let all = TestData.clustered(count: 4040, dimensions: 24, clusters: 8, seed: 53)
        let base = Array(all[..<4000]), queries = Array(all[4000...])
        let index = try TestData.build(base, metric: .cosine, parameters: HNSWParameters(trainingSize: 500))
        for i in stride(from: 0, to: 4000, by: 9) { try index.remove(id: UInt64(i)) }
        for modulus in [2, 7, 50, 400] as [UInt64] {
            var words = [UInt64](repeating: 0, count: 4000 / 64 + 1)
            for id in stride(from: UInt64(1), to: 4000, by: Int(modulus)) { words[Int(id >> 6)] |= 1 << (id & 63) }
            let bitmap = IDBitmap(words: words)
            let live: (UInt64) -> Bool = { $0 % 9 != 0 && bitmap.contains($0) }
            let matches = (0..<UInt64(4000)).filter(live).count
            var hit = 0, total = 0
            for q in queries {
                let got = try index.search(q, k: 10, allowed: bitmap)
                XCTAssertEqual(got.count, min(10, matches), "1/\(modulus)")
                XCTAssertTrue(got.allSatisfy { live($0.id) }, "1/\(modulus)")
                let truth = Set(TestData.exact(base, query: q, k: 10, metric: .cosine, filter: live).map(\.id))
                hit += got.filter { truth.contains($0.id) }.count
                total += truth.count
                let exact = try index.search(q, k: 10, allowed: bitmap, exact: true)
                XCTAssertEqual(Set(exact.map(\.id)), truth, "exact: 1/\(modulus)")
            }
            XCTAssertGreaterThanOrEqual(Double(hit) / Double(total), 0.97, "1/\(modulus)")
        }
        var seen: [UInt64] = []
        IDBitmap(words: [0b1010, 0, 1 << 63]).forEach { seen.append($0) }
        XCTAssertEqual(seen, [1, 3, 191])
    }
}
