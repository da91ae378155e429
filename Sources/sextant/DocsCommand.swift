import ArgumentParser
import Foundation
import Sextant

/// `sextant docs`: list documents with their metadata, show one, set fields without re-embedding.
struct DocsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docs", abstract: "Documents and their metadata fields: list, show, set.",
        subcommands: [List.self, Show.self, Set.self])

    /// A document as printed with --json.
    struct Output: Encodable {
        let path: String
        let title: String
        let chunks: Int
        let metadata: [String: JSONValue]
        let row_id: Int64

        init(_ d: DocumentInfo) {
            path = d.path; title = d.title; chunks = d.chunks; metadata = d.fields; row_id = d.rowId
        }
    }

    /// The stored key of a document argument: `doc:ID` as it is; a file path made absolute
    /// (keeping a `#id` record suffix).
    static func key(_ argument: String) -> String {
        if argument.hasPrefix("doc:") { return argument }
        let parts = argument.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let file = URL(fileURLWithPath: String(parts[0])).standardizedFileURL.path
        return parts.count == 2 ? file + "#" + parts[1] : file
    }

    /// The fields other than the built-in ones, as compact JSON (for text output).
    static func ownFields(_ d: DocumentInfo) -> String {
        JSONValue.object(d.fields.filter { !["id", "path", "ext", "size", "mtime", "title"].contains($0.key) }).serialized
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List documents (a page at a time), optionally filtered.")
        @OptionGroup var collection: CollectionOptions
        @Option(name: .customLong("where"), help: ArgumentHelp("Only documents matching this JSON filter.", valueName: "json"))
        var whereFilter: String?
        @Option(help: "Documents per page (1-1000).") var limit = 100
        @Option(help: "Start after this row id (the previous page's last; printed as next_after).") var after: Int64 = 0
        @Flag(help: "JSON output: {\"documents\": [...], \"next_after\": N or null}.") var json = false

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be in 1...1000") }
            guard after >= 0 else { throw ValidationError("--after must not be negative") }
            if let whereFilter {
                do { _ = try MetadataFilter.parse(whereFilter) } catch { throw ValidationError("--where: \(error)") }
            }
        }

        func run() throws {
            let c = try collection.open()
            let filter = whereFilter.flatMap { try? MetadataFilter.parse($0) }
            let docs = try attempt { try c.documents(filter: filter, after: after, limit: limit) }
            let next = docs.count == limit ? docs.last?.rowId : nil
            if json {
                struct Page: Encodable {
                    let documents: [Output]
                    let next_after: Int64?
                    enum CodingKeys: CodingKey { case documents, next_after }
                    func encode(to encoder: Encoder) throws {   // next_after: null on the last page, not left out
                        var c = encoder.container(keyedBy: CodingKeys.self)
                        try c.encode(documents, forKey: .documents)
                        try c.encode(next_after, forKey: .next_after)
                    }
                }
                return try printJSON(Page(documents: docs.map(Output.init), next_after: next))
            }
            if docs.isEmpty { print("no documents") }
            for d in docs { print("\(d.path)  (\(d.chunks) chunk\(d.chunks == 1 ? "" : "s"))  \(ownFields(d))") }
            if let next { print("more: sextant docs list --after \(next)") }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one document's fields.")
        @Argument(help: "The document: a file path, file.jsonl#id, or doc:ID.") var document: String
        @OptionGroup var collection: CollectionOptions
        @Flag(help: "JSON output.") var json = false

        func run() throws {
            let c = try collection.open()
            guard let d = try attempt({ try c.document(path: DocsCommand.key(document)) }) else {
                throw fail("no document \(DocsCommand.key(document)) in the collection (sextant docs list shows what is there)")
            }
            if json { return try printJSON(Output(d)) }
            print("\(d.path)  (\(d.chunks) chunk\(d.chunks == 1 ? "" : "s"))")
            for key in d.fields.keys.sorted() { print("  \(key): \(d.fields[key]!.serialized)") }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Set metadata fields of documents (nothing is embedded again).",
            discussion: """
                FIELDS is a JSON object; each field replaces the one of that name and null removes it. Fields set this \
                way stay when the file is indexed again. With --file, every line of a JSON lines file is \
                {"path": DOCUMENT, "metadata": FIELDS}, all set in one transaction.
                """)
        @Argument(help: "The document: a file path, file.jsonl#id, or doc:ID.") var document: String?
        @Argument(help: "The fields, e.g. '{\"status\": \"done\", \"tags\": [\"a\", \"b\"]}'.") var fields: String?
        @Option(help: "A JSON lines file of {\"path\", \"metadata\"} updates instead of DOCUMENT FIELDS.") var file: String?
        @OptionGroup var collection: CollectionOptions
        @Flag(help: "Print the documents as JSON afterwards.") var json = false

        func validate() throws {
            if file == nil && (document == nil || fields == nil) { throw ValidationError("give DOCUMENT FIELDS, or --file FILE") }
            if file != nil && document != nil { throw ValidationError("give DOCUMENT FIELDS or --file FILE, not both") }
        }

        static func object(_ text: String, _ context: String) throws -> [String: JSONValue] {
            let value: JSONValue
            do { value = try JSONValue.parse(text) } catch { throw fail("\(context) is not valid JSON (\(error))") }
            guard case .object(let object) = value else { throw fail("\(context) must be a JSON object such as {\"status\": \"done\"}") }
            return object
        }

        func run() throws {
            var updates: [(path: String, fields: [String: JSONValue])] = []
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw fail("\(file): cannot read") }
                for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
                    let text = String(decoding: line, as: UTF8.self)
                    if text.allSatisfy(\.isWhitespace) { continue }
                    let record = try Self.object(text, "\(file) line \(i + 1)")
                    guard case .string(let path)? = record["path"], !path.isEmpty else {
                        throw fail("\(file) line \(i + 1): needs a \"path\" string (a file path, file.jsonl#id or doc:ID)")
                    }
                    guard case .object(let fields)? = record["metadata"] else {
                        throw fail("\(file) line \(i + 1): needs a \"metadata\" object of the fields to set")
                    }
                    updates.append((DocsCommand.key(path), fields))
                }
                guard !updates.isEmpty else { throw fail("\(file): no updates") }
            } else {
                updates = [(DocsCommand.key(document!), try Self.object(fields!, "FIELDS"))]
            }
            let c = try collection.open()
            let docs = try attempt { try c.setFields(updates) }
            if json { return file == nil ? try printJSON(Output(docs[0])) : try printJSON(docs.map(Output.init)) }
            if file != nil { return print("set fields of \(docs.count) document\(docs.count == 1 ? "" : "s")") }
            print("\(docs[0].path): \(ownFields(docs[0]))")
        }
    }
}
