import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The writer lock of a collection folder, shared by every process and thread that opens it:
/// an exclusive `flock` on `write.lock`, plus an in-process mutex (a flock is per open file,
/// so threads of one process must also queue among themselves). The kernel drops the lock when
/// its holder dies, `kill -9` included, so a killed writer never blocks the next one.
final class WriteLock: @unchecked Sendable {   // the descriptor is used only under `mutex`
    let url: URL
    private let mutex = NSLock()
    private var fd: Int32 = -1

    init(directory: URL) {
        url = directory.appendingPathComponent("write.lock")
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Runs `body` holding the lock, waiting for other writers first.
    func withLock<T>(_ body: () throws -> T) throws -> T {
        mutex.lock()
        defer { mutex.unlock() }
        try acquire(wait: true)
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }

    /// Runs `body` holding the lock if no other writer holds it; nil (and no call) otherwise.
    func withLockIfFree<T>(_ body: () throws -> T) throws -> T? {
        guard mutex.try() else { return nil }
        defer { mutex.unlock() }
        guard (try? acquire(wait: false)) != nil else { return nil }
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }

    private func acquire(wait: Bool) throws {
        if fd < 0 {
            fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 { fd = open(url.path, O_RDONLY | O_CLOEXEC) }
            guard fd >= 0 else {
                throw SextantError(.io, "\(url.path): cannot open the collection's write lock (\(String(cString: strerror(errno)))); check the folder's permissions")
            }
        }
        while flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            if errno == EINTR { continue }
            throw SextantError(.io, "\(url.path): cannot lock the collection for writing (\(String(cString: strerror(errno))))")
        }
    }
}
