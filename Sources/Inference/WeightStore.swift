import CKernels
import Foundation

/// A tensor of f32 values, either viewed in a mapped file or converted into memory it owns.
public final class FloatTensor: @unchecked Sendable {   // read-only after init; its memory is owned or kept alive by `keepAlive`
    public let shape: [Int]
    public let pointer: UnsafePointer<Float>
    public var count: Int { shape.reduce(1, *) }
    private let owned: UnsafeMutablePointer<Float>?
    private let keepAlive: AnyObject?

    init(shape: [Int], mapped: UnsafePointer<Float>, file: AnyObject) {
        self.shape = shape
        self.pointer = mapped
        self.owned = nil
        self.keepAlive = file
    }

    /// Takes ownership of `owned` (allocated with `allocate(capacity:)`).
    public init(shape: [Int], owned: UnsafeMutablePointer<Float>) {
        self.shape = shape
        self.pointer = UnsafePointer(owned)
        self.owned = owned
        self.keepAlive = nil
    }

    deinit { owned?.deallocate() }

    public subscript(i: Int) -> Float { pointer[i] }
}

/// All tensors of a model folder (`model.safetensors`, or the shards named by
/// `model.safetensors.index.json`), read as f32 whatever their stored type.
public final class WeightStore: @unchecked Sendable {   // `files` and `index` are filled in init and only read after
    private var files: [SafeTensorsFile] = []
    private var index: [String: (file: SafeTensorsFile, info: TensorInfo)] = [:]

    /// Every tensor name in the store.
    public var names: [String] { Array(index.keys) }

    /// Opens the weights of a model folder.
    public init(folder: URL) throws {
        let fm = FileManager.default
        let single = folder.appendingPathComponent("model.safetensors")
        let indexURL = folder.appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        if fm.fileExists(atPath: single.path) {
            shardNames = ["model.safetensors"]
        } else if fm.fileExists(atPath: indexURL.path) {
            guard let data = fm.contents(atPath: indexURL.path),
                  let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                  let map = root["weight_map"] as? [String: String] else {
                throw InferenceError(.corrupt, "\(indexURL.path): not a JSON object with a 'weight_map'")
            }
            shardNames = Array(Set(map.values)).sorted()
        } else {
            throw InferenceError(.unreadable, "\(folder.path): no model.safetensors or model.safetensors.index.json (only safetensors weights are supported)")
        }
        for name in shardNames {
            let file = try SafeTensorsFile(url: folder.appendingPathComponent(name))
            files.append(file)
            for (tensor, info) in file.tensors { index[tensor] = (file, info) }
        }
    }

    /// Whether a tensor exists.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The shape of a tensor, if present.
    public func shape(of name: String) -> [Int]? { index[name]?.info.shape }

    /// A tensor as f32, checked against the expected shape.
    public func floats(_ name: String, shape expected: [Int]) throws -> FloatTensor {
        guard let (file, info) = index[name] else {
            throw InferenceError(.missingTensor, "\(files.first?.url.deletingLastPathComponent().path ?? "model"): tensor '\(name)' is missing from the weights")
        }
        guard info.shape == expected else {
            throw InferenceError(.wrongShape, "\(file.url.path): tensor '\(name)' has shape \(info.shape), expected \(expected)")
        }
        let raw = file.bytes(of: info)
        let n = expected.reduce(1, *)
        switch info.dtype {
        case .f32:
            if Int(bitPattern: raw.baseAddress) % MemoryLayout<Float>.alignment == 0 {
                return FloatTensor(shape: expected, mapped: raw.baseAddress!.assumingMemoryBound(to: Float.self), file: file)
            }
            let out = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            UnsafeMutableRawPointer(out).copyMemory(from: raw.baseAddress!, byteCount: n * 4)
            file.release(info)
            return FloatTensor(shape: expected, owned: out)
        case .f16, .bf16:
            let out = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            var halves = [UInt16](repeating: 0, count: n)
            halves.withUnsafeMutableBytes { $0.copyMemory(from: raw) }
            halves.withUnsafeBufferPointer { src in
                if info.dtype == .f16 { sx_f16_to_f32(src.baseAddress, out, n) } else { sx_bf16_to_f32(src.baseAddress, out, n) }
            }
            file.release(info)   // the mapped copy is not needed any more: keep one copy in memory
            return FloatTensor(shape: expected, owned: out)
        default:
            throw InferenceError(.unsupportedDType, "\(file.url.path): tensor '\(name)' has dtype \(info.dtype.rawValue); weights must be F32, F16 or BF16")
        }
    }
}
