import CKernels
import Foundation
import Testing
@testable import Inference

/// Writes a safetensors file with the given tensors (name, dtype, shape, raw bytes).
func writeSafeTensors(_ tensors: [(String, String, [Int], [UInt8])], to url: URL, truncateTo: Int? = nil) throws {
    var header: [String: Any] = ["__metadata__": ["format": "pt"]]
    var data: [UInt8] = []
    for (name, dtype, shape, bytes) in tensors {
        header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [data.count, data.count + bytes.count]]
        data += bytes
    }
    var headerBytes = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
    while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
    var file = withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { Array($0) }
    file += headerBytes + data
    if let n = truncateTo { file = Array(file.prefix(n)) }
    try Data(file).write(to: url)
}

func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

func tempDir() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sextant-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct SafeTensorsTests {
    @Test func readsF32F16AndBF16() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let values: [Float] = [1, -2, 0.5, 4]
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x4400]
        let bf16 = values.map { UInt16($0.bitPattern >> 16) }
        try writeSafeTensors([
            ("a", "F32", [2, 2], bytes(values)),
            ("b", "F16", [4], f16.withUnsafeBytes { Array($0) }),
            ("c", "BF16", [2, 2], bf16.withUnsafeBytes { Array($0) }),
        ], to: dir.appendingPathComponent("model.safetensors"))
        let store = try WeightStore(folder: dir)
        for name in ["a", "c"] {
            let t = try store.floats(name, shape: [2, 2])
            #expect((0..<4).map { t[$0] } == values)
        }
        let b = try store.floats("b", shape: [4])
        #expect((0..<4).map { b[$0] } == values)
    }

    @Test func shardedWeightsAreFoundThroughTheIndex() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeSafeTensors([("x", "F32", [2], bytes([1, 2]))], to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try writeSafeTensors([("y", "F32", [1], bytes([3]))], to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index = #"{"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let store = try WeightStore(folder: dir)
        #expect(try store.floats("y", shape: [1])[0] == 3)
        #expect(try store.floats("x", shape: [2])[1] == 2)
    }

    @Test func damagedFilesGiveErrorsNamingFileAndTensor() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        let tensors: [(String, String, [Int], [UInt8])] = [("w", "F32", [4, 4], bytes(Array(repeating: 1, count: 16)))]

        // Truncated in the data section.
        try writeSafeTensors(tensors, to: url)
        let full = try Data(contentsOf: url).count
        try writeSafeTensors(tensors, to: url, truncateTo: full - 10)
        let truncated = #expect(throws: InferenceError.self) { try WeightStore(folder: dir) }
        #expect(truncated?.code == .corrupt)
        #expect(truncated?.message.contains("model.safetensors") == true)
        #expect(truncated?.message.contains("'w'") == true)

        // Truncated inside the header, and shorter than the length prefix.
        try writeSafeTensors(tensors, to: url, truncateTo: 20)
        #expect(throws: InferenceError.self) { try WeightStore(folder: dir) }
        try writeSafeTensors(tensors, to: url, truncateTo: 5)
        #expect(throws: InferenceError.self) { try WeightStore(folder: dir) }

        // Not safetensors at all.
        try Data(repeating: 0xFF, count: 4096).write(to: url)
        #expect(throws: InferenceError.self) { try WeightStore(folder: dir) }

        // A size that does not match the shape.
        try writeSafeTensors([("w", "F32", [4, 5], bytes(Array(repeating: 1, count: 16)))], to: url)
        #expect(throws: InferenceError.self) { try WeightStore(folder: dir) }

        // Wrong shape or dtype for what the model expects.
        try writeSafeTensors(tensors, to: url)
        let store = try WeightStore(folder: dir)
        let shape = #expect(throws: InferenceError.self) { try store.floats("w", shape: [4, 8]) }
        #expect(shape?.code == .wrongShape)
        #expect(shape?.message.contains("[4, 4]") == true)
        let missing = #expect(throws: InferenceError.self) { try store.floats("nope", shape: [1]) }
        #expect(missing?.code == .missingTensor)
        try writeSafeTensors([("w", "I64", [2], Array(repeating: 0, count: 16))], to: url)
        let dtype = #expect(throws: InferenceError.self) { try WeightStore(folder: dir).floats("w", shape: [2]) }
        #expect(dtype?.code == .unsupportedDType)
        try writeSafeTensors([("w", "F8_E4M3", [2], [0, 0])], to: url)
        let f8 = #expect(throws: InferenceError.self) { try WeightStore(folder: dir) }
        #expect(f8?.message.contains("F8_E4M3") == true)
    }

    @Test func missingWeightsAreReported() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let e = #expect(throws: InferenceError.self) { try WeightStore(folder: dir) }
        #expect(e?.message.contains("model.safetensors") == true)
    }
}
