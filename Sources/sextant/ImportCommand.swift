import ArgumentParser
import Foundation
import Sextant

/// `sextant import`: documents with vectors computed elsewhere, stored without embedding.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Store documents with precomputed vectors (nothing is embedded).",
        discussion: """
            Reads JSON lines {"id", "text", "vector": [...], "title"?, "metadata"?} from FILE (or stdin); each becomes the \\
            document doc:ID with one chunk. --model-sha256 must be the collection's model fingerprint (sextant info \\
            --json prints modelSHA256): vectors from another model are refused. Every line is checked before anything is stored.
            """)
    @Argument(help: "A JSON lines file (default: stdin).") var file: String?
    @Option(help: "A .npy array (rows × dimensions, float32 or float64) holding the vectors, one row per line.") var vectors: String?
    @Option(help: "The sha256 of the model's weights that made the vectors (sextant info --json: modelSHA256).") var modelSha256: String
    @OptionGroup var collection: CollectionOptions

    func run() throws {
        let data: Data
        if let file {
            guard let d = FileManager.default.contents(atPath: file) else { throw fail("\(file): cannot read") }
            data = d
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        let source = file ?? "stdin"
        let rows = try vectors.map { path -> (count: Int, dimensions: Int, values: [Float]) in
            do { return try NPY.read(path) } catch { throw fail("\(path): \(error)") }
        }
        var documents: [ImportedDocument] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let at = "\(source) line \(i + 1)"
            let value: JSONValue
            do { value = try JSONValue.parse(String(decoding: line, as: UTF8.self)) } catch { throw fail("\(at): not valid JSON (\(error))") }
            guard case .object(let o) = value else { throw fail("\(at): expected an object {\"id\", \"text\", \"vector\"}") }
            let id: String
            switch o["id"] {
            case .string(let s)?: id = s
            case .int(let n)?: id = String(n)
            default: throw fail("\(at): needs an \"id\" (a string or an integer)")
            }
            guard case .string(let text)? = o["text"] else { throw fail("\(at): needs a \"text\" string") }
            var vector: [Float] = []
            if let rows {
                guard o["vector"] == nil else { throw fail("\(at): has a \"vector\" although --vectors gives them") }
                let r = documents.count
                guard r < rows.count else { throw fail("\(vectors!): has \(rows.count) rows for more documents in \(source)") }
                vector = Array(rows.values[r * rows.dimensions..<(r + 1) * rows.dimensions])
            } else {
                guard case .array(let items)? = o["vector"] else { throw fail("\(at): needs a \"vector\" array of numbers (or give --vectors FILE.npy)") }
                vector.reserveCapacity(items.count)
                for item in items {
                    switch item {
                    case .int(let n): vector.append(Float(n))
                    case .double(let d): vector.append(Float(d))
                    default: throw fail("\(at): the vector holds \(item.typeName), not only numbers")
                    }
                }
            }
            var title = ""
            if let t = o["title"] {
                guard case .string(let s) = t else { throw fail("\(at): \"title\" must be a string") }
                title = s
            }
            documents.append(ImportedDocument(id: id, text: text, vector: vector, title: title,
                                              metadataJSON: (o["metadata"] ?? .object([:])).serialized))
        }
        guard !documents.isEmpty else { throw fail("\(source): no documents") }
        if let rows, rows.count != documents.count {
            throw fail("\(vectors!): has \(rows.count) rows for \(documents.count) documents in \(source)")
        }
        let c = try collection.open(mustExist: false)
        let stored = try attempt { try c.importDocuments(documents, modelSHA256: modelSha256) }
        print("imported \(stored) document\(stored == 1 ? "" : "s"); nothing embedded")
    }
}

/// NumPy's `.npy` format (version 1, 2 or 3): a 2-D little-endian float32 or float64 array in C order.
enum NPY {
    struct FormatError: Error, CustomStringConvertible { let description: String }

    static func read(_ path: String) throws -> (count: Int, dimensions: Int, values: [Float]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw FormatError(description: "cannot read") }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) else {
            throw FormatError(description: "not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, start: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        } else if major == 2 || major == 3, bytes.count >= 12 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        } else {
            throw FormatError(description: "unsupported .npy version \(major)")
        }
        guard start + headerLength <= bytes.count else { throw FormatError(description: "the header is cut short") }
        let header = String(decoding: bytes[start..<start + headerLength], as: UTF8.self)
        func field(_ name: String) -> String? {
            guard let r = header.range(of: "'\(name)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr") else { throw FormatError(description: "the header has no 'descr'") }
        let width: Int
        if descr.hasPrefix("'<f4'") { width = 4 } else if descr.hasPrefix("'<f8'") { width = 8 } else {
            throw FormatError(description: "dtype \(descr.prefix(6)) is not supported: save float32 or float64 (little-endian)")
        }
        guard let fortran = field("fortran_order"), fortran.hasPrefix("False") else {
            throw FormatError(description: "the array is in Fortran order: save it in C order (numpy.ascontiguousarray)")
        }
        guard let shapeText = field("shape"), let open = shapeText.firstIndex(of: "("), let close = shapeText.firstIndex(of: ")") else {
            throw FormatError(description: "the header has no 'shape'")
        }
        let dims = shapeText[shapeText.index(after: open)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.compactMap { Int($0) }
        guard dims.count == 2, dims[0] >= 0, dims[1] > 0 else {
            throw FormatError(description: "the array must be 2-D (rows × dimensions), not shape \(shapeText[open...close])")
        }
        let body = start + headerLength
        let (count, overflow) = dims[0].multipliedReportingOverflow(by: dims[1])
        guard !overflow, bytes.count - body == count * width else {
            throw FormatError(description: "holds \(bytes.count - body) bytes of data for shape (\(dims[0]), \(dims[1]))")
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                if width == 4 {
                    values[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: body + 4 * i, as: UInt32.self).littleEndian)
                } else {
                    values[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: body + 8 * i, as: UInt64.self).littleEndian))
                }
            }
        }
        return (dims[0], dims[1], values)
    }
}
