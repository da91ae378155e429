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
            guard case .array(let items)? = o["vector"] else { throw fail("\(at): needs a \"vector\" array of numbers") }
            var vector: [Float] = []
            vector.reserveCapacity(items.count)
            for item in items {
                switch item {
                case .int(let n): vector.append(Float(n))
                case .double(let d): vector.append(Float(d))
                default: throw fail("\(at): the vector holds \(item.typeName), not only numbers")
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
        let c = try collection.open(mustExist: false)
        let stored = try attempt { try c.importDocuments(documents, modelSHA256: modelSha256) }
        print("imported \(stored) document\(stored == 1 ? "" : "s"); nothing embedded")
    }
}
