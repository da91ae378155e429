import Foundation
import GRDB

/// A document as the metadata API shows it.
public struct DocumentInfo: Sendable, Equatable {
    /// The document's row id (stable while the document is not replaced; pages listings).
    public var rowId: Int64
    public var path: String
    public var title: String
    public var chunks: Int
    /// Every field: built-in, set, and from the source.
    public var fields: [String: JSONValue]
    /// The fields set after ingest (null marks a removed source field).
    public var setFields: [String: JSONValue]
}

extension CollectionStore {
    // MARK: Writing fields

    /// Recomputes a document's effective fields, chunk range and `document_fields` rows from
    /// its columns. Called in every transaction that changes a document.
    static func refreshFields(_ db: Database, documentId: Int64) throws {
        guard let doc = try Row.fetchOne(db, sql: "SELECT path, size, modified_at, title, metadata, fields_set FROM documents WHERE id = ?",
                                         arguments: [documentId]) else { return }
        let range = try Row.fetchOne(db, sql: "SELECT MIN(id), MAX(id), COUNT(*) FROM chunks WHERE document_id = ?", arguments: [documentId])!
        let count: Int = range[2]
        let lo: Int64 = count > 0 ? range[0] : 0, hi: Int64 = count > 0 ? range[1] : -1
        // A document's chunks are inserted in one transaction, so their ids are consecutive.
        guard count == 0 || hi - lo + 1 == Int64(count) else {
            throw StoreError(.corrupt, "the chunks of \(doc["path"] as String) do not have consecutive ids: index the folders into a new collection (--index NEW_FOLDER)")
        }
        let builtIns = Metadata.builtIns(path: doc["path"], size: doc["size"], modifiedAt: doc["modified_at"], title: doc["title"])
        let fields = Metadata.effective(source: Metadata.decodeObject(doc["metadata"]), set: Metadata.decodeObject(doc["fields_set"]),
                                        builtIns: builtIns)
        // Stored: the document's own fields (the built-in ones are added when read).
        try db.execute(sql: "UPDATE documents SET fields_json = ?, chunk_lo = ?, chunk_hi = ? WHERE id = ?",
                       arguments: [JSONValue.object(fields.filter { builtIns[$0.key] == nil }).serialized, lo, hi, documentId])
        try db.execute(sql: "DELETE FROM document_fields WHERE document_id = ?", arguments: [documentId])
        let insert = try db.cachedStatement(sql: """
            INSERT INTO document_fields(document_id, key, type, value, in_array, chunk_lo, chunk_hi) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for row in Metadata.rows(fields.filter { !Metadata.columnFields.contains($0.key) }) {
            try insert.execute(arguments: [documentId, row.key, row.kind.rawValue, row.value.databaseValue, row.inArray ? 1 : 0, lo, hi])
        }
    }

    /// Refreshes the documents whose fields were never indexed (written before fields existed,
    /// or by an older build).
    static func hasStaleFields(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM documents WHERE chunk_hi < chunk_lo)") ?? false
    }

    static func refreshStaleFields(_ db: Database) throws {
        let stale = try Int64.fetchAll(db, sql: "SELECT id FROM documents WHERE chunk_hi < chunk_lo")
        for id in stale { try refreshFields(db, documentId: id) }
    }

    /// Sets fields of a document without embedding anything: each given field replaces the
    /// one of that name; null removes it. Built-in fields cannot be set. Returns the document,
    /// or nil when there is none at `path`.
    public func setFields(path: String, _ fields: [String: JSONValue]) throws -> DocumentInfo? {
        try setFields([(path, fields)])[0]
    }

    /// `setFields(path:_:)` for many documents in one transaction (all or nothing); nil for
    /// each path that is not in the collection.
    public func setFields(_ updates: [(path: String, fields: [String: JSONValue])]) throws -> [DocumentInfo?] {
        for (_, fields) in updates {
            for (key, value) in fields {
                guard !Metadata.builtInFields.contains(key) else {
                    throw StoreError(.invalidArgument, "'\(key)' is a built-in field (\(Metadata.builtInFields.joined(separator: ", "))) and cannot be set")
                }
                try Metadata.validateField(key, value, context: "fields")
            }
        }
        return try write(updates.count == 1 ? "setting fields of \(updates[0].path)" : "setting fields of \(updates.count) documents") { db in
            try updates.map { path, fields -> DocumentInfo? in
                guard let row = try Row.fetchOne(db, sql: "SELECT id, fields_set FROM documents WHERE path = ?", arguments: [path]) else { return nil }
                let id: Int64 = row[0]
                var set = Metadata.decodeObject(row[1])
                for (k, v) in fields { set[k] = v }
                try db.execute(sql: "UPDATE documents SET fields_set = ? WHERE id = ?", arguments: [JSONValue.object(set).serialized, id])
                try Self.refreshFields(db, documentId: id)
                return try Self.documentInfo(db, where: "d.id = ?", [id]).first
            }
        }
    }

    // MARK: Reading

    /// One document with its fields, by exact path.
    public func documentInfo(path: String) throws -> DocumentInfo? {
        try read("reading \(path)") { db in try Self.documentInfo(db, where: "d.path = ?", [path]).first }
    }

    /// Documents in row-id order after `after` (0 to start), at most `limit`, only those that
    /// match `filter` when one is given.
    public func listDocuments(filter: MetadataFilter? = nil, after: Int64 = 0, limit: Int = 100) throws -> [DocumentInfo] {
        try read("listing documents") { db in
            guard let filter else { return try Self.documentInfo(db, where: "d.id > ? ORDER BY d.id LIMIT ?", [after, limit]) }
            let set = try Self.evaluate(filter, db)
            var ids: [Int64] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT id, chunk_lo FROM documents WHERE id > ? ORDER BY id", arguments: [after])
            while ids.count < limit, let row = try rows.next() {
                if set.contains(row[1]) { ids.append(row[0]) }
            }
            guard !ids.isEmpty else { return [] }
            return try Self.documentInfo(db, where: "d.id IN (\(ids.map { _ in "?" }.joined(separator: ","))) ORDER BY d.id",
                                         ids.map { $0 as DatabaseValueConvertible })
        }
    }

    private static func documentInfo(_ db: Database, where clause: String, _ args: [DatabaseValueConvertible]) throws -> [DocumentInfo] {
        try Row.fetchAll(db, sql: """
            SELECT d.id, d.path, d.title, d.chunk_hi - d.chunk_lo + 1, d.fields_json, d.fields_set, d.size, d.modified_at
            FROM documents d WHERE \(clause)
            """, arguments: StatementArguments(args)).map { row in
            DocumentInfo(rowId: row[0], path: row[1], title: row[2], chunks: row[3],
                         fields: Metadata.documentFields(json: row[4], path: row[1], size: row[6], modifiedAt: row[7], title: row[2]),
                         setFields: Metadata.decodeObject(row[5]))
        }
    }

    /// Each field name with the number of documents that have it, by name.
    public func fieldCounts() throws -> [(name: String, documents: Int)] {
        try read("counting fields") { db in
            var counts = try Row.fetchAll(db, sql: "SELECT key, COUNT(DISTINCT document_id) FROM document_fields GROUP BY key")
                .map { (name: $0[0] as String, documents: $0[1] as Int) }
                .filter { !Metadata.columnFields.contains($0.name) }
            let documents = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents") ?? 0
            if documents > 0 {
                counts += [("path", documents), ("size", documents)]
                let titled = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents WHERE title != ''") ?? 0
                if titled > 0 { counts.append(("title", titled)) }
            }
            return counts.sorted { $0.name < $1.name }
        }
    }

    // MARK: Filtering

    /// The chunks of the documents that match `filter`, read in one transaction.
    public func matchingChunks(_ filter: MetadataFilter) throws -> ChunkSet {
        try read("filtering by metadata") { db in try Self.evaluate(filter, db) }
    }

    static func evaluate(_ filter: MetadataFilter, _ db: Database) throws -> ChunkSet {
        let limit = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM chunks") ?? 0
        var live: ChunkSet? = nil
        func liveChunks() throws -> ChunkSet {
            if let live { return live }
            var set = ChunkSet(limit: limit)
            let rows = try Row.fetchCursor(db, sql: "SELECT chunk_lo, chunk_hi FROM documents")
            while let row = try rows.next() { set.insert(row[0], row[1]) }
            live = set
            return set
        }
        /// Adds the (chunk_lo, chunk_hi) rows of `select ... IN (values)`, one statement per 500 values.
        func insertRanges(into set: inout ChunkSet, _ select: String, _ leading: [DatabaseValueConvertible],
                          _ values: [DatabaseValueConvertible]) throws {
            var start = 0
            while start < values.count {
                let part = values[start..<min(values.count, start + 500)]
                start += part.count
                let sql = select + " (" + repeatElement("?", count: part.count).joined(separator: ",") + ")"
                let rows = try Row.fetchCursor(db, sql: sql, arguments: StatementArguments(leading + Array(part)))
                while let row = try rows.next() { set.insert(row[0], row[1]) }
            }
        }
        func eval(_ f: MetadataFilter) throws -> ChunkSet {
            switch f {
            case .and(let parts):
                guard !parts.isEmpty else { return try liveChunks() }
                var set = try eval(parts[0])
                for p in parts.dropFirst() { set.formIntersection(try eval(p)) }
                return set
            case .or(let parts):
                var set = ChunkSet(limit: limit)
                // Equalities on one field (what $in gives) are looked up in one statement per 500.
                var equalities: [String: [JSONValue]] = [:]
                for p in parts {
                    if case .field(let key, .equals(let v)) = p, v != .null {
                        equalities[key, default: []].append(v)
                        continue
                    }
                    set.formUnion(try eval(p))
                }
                // Built-in columns are columns of the documents table.
                for key in equalities.keys where Metadata.columnFields.contains(key) {
                    let values = equalities.removeValue(forKey: key)!
                    try insertRanges(into: &set, "SELECT chunk_lo, chunk_hi FROM documents WHERE \(key) IN", [], values.compactMap { v in
                        switch (v, key == "size") {
                        case (.string(let s), false): return key == "title" && s.isEmpty ? nil : s
                        case (.int(let i), true): return i
                        case (.double(let d), true): return d
                        default: return nil
                        }
                    })
                }
                for (key, values) in equalities {
                    for kind in [Metadata.Kind.bool, .number, .string] {
                        try insertRanges(into: &set, "SELECT chunk_lo, chunk_hi FROM document_fields WHERE key = ? AND type = \(kind.rawValue) AND value IN",
                                         [key], values.compactMap { v in
                            switch (v, kind) {
                            case (.bool(let b), .bool): return b ? 1 : 0
                            case (.int(let i), .number): return i
                            case (.double(let d), .number): return d
                            case (.string(let s), .string): return s
                            default: return nil
                            }
                        })
                    }
                }
                return set
            case .not(let inner):
                var set = try liveChunks()
                set.subtract(try eval(inner))
                return set
            case .field(let key, let condition):
                var set = ChunkSet(limit: limit)
                let (sql, args) = Metadata.columnFields.contains(key) ? columnQuery(key, condition) : leafQuery(key, condition)
                guard let sql else { return set }
                let rows = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: StatementArguments(args))
                while let row = try rows.next() { set.insert(row[0], row[1]) }
                return set
            }
        }
        return try eval(filter)
    }

    /// The SQL for a condition on a built-in field kept in a column of `documents`: `path` and
    /// `title` (strings; an empty title is no title) and `size` (an integer). Nil: it can match
    /// nothing (e.g. a range on a string, or a number compared with a path).
    private static func columnQuery(_ key: String, _ condition: MetadataFilter.Condition) -> (String?, [DatabaseValueConvertible?]) {
        let select = "SELECT chunk_lo, chunk_hi FROM documents WHERE "
        let isString = key != "size"
        let present = key == "title" ? "title != ''" : "1"
        switch condition {
        case .exists: return (select + present, [])
        case .equals(let v), .contains(let v):
            if case .contains = condition { return (nil, []) }   // never an array
            switch (v, isString) {
            case (.string(let s), true): return s.isEmpty && key == "title" ? (nil, []) : (select + "\(key) = ?", [s])
            case (.int(let i), false): return (select + "size = ?", [i])
            case (.double(let d), false): return (select + "size = ?", [d])
            default: return (nil, [])
            }
        case .glob(let pattern):
            return isString ? (select + "\(key) GLOB ? AND \(present)", [pattern]) : (nil, [])
        case .greater(let bound, let orEqual), .less(let bound, let orEqual):
            guard !isString, case .number(let v) = bound else { return (nil, []) }
            var op = ""
            if case .greater = condition { op = orEqual ? ">=" : ">" } else { op = orEqual ? "<=" : "<" }
            switch v {
            case .int(let i): return (select + "size \(op) ?", [i])
            case .double(let d): return (select + "size \(op) ?", [d])
            default: return (nil, [])
            }
        }
    }

    /// The SQL that finds the chunk ranges of one condition (nil: it can match nothing).
    private static func leafQuery(_ key: String, _ condition: MetadataFilter.Condition) -> (String?, [DatabaseValueConvertible?]) {
        let select = "SELECT chunk_lo, chunk_hi FROM document_fields WHERE key = ?"
        func equality(_ v: JSONValue, arrayOnly: Bool) -> (String?, [DatabaseValueConvertible?]) {
            let array = arrayOnly ? " AND in_array = 1" : ""
            switch v {
            case .null: return (select + " AND type = \(Metadata.Kind.null.rawValue)" + array, [key])
            case .bool(let b): return (select + " AND type = \(Metadata.Kind.bool.rawValue) AND value = ?" + array, [key, b ? 1 : 0])
            case .int(let i): return (select + " AND type = \(Metadata.Kind.number.rawValue) AND value = ?" + array, [key, i])
            case .double(let d): return (select + " AND type = \(Metadata.Kind.number.rawValue) AND value = ?" + array, [key, d])
            case .string(let s): return (select + " AND type = \(Metadata.Kind.string.rawValue) AND value = ?" + array, [key, s])
            case .array, .object: return (nil, [])
            }
        }
        func range(_ bound: MetadataFilter.Bound, _ op: String) -> (String?, [DatabaseValueConvertible?]) {
            switch bound {
            case .number(let v):
                let arg: DatabaseValueConvertible
                switch v {
                case .int(let i): arg = i
                case .double(let d): arg = d
                default: return (nil, [])
                }
                return (select + " AND type = \(Metadata.Kind.number.rawValue) AND value \(op) ?", [key, arg])
            case .date(let t):
                return (select + " AND type = \(Metadata.Kind.date.rawValue) AND value \(op) ?", [key, t])
            }
        }
        switch condition {
        case .equals(let v): return equality(v, arrayOnly: false)
        case .contains(let v): return equality(v, arrayOnly: true)
        case .greater(let b, let orEqual): return range(b, orEqual ? ">=" : ">")
        case .less(let b, let orEqual): return range(b, orEqual ? "<=" : "<")
        case .exists: return (select, [key])
        case .glob(let pattern): return (select + " AND type = \(Metadata.Kind.string.rawValue) AND value GLOB ?", [key, pattern])
        }
    }
}

extension Metadata.SQLValue {
    var databaseValue: DatabaseValueConvertible? {
        switch self {
        case .null: return nil
        case .int(let i): return i
        case .double(let d): return d
        case .text(let s): return s
        }
    }
}
