import Foundation
import Store

/// A text document given directly (by the HTTP server or a library user) rather than read from a file.
public struct TextDocument: Sendable {
    public var id: String
    public var text: String
    public var title: String
    /// The document's metadata as a JSON object (stored with it, returned as given).
    public var metadataJSON: String

    public init(id: String, text: String, title: String = "", metadataJSON: String = "{}") {
        self.id = id
        self.text = text
        self.title = title
        self.metadataJSON = metadataJSON
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
    /// Each document is replaced in one transaction; the vector index file is saved once at the
    /// end. Safe to call while other threads or processes write: writes queue on the
    /// collection's write lock. A document whose text and title are unchanged is not embedded
    /// again; its metadata is updated.
    public func upsertTexts(_ documents: [TextDocument]) throws -> [TextDocumentResult] {
        let metadata = try Self.checked(documents.map { ($0.id, $0.text, $0.metadataJSON) })
        let chunker = Chunker(maxTokens: max(manifest.chunkTokens, 1), overlapTokens: manifest.overlapTokens) { [embedder] in
            embedder.tokenizer.tokenize($0).count
        }
        let known = try knownDocuments()
        struct Pending { var doc: TextDocument; var path: String; var hash: String; var chunks: [Chunk]; var isNew: Bool }
        var results: [TextDocumentResult?] = Array(repeating: nil, count: documents.count)
        var pending: [(slot: Int, item: Pending)] = []
        var changes: [Change] = []
        for (slot, doc) in documents.enumerated() {
            let path = Self.documentPath(id: doc.id)
            let hash = SHA256.hex(Array((manifest.chunkTokens.description + "\u{0}" + doc.title + "\u{0}" + doc.text).utf8))
            if let old = known[Array(path.utf8)], old.contentHash == hash {
                results[slot] = TextDocumentResult(id: doc.id, path: path, chunks: (try? store.chunkTexts(documentId: old.id).count) ?? 0,
                                                   created: false, changed: false)
                // Sent anew: its metadata replaces what was stored, fields set since included.
                changes.append(.setMetadata(path: path, json: metadata[slot], keepSetFields: false))
                continue
            }
            let chunks = manifest.chunkTokens == 0 ? Self.wholeDocument(doc.text) : chunker.chunks(of: doc.text, markdown: false)
            guard !chunks.isEmpty else { throw SextantError(.invalidArgument, "document '\(doc.id)' has no text") }
            pending.append((slot, Pending(doc: doc, path: path, hash: hash, chunks: chunks, isNew: known[Array(path.utf8)] == nil)))
        }
        let vectors = embedder.embed(pending.flatMap { $0.item.chunks.map(\.text) }, kind: .passage)
        var at = 0
        for (slot, p) in pending {
            let newChunks = p.chunks.enumerated().map { j, c in
                NewChunk(text: c.text, byteRange: c.byteRange, lineRange: c.lineRange, headingPath: c.headingPath, vector: vectors[at + j])
            }
            at += p.chunks.count
            changes.append(.replace(DocumentVersion(path: p.path, contentHash: p.hash, size: Int64(p.doc.text.utf8.count),
                                                    modifiedAt: Date().timeIntervalSince1970, title: p.doc.title,
                                                    metadata: metadata[slot], keepSetFields: false, chunks: newChunks)))
            results[slot] = TextDocumentResult(id: p.doc.id, path: p.path, chunks: newChunks.count, created: p.isNew, changed: true)
        }
        if !changes.isEmpty { try apply(changes, save: !pending.isEmpty) }
        return results.map { $0! }
    }

    /// Checks documents given directly (valid, distinct ids; text that is not empty and has no
    /// NUL; metadata a flat object of scalars and arrays of scalars) and returns each one's
    /// metadata as canonical JSON.
    static func checked(_ documents: [(id: String, text: String, metadataJSON: String)]) throws -> [String] {
        var seenIds = Set<[UInt8]>()
        var metadata: [String] = []
        for doc in documents {
            try validateDocumentId(doc.id)
            guard seenIds.insert(Array(doc.id.utf8)).inserted else {
                throw SextantError(.invalidArgument, "document id '\(doc.id)' is given twice")
            }
            guard !doc.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw SextantError(.invalidArgument, "document '\(doc.id)' has no text")
            }
            guard !doc.text.utf8.contains(0) else {
                throw SextantError(.invalidArgument, "document '\(doc.id)' contains a NUL character: send text without NUL bytes")
            }
            do {
                metadata.append(JSONValue.object(try Metadata.validate(try JSONValue.parse(doc.metadataJSON),
                                                                       context: "the metadata of document '\(doc.id)'")).serialized)
            } catch let e as JSONSyntaxError {
                throw SextantError(.invalidArgument, "the metadata of document '\(doc.id)' is not valid JSON (\(e))")
            } catch {
                throw SextantError.lifted(error)
            }
        }
        return metadata
    }

    /// Removes the text document `doc:ID`; false if there is none.
    @discardableResult
    public func removeDocument(id: String) throws -> Bool {
        try Self.validateDocumentId(id)
        return try apply([.remove(paths: [Self.documentPath(id: id)])], save: true)[0]
    }

    /// The stored metadata (a JSON object) of the text document `doc:ID`, or nil if there is none.
    public func documentMetadata(id: String) throws -> String? {
        try store.document(path: Self.documentPath(id: id))?.metadata
    }

    // MARK: Metadata

    /// A document with its fields, by its key (a file's path, `file.jsonl#id`, or `doc:ID`), or nil.
    public func document(path: String) throws -> DocumentInfo? {
        do { return try store.documentInfo(path: path) } catch { throw SextantError.lifted(error) }
    }

    /// Documents in a stable order, `limit` (1 to 1000) at a time: pass the last one's `rowId`
    /// as `after` for the next page. With `filter`, only the documents that match.
    public func documents(filter: MetadataFilter? = nil, after: Int64 = 0, limit: Int = 100) throws -> [DocumentInfo] {
        guard (1...1000).contains(limit) else { throw SextantError(.invalidArgument, "limit must be between 1 and 1000") }
        do { return try store.listDocuments(filter: filter, after: after, limit: limit) } catch { throw SextantError.lifted(error) }
    }

    /// Sets fields of the document at `path` without embedding anything again: each given field
    /// replaces the one of that name, null removes it. Fields set this way survive re-indexing
    /// the file; sending a `doc:` document anew replaces them. Built-in fields cannot be set.
    @discardableResult
    public func setFields(path: String, _ fields: [String: JSONValue]) throws -> DocumentInfo {
        try setFields([(path, fields)])[0]
    }

    /// `setFields(path:_:)` for many documents in one transaction: all are set, or (on any
    /// error, such as a path not in the collection) none.
    @discardableResult
    public func setFields(_ updates: [(path: String, fields: [String: JSONValue])]) throws -> [DocumentInfo] {
        guard !store.readOnly else {
            throw SextantError(.readOnly, "\(directory.path) is open read-only (\(store.readOnlyReason ?? "")): changes need a writable collection folder with free space")
        }
        for (path, fields) in updates where fields.isEmpty {
            throw SextantError(.invalidArgument, "no fields given for \(path): pass an object such as {\"status\": \"done\"}")
        }
        do {
            return try writeLock.withLock {
                // Every path must exist before anything is written.
                for (path, _) in updates where try store.document(path: path) == nil {
                    throw SextantError(.notFound, "no document at \(path) in the collection")
                }
                return try zip(updates, try store.setFields(updates)).map { update, info in
                    guard let info else { throw SextantError(.notFound, "no document at \(update.path) in the collection") }
                    return info
                }
            }
        } catch {
            throw SextantError.lifted(error)
        }
    }
}

/// A document whose chunk vectors were computed elsewhere (another machine, a Ray job), to be
/// stored without embedding: `doc:ID` with one chunk.
public struct ImportedDocument: Sendable {
    public var id: String
    public var text: String
    public var vector: [Float]
    public var title: String
    /// The document's fields as a JSON object.
    public var metadataJSON: String

    public init(id: String, text: String, vector: [Float], title: String = "", metadataJSON: String = "{}") {
        self.id = id
        self.text = text
        self.vector = vector
        self.title = title
        self.metadataJSON = metadataJSON
    }
}

extension Collection {
    /// Stores documents with precomputed vectors, nothing embedded: each becomes `doc:ID` with
    /// one chunk. Everything is checked before anything is written: `modelSHA256` must be the
    /// collection's model fingerprint (`sextant info`), every vector must have the collection's
    /// dimensions, finite components and unit length (within 1e-3), ids must be valid and
    /// distinct. Documents are stored in groups, one transaction each. Returns how many were
    /// stored.
    @discardableResult
    public func importDocuments(_ documents: [ImportedDocument], modelSHA256: String) throws -> Int {
        guard modelSHA256.lowercased() == manifest.modelSHA256 else {
            throw SextantError(.modelMismatch, "the vectors were made with a model whose weights have sha256 \(modelSHA256.prefix(16))…; this collection's model \(manifest.modelName) has \(manifest.modelSHA256.prefix(16))… (sextant info prints it)")
        }
        let metadata = try Self.checked(documents.map { ($0.id, $0.text, $0.metadataJSON) })
        for (i, doc) in documents.enumerated() {
            let at = "document \(i + 1) ('\(doc.id)')"
            guard doc.vector.count == manifest.dimensions else {
                throw SextantError(.invalidArgument, "\(at): the vector has \(doc.vector.count) dimensions; the collection's have \(manifest.dimensions)")
            }
            guard doc.vector.allSatisfy(\.isFinite) else { throw SextantError(.invalidArgument, "\(at): the vector has a non-finite component") }
            let norm = doc.vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            guard abs(norm - 1) <= 1e-3 else {
                throw SextantError(.invalidArgument, "\(at): the vector has length \(norm), not 1 (the model's vectors are L2-normalized)")
            }
        }
        var stored = 0
        for start in stride(from: 0, to: documents.count, by: 256) {
            let group = documents[start..<min(documents.count, start + 256)]
            let changes = group.enumerated().map { j, doc -> Change in
                let hash = SHA256.hex(Array(("import\u{0}" + doc.title + "\u{0}" + doc.text).utf8))
                let chunk = NewChunk(text: doc.text, byteRange: 0..<doc.text.utf8.count,
                                     lineRange: 1...(doc.text.utf8.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }), headingPath: "", vector: doc.vector)
                return .replace(DocumentVersion(path: Self.documentPath(id: doc.id), contentHash: hash, size: Int64(doc.text.utf8.count),
                                                modifiedAt: Date().timeIntervalSince1970, title: doc.title,
                                                metadata: metadata[start + j], keepSetFields: false, chunks: [chunk]))
            }
            try apply(changes, save: start + 256 >= documents.count)
            stored += group.count
        }
        return stored
    }
}
