import XCTest
@testable import VectorIndex
#if canImport(Glibc)
import Glibc
#endif

/// kill -9 the writer at random points, 20 times: the file then loads with a state the writer
/// saved (or none yet), or is detected as damaged and rebuilt; never a wrong answer or a crash.
final class CrashTests: XCTestCase {
    static let batch = 100
    static let data = TestData.clustered(count: 6000, dimensions: 16, clusters: 8, seed: 61)
    static let envKey = "SEXTANT_HNSW_CRASH_FILE"

    /// The writer: run in a child process (this test binary with the environment variable set);
    /// it adds a batch, saves, and repeats.
    func testChildWriter() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.envKey] else { return }  // only as a child
        let url = URL(fileURLWithPath: path)
        let index = try HNSWIndex(dimensions: 16, metric: .l2, parameters: HNSWParameters(trainingSize: 300))
        var n = 0
        while n + Self.batch <= Self.data.count {
            for i in n..<n + Self.batch { try index.add(id: UInt64(i), vector: Self.data[i]) }
            n += Self.batch
            if n % 700 == 0 { for i in stride(from: n - 700, to: n, by: 7) { try index.remove(id: UInt64(i)) } }
            try index.save(to: url)
        }
        while true { sleep(1) }
    }

    /// The ids a saved state holds after `n` vectors were added.
    static func expected(_ n: Int) -> Set<UInt64> {
        var ids = Set((0..<UInt64(n)).map { $0 })
        for end in stride(from: 700, through: n, by: 700) {
            for i in stride(from: end - 700, to: end, by: 7) { ids.remove(UInt64(i)) }
        }
        return ids
    }

    func testKillWriterTwentyTimes() throws {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var rng = TestRandom(seed: UInt64(getpid()))
        var outcomes: [String: Int] = [:]
        for trial in 0..<20 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crash-\(getpid())-\(trial)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = dir.appendingPathComponent("index.hnsw")
            let child = Process()
            child.executableURL = exe
            child.arguments = ["VectorIndexTests.CrashTests/testChildWriter"]
            child.environment = ProcessInfo.processInfo.environment.merging([Self.envKey: file.path]) { $1 }
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            usleep(UInt32(100_000 + rng.int(1_500_000)))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal, "the writer was killed, not finished")

            guard FileManager.default.fileExists(atPath: file.path) else {
                outcomes["no file yet", default: 0] += 1
                continue
            }
            let index: HNSWIndex
            do {
                index = try HNSWIndex.load(from: file)
                outcomes["loaded", default: 0] += 1
            } catch let e as VectorIndexError where e.code == .corrupt {
                outcomes["damaged, rebuilt", default: 0] += 1
                index = try HNSWIndex.rebuild(dimensions: 16, metric: .l2, from: Self.data.prefix(300).enumerated().map { (UInt64($0), $1) })
            }
            try index.checkInvariants(reachability: false)
            // The state is one the writer saved: ids 0..<n minus the deletions, n a batch multiple.
            // (Several states can have the same count: the one whose ids are all present.)
            let n = (0...Self.data.count / Self.batch).map { $0 * Self.batch }.first { n in
                let ids = Self.expected(n)
                return ids.count == index.count && ids.allSatisfy { index.contains(id: $0) }
            }
            XCTAssertNotNil(n, "ids (\(index.count) of them) that no saved state has")
            guard let n else { continue }
            let ids = Self.expected(n)
            for id in ids.prefix(50) {
                let hit = try index.search(Self.data[Int(id)], k: 1)
                XCTAssertEqual(hit.first?.id, id, "trial \(trial): wrong answer")
            }
            for id in 0..<UInt64(n) where !ids.contains(id) { XCTAssertFalse(index.contains(id: id)) }
        }
        print("crash outcomes: \(outcomes)")
    }
}
