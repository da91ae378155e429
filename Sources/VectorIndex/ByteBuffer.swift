/// Little-endian appends to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ v: Float) { append(v.bitPattern) }
    mutating func append(_ v: Double) { append(v.bitPattern) }

    /// Appends the raw bytes of `count` values at `p` (this platform is little-endian).
    mutating func append<T>(raw p: UnsafePointer<T>, count: Int) {
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: p, count: count * MemoryLayout<T>.stride))
    }
}

/// Bounds-checked little-endian reads; running past the end is a `corrupt` error.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0
    let what: String

    init(_ bytes: UnsafeRawBufferPointer, what: String) {
        self.bytes = bytes
        self.what = what
    }

    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else {
            throw VectorIndexError(.corrupt, "\(what) ends early (wanted \(n) bytes at offset \(offset), \(remaining) left)")
        }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let b = try take(MemoryLayout<T>.size)
        var v = T.zero
        withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: b) }
        return T(littleEndian: v)
    }

    mutating func readFloat() throws -> Float { Float(bitPattern: try read(UInt32.self)) }
    mutating func readDouble() throws -> Double { Double(bitPattern: try read(UInt64.self)) }

    /// Copies `count` values into `p`.
    mutating func copy<T>(into p: UnsafeMutablePointer<T>, count: Int) throws {
        guard count > 0 else { return }
        let (size, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard !overflow else { throw VectorIndexError(.corrupt, "\(what) has an impossible length") }
        let b = try take(size)
        UnsafeMutableRawPointer(p).copyMemory(from: b.baseAddress!, byteCount: size)
    }

    mutating func array<T>(_: T.Type, count: Int) throws -> [T] where T: FixedWidthInteger {
        guard count > 0 else { return [] }
        guard count <= remaining else { throw VectorIndexError(.corrupt, "\(what) ends early") }
        var out = [T](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { try copy(into: $0.baseAddress!, count: count) }
        return out
    }
}
