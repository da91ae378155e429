import Foundation
import Synchronization

/// Brute-force nearest neighbours over a row-major matrix: the reference that recall is
/// measured against.
public enum ExactSearch {
    /// For each query, the row numbers of its `k` nearest rows under `metric` (ties by row),
    /// skipping rows for which `skip` is true. Queries run in parallel on all cores.
    public static func neighbours(base: [Float], dimensions d: Int, queries: [Float], k: Int, metric: Metric,
                                  skip: [Bool]? = nil) -> [[Int]] {
        let n = base.count / d, nq = queries.count / d
        let norms: [Float] = metric != .cosine ? [] : base.withUnsafeBufferPointer { b in
            (0..<n).map { i in Distance.dot(b.baseAddress! + i * d, b.baseAddress! + i * d, d).squareRoot() }
        }
        let out = Mutex([[Int]](repeating: [], count: nq))
        DispatchQueue.concurrentPerform(iterations: nq) { qi in
            var heap = ScoredHeap(max: true, capacity: k + 1)
            base.withUnsafeBufferPointer { b in
                queries.withUnsafeBufferPointer { qb in
                    let q = qb.baseAddress! + qi * d
                    let qn = metric == .cosine ? Distance.dot(q, q, d).squareRoot() : 1
                    for i in 0..<n {
                        if let skip, skip[i] { continue }
                        let v = b.baseAddress! + i * d
                        let dist: Float
                        switch metric {
                        case .cosine: dist = 1 - Distance.dot(q, v, d) / (qn * norms[i])
                        case .innerProduct: dist = -Distance.dot(q, v, d)
                        case .l2: dist = Distance.l2sq(q, v, d)
                        }
                        if heap.count < k || dist < heap.top.distance {
                            heap.push(Scored(distance: dist, slot: UInt32(i)))
                            if heap.count > k { heap.pop() }
                        }
                    }
                }
            }
            let row = heap.items.sorted { $0.distance < $1.distance || ($0.distance == $1.distance && $0.slot < $1.slot) }
                .map { Int($0.slot) }
            out.withLock { $0[qi] = row }
        }
        return out.withLock { $0 }
    }
}
