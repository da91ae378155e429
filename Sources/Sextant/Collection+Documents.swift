import Foundation
import Store

/// A text document given directly (by the HTTP server or a library user) rather than read from a file.
public struct TextDocument: Sendable {
    public var id: String
    public var text: String
    public var title: String

    public init(id: String, text: String, title: String = "") {
        self.id = id
        self.text = text
        self.title = title
    }
}

/// What happened to one text document.
public struct TextDocumentResult: Sendable, Codable, Equatable {
    public var id: String
    public var path: String
    public var chunks: Int
    /// false when a document with this id was replaced.
    public var created: Bool
    /// false when the text and title were the same as stored (nothing was embedded).
    public var changed: Bool
}

extension Collection {
    /// The path under which a text document is stored (`doc:ID`); search hits name it.
    public static func documentPath(id: String) -> String { "doc:" + id }

    /// Checks an id: 1 to 256 characters, no control characters.
    public static func validateDocumentId(_ id: String) throws {
        guard !id.isEmpty, id.count <= 256 else {
            throw SextantError(.invalidArgument, "a document id must have 1 to 256 characters")
        }
        guard !id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw SextantError(.invalidArgument, "a document id must not contain control characters")
        }
    }

    /// Adds or replaces one text document `doc:ID` (chunked and embedded like a file's text).
    @discardableResult
    public func upsertText(id: String, text: String, title: String = "") throws -> TextDocumentResult {
        try upsertTexts([TextDocument(id: id, text: text, title: title)])[0]
    }

    /// Adds or replaces text documents (`doc:ID` each), embedding all their chunks in one call.
    /// Each document is replaced in one transaction; the vector index file is saved once at the end.
    /// Not safe to call concurrently with other writers (`sync`, `remove`): serialize writes.
    public func upsertTexts(_ documents: [TextDocument]) throws -> [TextDocumentResult] {
        var seenIds = Set<String>()
        for doc in documents {
            try Self.validateDocumentId(doc.id)
            guard seenIds.insert(doc.id).inserted else {
                throw SextantError(.invalidArgument, "document id '\(doc.id)' is given twice")
            }
            guard !doc.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw SextantError(.invalidArgument, "document '\(doc.id)' has no text")
            }
        }
        let chunker = Chunker(maxTokens: max(manifest.chunkTokens, 1), overlapTokens: manifest.overlapTokens) { [embedder] in
            embedder.tokenizer.tokenize($0).count
        }
        let known = try store.documents()
        struct Pending { var doc: TextDocument; var path: String; var hash: String; var chunks: [Chunk]; var isNew: Bool }
        var results: [TextDocumentResult?] = Array(repeating: nil, count: documents.count)
        var pending: [(slot: Int, item: Pending)] = []
        for (slot, doc) in documents.enumerated() {
            let path = Self.documentPath(id: doc.id)
            let hash = SHA256.hex(Array((manifest.chunkTokens.description + "\u{0}" + doc.title + "\u{0}" + doc.text).utf8))
            if let old = known[path], old.contentHash == hash {
                results[slot] = TextDocumentResult(id: doc.id, path: path, chunks: (try? store.chunkTexts(documentId: old.id).count) ?? 0,
                                                   created: false, changed: false)
                continue
            }
            let chunks = manifest.chunkTokens == 0 ? Self.wholeDocument(doc.text) : chunker.chunks(of: doc.text, markdown: false)
            guard !chunks.isEmpty else { throw SextantError(.invalidArgument, "document '\(doc.id)' has no text") }
            pending.append((slot, Pending(doc: doc, path: path, hash: hash, chunks: chunks, isNew: known[path] == nil)))
        }
        guard !pending.isEmpty else { return results.map { $0! } }
        let vectors = embedder.embed(pending.flatMap { $0.item.chunks.map(\.text) }, kind: .passage)
        var at = 0
        for (slot, p) in pending {
            let newChunks = p.chunks.enumerated().map { j, c in
                NewChunk(text: c.text, byteRange: c.byteRange, lineRange: c.lineRange, headingPath: c.headingPath, vector: vectors[at + j])
            }
            at += p.chunks.count
            let (removed, added) = try store.replaceDocument(path: p.path, contentHash: p.hash, size: Int64(p.doc.text.utf8.count),
                                                             modifiedAt: Date().timeIntervalSince1970, title: p.doc.title, chunks: newChunks)
            for id in removed { try index.remove(id: UInt64(id)) }
            for (id, c) in zip(added, newChunks) { try index.add(id: UInt64(id), vector: c.vector) }
            results[slot] = TextDocumentResult(id: p.doc.id, path: p.path, chunks: newChunks.count, created: p.isNew, changed: true)
        }
        try saveIndex()
        return results.map { $0! }
    }

    /// Removes the text document `doc:ID`; false if there is none.
    @discardableResult
    public func removeDocument(id: String) throws -> Bool {
        try Self.validateDocumentId(id)
        let removed = try store.removeDocument(path: Self.documentPath(id: id))
        guard !removed.isEmpty else { return false }   // upserts never store a document without chunks
        for chunk in removed { try index.remove(id: UInt64(chunk)) }
        try saveIndex()
        return true
    }
}
