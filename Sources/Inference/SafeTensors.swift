import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Element types of safetensors tensors.
public enum DType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

/// One tensor's place in a safetensors file.
public struct TensorInfo: Sendable {
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the file.
    public let byteRange: Range<Int>
}

/// A memory-mapped `.safetensors` file: its header parsed and checked, its data left on disk.
public final class SafeTensorsFile: @unchecked Sendable {   // a read-only mapping, unmapped only in deinit
    public let url: URL
    public let tensors: [String: TensorInfo]
    let base: UnsafeRawPointer
    let size: Int

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw InferenceError(.unreadable, "\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw InferenceError(.unreadable, "\(path): cannot stat (\(String(cString: strerror(errno))))")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw InferenceError(.corrupt, "\(path): \(size) bytes is too short for a safetensors file (truncated?)")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw InferenceError(.unreadable, "\(path): cannot map into memory (\(String(cString: strerror(errno))))")
        }
        let base = UnsafeRawPointer(mapped)
        do {
            self.tensors = try Self.parseHeader(base: base, size: size, path: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
        self.base = base
        self.size = size
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
    }

    /// Gives back the memory of a tensor's pages once it has been copied out (converted to f32):
    /// the kernel drops them from this process, and reads them from the file again should the
    /// tensor be asked for again. Pages shared with a neighbouring tensor are kept.
    func release(_ info: TensorInfo) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (info.byteRange.lowerBound + page - 1) / page * page
        let end = info.byteRange.upperBound / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// Raw bytes of a tensor, valid while this file object lives.
    public func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + info.byteRange.lowerBound, count: info.byteRange.count)
    }

    private static func parseHeader(base: UnsafeRawPointer, size: Int, path: String) throws -> [String: TensorInfo] {
        let declared = base.loadUnaligned(as: UInt64.self).littleEndian
        guard declared > 1, declared <= UInt64(size - 8), declared <= 100_000_000 else {
            throw InferenceError(.corrupt, "\(path): header length \(declared) does not fit a file of \(size) bytes (truncated or not safetensors)")
        }
        let headerLength = Int(declared)
        let headerData = Data(bytes: base + 8, count: headerLength)
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw InferenceError(.corrupt, "\(path): the header is not a JSON object (not a safetensors file?)")
        }
        let dataStart = 8 + headerLength
        let dataLength = size - dataStart
        var tensors: [String: TensorInfo] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw InferenceError(.corrupt, "\(path): tensor '\(name)' has a malformed header entry")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw InferenceError(.unsupportedDType, "\(path): tensor '\(name)' has dtype \(dtypeName) (supported: F32, F16, BF16)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw InferenceError(.corrupt, "\(path): tensor '\(name)' spans bytes \(begin)..<\(end) but the data section has \(dataLength) bytes (truncated file?)")
            }
            // The byte size the shape needs, or nil if it is negative or overflows.
            let needed = shape.reduce(Optional(dtype.byteSize)) { acc, d in
                guard let acc, d >= 0 else { return nil }
                let (p, overflow) = acc.multipliedReportingOverflow(by: d)
                return overflow ? nil : p
            }
            guard let needed, needed == end - begin else {
                throw InferenceError(.corrupt, "\(path): tensor '\(name)' of shape \(shape) \(dtypeName) does not fit its \(end - begin) bytes")
            }
            tensors[name] = TensorInfo(dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<(dataStart + end))
        }
        return tensors
    }
}
