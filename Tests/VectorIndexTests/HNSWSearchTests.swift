import XCTest
@testable import VectorIndex

final class HNSWSearchTests: XCTestCase {
    static let all = TestData.clustered(count: 5100, dimensions: 64)
    static let base = Array(all[..<5000])
    static let queries = Array(all[5000...])

    func testRecallAllMetrics() throws {
        for metric in Metric.allCases {
            let index = try TestData.build(Self.base, metric: metric)
            if metric == .innerProduct {
                // Inner product is no metric: low-norm vectors are nobody's nearest neighbour
                // and can be cut off; repair links them back.
                index.repair()
            }
            XCTAssertNoThrow(try index.checkInvariants(), "\(metric)")
            XCTAssertEqual(index.count, Self.base.count)
            let recall = try TestData.recall(index, base: Self.base, queries: Self.queries, k: 10, metric: metric, ef: 64)
            print("recall@10 \(metric) ef=64: \(recall)")
            XCTAssertGreaterThanOrEqual(recall, 0.95, "\(metric)")
        }
    }
}
