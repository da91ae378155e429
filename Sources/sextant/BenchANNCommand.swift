import ArgumentParser
import Foundation
import VectorIndex

/// `sextant bench-ann`: builds Sextant's HNSW index over anyone's vectors and reports recall@k
/// against exact search, queries per second on one thread, build time and bytes per vector.
struct BenchANNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ann",
        abstract: "Benchmark the HNSW index on base and query vectors (.fvecs or .npy float32).")

    @Option(help: "Base vectors (.fvecs or .npy, float32).") var base: String
    @Option(help: "Query vectors (.fvecs or .npy, float32).") var queries: String
    @Option(help: "Ground-truth neighbour rows (.ivecs or .npy ints); computed exactly when absent.") var gt: String?
    @Option(help: "cosine, ip or l2.") var metric: String = "cosine"
    @Option(help: "Links per node (level 0 keeps 2M).") var m: Int = 16
    @Option(help: "Candidate list size while building.") var efConstruction: Int = 200
    @Option(help: "Comma-separated search candidate list sizes.") var ef: String = "10,20,40,80,160"
    @Option(help: "Neighbours per query.") var k: Int = 10
    @Option(help: "Comma-separated oversampling factors (candidates rescored with full vectors, as a multiple of k) to measure; default the index's.")
    var oversampling: String?
    @Option(help: "Comma-separated cumulative fractions of random deletions to measure after (e.g. 0.1,0.5,0.9).")
    var delete: String?
    @Option(help: "Rows to delete as one group (.npy or .ivecs), measured before the random deletions, then re-added.")
    var deleteIds: String?
    @Option(name: .customLong("repeat"), help: "Times each query pass runs; the fastest counts (for a busy machine).")
    var passes: Int = 3
    @Flag(help: "One JSON line per measurement.") var json = false

    func validate() throws {
        guard Metric(rawValue: metric) != nil else { throw ValidationError("--metric must be cosine, ip or l2") }
        guard m >= 2, efConstruction >= 1, k >= 1 else { throw ValidationError("bad --m, --ef-construction or --k") }
        guard oversamplingList.allSatisfy({ ($0 ?? 1) >= 1 }) else { throw ValidationError("--oversampling must list positive integers") }
        guard !efList.isEmpty, efList.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--ef must list positive integers") }
    }

    var oversamplingList: [Int?] {
        guard let oversampling else { return [nil] }
        return oversampling.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) ?? 0 }
    }

    var efList: [Int] { ef.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        let metric = Metric(rawValue: self.metric)!
        let b: VectorFile.Matrix, q: VectorFile.Matrix
        do {
            b = try VectorFile.readFloats(base)
            q = try VectorFile.readFloats(queries)
        } catch let e as VectorFile.Failure { throw fail(e.message) }
        guard b.rows > 0, q.rows > 0, b.columns > 0 else { throw fail("base and queries must hold at least one vector each") }
        guard b.columns == q.columns else { throw fail("base has \(b.columns) dimensions, queries \(q.columns)") }
        let d = b.columns
        var truth: [[Int]]
        if let gt {
            do { truth = try VectorFile.readInts(gt).map { Array($0.prefix(k)) } } catch let e as VectorFile.Failure { throw fail(e.message) }
            guard truth.count == q.rows else { throw fail("ground truth has \(truth.count) rows, queries \(q.rows)") }
        } else {
            truth = ExactSearch.neighbours(base: b.values, dimensions: d, queries: q.values, k: k, metric: metric)
        }

        var p = HNSWParameters(m: m, efConstruction: efConstruction)
        p.storesVectors = false
        let source = MatrixSource(b)
        let rssBefore = residentBytes()
        let index = try HNSWIndex(dimensions: d, metric: metric, parameters: p)
        index.vectorSource = source
        let started = Date()
        for i in 0..<b.rows { try index.add(id: UInt64(i), vector: b.row(i)) }
        let buildSeconds = Date().timeIntervalSince(started)
        let rssGrowth = residentBytes() - rssBefore

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bench-ann-\(getpid()).hnsw")
        try index.save(to: file)
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        try? FileManager.default.removeItem(at: file)
        let memory = index.memoryBytes
        let extra: [String: Any] = [
            "n": b.rows, "dimensions": d,
            "bytes_per_vector_allocated": Double(memory) / Double(b.rows),
            "bytes_per_vector_disk": Double(fileBytes) / Double(b.rows),
            "bytes_per_vector_with_full_vectors": Double(rssGrowth + b.rows * d * 4) / Double(b.rows),
        ]
        if !json {
            print(String(format: "built %d x %d (%@, M=%d, efConstruction=%d) in %.2f s; %.1f bytes/vector in memory (resident growth; %.1f allocated; codes, links, ids; full vectors kept outside), %.1f on disk",
                         b.rows, d, metric.rawValue, m, efConstruction, buildSeconds, Double(rssGrowth) / Double(b.rows),
                         Double(memory) / Double(b.rows), Double(fileBytes) / Double(b.rows)))
        }
        let queryRows = (0..<q.rows).map { q.row($0) }
        measure(index, queryRows, truth, scenario: "full", buildSeconds: buildSeconds,
                bytesPerVector: Double(rssGrowth) / Double(b.rows), extra: extra)

        if let deleteIds {
            let ids: [Int]
            do { ids = try VectorFile.readInts(deleteIds).flatMap { $0 } } catch let e as VectorFile.Failure { throw fail(e.message) }
            var skip = [Bool](repeating: false, count: b.rows)
            for i in ids where i >= 0 && i < b.rows && !skip[i] {
                skip[i] = true
                try index.remove(id: UInt64(i))
            }
            let t = ExactSearch.neighbours(base: b.values, dimensions: d, queries: q.values, k: k, metric: metric, skip: skip)
            measure(index, queryRows, t, scenario: "delete_group_\(skip.filter { $0 }.count)", buildSeconds: buildSeconds,
                    bytesPerVector: Double(index.memoryBytes) / Double(b.rows), extra: [:])
            for i in 0..<b.rows where skip[i] { try index.add(id: UInt64(i), vector: b.row(i)) }
        }
        if let delete {
            let fractions = delete.split(separator: ",").compactMap { Double($0) }
            var order = Array(0..<b.rows)
            var state: UInt64 = 12345
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                order.swapAt(i, Int((state >> 33) % UInt64(i + 1)))
            }
            var skip = [Bool](repeating: false, count: b.rows)
            var deleted = 0
            for f in fractions {
                let target = min(b.rows, Int(f * Double(b.rows)))
                while deleted < target {
                    skip[order[deleted]] = true
                    try index.remove(id: UInt64(order[deleted]))
                    deleted += 1
                }
                let t = ExactSearch.neighbours(base: b.values, dimensions: d, queries: q.values, k: k, metric: metric, skip: skip)
                measure(index, queryRows, t, scenario: "delete_\(Int((f * 100).rounded()))%", buildSeconds: buildSeconds,
                        bytesPerVector: Double(index.memoryBytes) / Double(b.rows - deleted), extra: [:])
            }
        }
    }

    private func measure(_ index: HNSWIndex, _ queries: [[Float]], _ truth: [[Int]], scenario: String,
                         buildSeconds: Double, bytesPerVector: Double, extra: [String: Any]) {
        for over in oversamplingList {
        for e in efList {
            var hits = 0, total = 0
            var results: [[(id: UInt64, distance: Float)]] = []
            var seconds = Double.infinity
            for _ in 0..<max(1, passes) {
                results.removeAll(keepingCapacity: true)
                results.reserveCapacity(queries.count)
                let started = Date()
                for q in queries { results.append((try? index.search(q, k: k, ef: e, oversampling: over)) ?? []) }
                seconds = min(seconds, Date().timeIntervalSince(started))
            }
            for (r, t) in zip(results, truth) {
                let want = Set(t.prefix(k))
                hits += r.filter { want.contains(Int($0.id)) }.count
                total += want.count
            }
            let recall = Double(hits) / Double(max(total, 1))
            let qps = Double(queries.count) / seconds
            if json {
                var fields: [String: Any] = ["scenario": scenario, "ef": e, "recall_at_10": recall, "qps": qps,
                                             "build_seconds": buildSeconds, "bytes_per_vector": bytesPerVector]
                fields.merge(extra) { a, _ in a }
                if k != 10 { fields["k"] = k }
                if let over { fields["oversampling"] = over }
                let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(String(format: "%@ ef=%d%@ recall@%d=%.4f qps=%.0f", scenario, e,
                             over.map { " oversampling=\($0)" } ?? "", k, recall, qps))
            }
        }
        }
    }

    /// Resident memory of this process, after giving freed heap pages back to the system.
    private func residentBytes() -> Int {
        _ = sextantMallocTrim(0)
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// glibc's malloc_trim (in malloc.h, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func sextantMallocTrim(_ pad: Int) -> Int32

/// Full vectors for rescoring, read from the benchmark's base matrix.
final class MatrixSource: FullVectorSource {
    let matrix: VectorFile.Matrix
    init(_ m: VectorFile.Matrix) { matrix = m }

    func forEachVector(ids: [UInt64], _ body: (UInt64, UnsafeBufferPointer<Float>) -> Void) {
        let d = matrix.columns
        matrix.values.withUnsafeBufferPointer { all in
            for id in ids where id < UInt64(matrix.rows) {
                body(id, UnsafeBufferPointer(rebasing: all[Int(id) * d..<(Int(id) + 1) * d]))
            }
        }
    }
}

/// Readers for .fvecs / .ivecs and 2-D little-endian .npy matrices.
enum VectorFile {
    struct Failure: Error { let message: String }
    struct Matrix {
        var rows: Int
        var columns: Int
        var values: [Float]
        func row(_ i: Int) -> [Float] { Array(values[i * columns..<(i + 1) * columns]) }
    }

    static func load(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(message: "cannot read \(path)") }
        return data
    }

    static func readFloats(_ path: String) throws -> Matrix {
        let data = try load(path)
        if path.hasSuffix(".npy") {
            let (descr, shape, offset) = try npyHeader(data, path)
            guard descr == "<f4" else { throw Failure(message: "\(path): dtype \(descr), expected float32 (<f4)") }
            let values = data[offset...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            guard values.count == shape.0 * shape.1 else { throw Failure(message: "\(path): truncated") }
            return Matrix(rows: shape.0, columns: shape.1, values: values)
        }
        let rows = try vecs(data, path)
        guard Set(rows.map(\.count)).count <= 1 else { throw Failure(message: "\(path): rows of different lengths") }
        return Matrix(rows: rows.count, columns: rows.first?.count ?? 0,
                      values: rows.flatMap { $0.map { Float(bitPattern: $0) } })
    }

    static func readInts(_ path: String) throws -> [[Int]] {
        let data = try load(path)
        if path.hasSuffix(".npy") {
            let (descr, shape, offset) = try npyHeader(data, path)
            let body = data[offset...]
            let flat: [Int]
            switch descr {
            case "<i8": flat = body.withUnsafeBytes { $0.bindMemory(to: Int64.self).map { Int($0) } }
            case "<i4": flat = body.withUnsafeBytes { $0.bindMemory(to: Int32.self).map { Int($0) } }
            default: throw Failure(message: "\(path): dtype \(descr), expected int32 or int64")
            }
            guard flat.count == shape.0 * shape.1 else { throw Failure(message: "\(path): truncated") }
            return (0..<shape.0).map { Array(flat[$0 * shape.1..<($0 + 1) * shape.1]) }
        }
        return try vecs(data, path).map { $0.map { Int(Int32(bitPattern: $0)) } }
    }

    private static func vecs(_ data: Data, _ path: String) throws -> [[UInt32]] {
        var rows: [[UInt32]] = []
        try data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var o = 0
            while o < b.count {
                guard o + 4 <= b.count else { throw Failure(message: "\(path): truncated") }
                let d = Int(b.loadUnaligned(fromByteOffset: o, as: Int32.self))
                guard d > 0, o + 4 + 4 * d <= b.count else { throw Failure(message: "\(path): bad record at byte \(o)") }
                rows.append((0..<d).map { b.loadUnaligned(fromByteOffset: o + 4 + 4 * $0, as: UInt32.self) })
                o += 4 + 4 * d
            }
        }
        return rows
    }

    /// (dtype, (rows, columns), data offset) of a C-order 2-D (or 1-D) .npy file.
    private static func npyHeader(_ data: Data, _ path: String) throws -> (String, (Int, Int), Int) {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw Failure(message: "\(path): not a .npy file")
        }
        let major = bytes[6]
        let (len, start) = major == 1 ? (Int(bytes[8]) | Int(bytes[9]) << 8, 10)
            : (Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24, 12)
        guard data.count >= start + len else { throw Failure(message: "\(path): truncated header") }
        let header = String(decoding: data[start..<start + len], as: UTF8.self)
        guard !header.contains("'fortran_order': True") else { throw Failure(message: "\(path): Fortran order not supported") }
        guard let dr = header.range(of: "'descr': '"), let de = header[dr.upperBound...].firstIndex(of: "'"),
              let sr = header.range(of: "'shape': ("), let se = header[sr.upperBound...].firstIndex(of: ")") else {
            throw Failure(message: "\(path): unreadable .npy header")
        }
        let dims = header[sr.upperBound..<se].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let shape = dims.count == 2 ? (dims[0], dims[1]) : dims.count == 1 ? (dims[0], 1) : (0, 0)
        return (String(header[dr.upperBound..<de]), shape, start + len)
    }
}
