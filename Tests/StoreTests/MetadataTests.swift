import Foundation
import Testing
@testable import Store

@Suite struct JSONValueTests {
    @Test func integersStayExactAndEverythingRoundTrips() throws {
        #expect(try JSONValue.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(Int64.min))
        #expect(try JSONValue.parse("9223372036854775806") == .int(Int64.max - 1))
        #expect(try JSONValue.parse("9223372036854775808") == .double(9223372036854775808))   // past Int64: a double
        #expect(try JSONValue.parse("1.5e3") == .double(1500))
        #expect(try JSONValue.parse("2.0") == .double(2))
        let text = #"{"a":[1,2.5,"x\"y\n",true,null],"b":{"c":-7},"é":"\u00e9\ud83d\ude00"}"#
        let v = try JSONValue.parse(text)
        #expect(try JSONValue.parse(v.serialized) == v)
        #expect(v.serialized.contains("\"é\":\"é😀\""))
        #expect(JSONValue.double(2).serialized == "2.0")
    }

    @Test func badJSONSaysWhereAndWhy() {
        for bad in ["", "{", "{\"a\" 1}", "[1,]", "tru", "\"abc", "{\"a\":1} x", "01x", "-", "1e999"] {
            #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(bad) }
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(deep) }
        do { _ = try JSONValue.parse("{\"a\": tru}") } catch let e as JSONSyntaxError {
            #expect(e.offset == 6 && e.description.contains("byte 6"))
        } catch { Issue.record("unexpected \(error)") }
    }
}

@Suite struct ISODateTests {
    @Test func datesAndTimesParse() {
        #expect(Metadata.parseISODate("1970-01-01") == 0)
        #expect(Metadata.parseISODate("2024-02-29") == 1_709_164_800)
        #expect(Metadata.parseISODate("2024-02-29T12:30") == 1_709_209_800.0)
        #expect(Metadata.parseISODate("2024-02-29T12:30:15Z") == 1_709_209_815.0)
        #expect(Metadata.parseISODate("2024-02-29 12:30:15.5") == 1_709_209_815.5)
        #expect(Metadata.parseISODate("2024-02-29T14:30:15+02:00") == 1_709_209_815.0)
        #expect(Metadata.parseISODate("2024-02-29T10:30:15-0200") == 1_709_209_815.0)
        #expect(Metadata.parseISODate("1969-12-31T23:59:59Z") == -1)
        #expect(Metadata.parseISODate("2024-02-29 14:30:15 +0200") == 1_709_209_815.0)   // Jekyll's form
        #expect(Metadata.parseISODate("2001-12-14 21:59:43.10 -5") == 1_008_385_183.1)   // the YAML spec's
        for bad in ["2023-02-29", "2024-13-01", "2024-1-01", "20240101", "2024-01-01T25:00", "2024-01-01Tnoon", "yesterday", "2024-01-01Z1",
                    "2024-01-01T10:00+99:99", "2024-01-01T10:00+0260", "2024-01-01T10:00 ", "2024-01-01T10:00+"] {
            #expect(Metadata.parseISODate(bad) == nil, "\(bad)")
        }
        for t in [0.0, 1_709_209_815, -1, 951_782_400, 4_102_444_800] {
            #expect(Metadata.parseISODate(Metadata.isoDate(t)) == t)
        }
        #expect(Metadata.isoDate(1_709_209_815) == "2024-02-29T12:30:15Z")
    }
}

@Suite struct MetadataFilterParsingTests {
    private func message(_ json: String) -> String {
        do { _ = try MetadataFilter(json: json); return "" } catch { return "\(error)" }
    }

    @Test func shapesParse() throws {
        #expect(try MetadataFilter(json: #"{"lang": "en"}"#) == .field("lang", .equals(.string("en"))))
        #expect(try MetadataFilter(json: #"{"year": {"$gte": 2020, "$lt": 2024}}"#)
                == .and([.field("year", .greater(.number(.int(2020)), orEqual: true)), .field("year", .less(.number(.int(2024)), orEqual: false))]))
        #expect(try MetadataFilter(json: #"{"d": {"$gt": "2024-01-01"}}"#) == .field("d", .greater(.date(1_704_067_200), orEqual: false)))
        #expect(try MetadataFilter(json: #"{"a": {"$ne": 1}}"#) == .not(.field("a", .equals(.int(1)))))
        #expect(try MetadataFilter(json: #"{"a": {"$exists": false}}"#) == .not(.field("a", .exists)))
        #expect(try MetadataFilter(json: #"{"$or": [{"a": 1}, {"b": true}]}"#) == .or([.field("a", .equals(.int(1))), .field("b", .equals(.bool(true)))]))
        #expect(try MetadataFilter(json: #"{"a": {"$not": {"$in": [1, 2]}}}"#)
                == .not(.or([.field("a", .equals(.int(1))), .field("a", .equals(.int(2)))])))
    }

    @Test func badFiltersNameTheFieldAndOperator() {
        #expect(message(#"{"year": {"$regex": "x"}}"#).contains("field 'year': unknown operator '$regex'"))
        #expect(message(#"{"year": {"$gt": "soon"}}"#).contains("field 'year', operator '$gt'"))
        #expect(message(#"{"year": {"$gt": true}}"#).contains("field 'year', operator '$gt'"))
        #expect(message(#"{"tags": {"$in": "a"}}"#).contains("field 'tags', operator '$in': needs an array"))
        #expect(message(#"{"a": {"$exists": 1}}"#).contains("operator '$exists'"))
        #expect(message(#"{"a": {"$glob": 3}}"#).contains("operator '$glob'"))
        #expect(message(#"{"a": {"b": 1}}"#).contains("field 'a': 'b' is not an operator"))
        #expect(message(#"{"a": [1, 2]}"#).contains("field 'a': an array"))
        #expect(message(#"{"$nor": []}"#).contains("unknown operator '$nor'"))
        #expect(message(#"{"$and": []}"#).contains("$and needs a non-empty array"))
        #expect(message(#"{"$and": [3]}"#).contains("$and[0] must be a JSON object"))
        #expect(message("{}").contains("empty"))
        #expect(message("[1]").contains("must be a JSON object"))
        #expect(message(#"{"a": "#).contains("not valid JSON"))
        #expect(message(#"{"a": {"$eq": {"b": 1}}}"#).contains("field 'a', operator '$eq'"))
    }
}

@Suite struct MetadataStoreTests {
    /// A collection with one chunk per document and a mix of field types.
    private func makeStore() throws -> (CollectionStore, [String]) {
        let store = try CollectionStore(url: temporaryDatabase())
        let docs: [(String, String)] = [
            ("/n/a.md", #"{"lang":"en","year":2021,"tags":["x","y"],"draft":false,"score":0.5,"date":"2024-01-15","big":9223372036854775807}"#),
            ("/n/b.md", #"{"lang":"de","year":2023,"tags":["y"],"draft":true,"score":2,"date":"2024-03-01T10:00:00Z","big":9223372036854775806}"#),
            ("/n/c.txt", #"{"lang":"en","year":2019.5,"tags":[],"note":null,"date":"not a date","big":-9223372036854775808}"#),
            ("/m/d.txt", #"{"lang":"fr","tags":"x","year":"2020","score":-1}"#),
            ("doc:e", #"{"lang":["en","de"],"year":2023,"draft":false}"#),
            ("/m/f.jsonl#7", "{}"),
        ]
        var paths: [String] = []
        for (i, (path, json)) in docs.enumerated() {
            try store.replaceDocument(path: path, contentHash: "h\(i)", size: Int64(100 * (i + 1)), modifiedAt: Double(1_700_000_000 + i * 86_400),
                                      title: "T\(i)", metadata: json, chunks: [chunk("text \(i) a", [1, 0]), chunk("text \(i) b", [0, 1])])
            paths.append(path)
        }
        return (store, paths)
    }

    /// The paths of the documents whose chunks `matchingChunks` returns (all of a document's
    /// chunks or none, and no chunk of a removed document).
    private func matches(_ store: CollectionStore, _ json: String) throws -> Set<String> {
        let set = try store.matchingChunks(try MetadataFilter(json: json))
        var paths = Set<String>(), total = 0
        for d in try store.listDocuments(limit: 1000) {
            let ids = try store.chunkTexts(documentId: d.rowId).map(\.id)
            let inSet = ids.filter { set.contains($0) }.count
            #expect(inSet == 0 || inSet == ids.count, "\(d.path): a document's chunks match together")
            if inSet > 0 { paths.insert(d.path); total += inSet }
        }
        #expect(set.count == total, "only live chunks match")
        return paths
    }

    @Test func eachOperatorOnMixedTypes() throws {
        let (store, _) = try makeStore()
        #expect(try matches(store, #"{"lang": "en"}"#) == ["/n/a.md", "/n/c.txt", "doc:e"])   // array elements match too
        #expect(try matches(store, #"{"lang": {"$ne": "en"}}"#) == ["/n/b.md", "/m/d.txt", "/m/f.jsonl#7"])
        #expect(try matches(store, #"{"year": 2023}"#) == ["/n/b.md", "doc:e"])
        #expect(try matches(store, #"{"year": {"$gt": 2019, "$lt": 2022}}"#) == ["/n/a.md", "/n/c.txt"])   // the string "2020" is not a number
        #expect(try matches(store, #"{"year": {"$gte": 2023}}"#) == ["/n/b.md", "doc:e"])
        #expect(try matches(store, #"{"year": {"$lte": 2019.5}}"#) == ["/n/c.txt"])
        #expect(try matches(store, #"{"score": 2.0}"#) == ["/n/b.md"])   // 2 and 2.0 are one number
        #expect(try matches(store, #"{"draft": false}"#) == ["/n/a.md", "doc:e"])
        #expect(try matches(store, #"{"draft": 0}"#) == [])   // booleans are not numbers
        #expect(try matches(store, #"{"note": null}"#) == ["/n/c.txt"])
        #expect(try matches(store, #"{"note": {"$exists": true}}"#) == ["/n/c.txt"])
        #expect(try matches(store, #"{"tags": {"$exists": true}}"#) == ["/n/a.md", "/n/b.md", "/n/c.txt", "/m/d.txt"])   // [] exists
        #expect(try matches(store, #"{"draft": {"$exists": false}}"#) == ["/n/c.txt", "/m/d.txt", "/m/f.jsonl#7"])
        #expect(try matches(store, #"{"tags": {"$contains": "x"}}"#) == ["/n/a.md"])   // d's "x" is not an array
        #expect(try matches(store, #"{"tags": "x"}"#) == ["/n/a.md", "/m/d.txt"])
        #expect(try matches(store, #"{"lang": {"$in": ["de", "fr"]}}"#) == ["/n/b.md", "/m/d.txt", "doc:e"])
        #expect(try matches(store, #"{"lang": {"$nin": ["de", "fr"]}}"#) == ["/n/a.md", "/n/c.txt", "/m/f.jsonl#7"])
        #expect(try matches(store, #"{"date": {"$gte": "2024-02-01"}}"#) == ["/n/b.md"])
        #expect(try matches(store, #"{"date": {"$lt": "2024-03-01T10:00:01Z"}}"#) == ["/n/a.md", "/n/b.md"])
        #expect(try matches(store, #"{"path": {"$glob": "/n/*"}}"#) == ["/n/a.md", "/n/b.md", "/n/c.txt"])
        #expect(try matches(store, #"{"ext": "txt"}"#) == ["/n/c.txt", "/m/d.txt"])
        #expect(try matches(store, #"{"id": "7"}"#) == ["/m/f.jsonl#7"])
        #expect(try matches(store, #"{"id": "e"}"#) == ["doc:e"])
        #expect(try matches(store, #"{"size": {"$gt": 350}}"#) == ["/m/d.txt", "doc:e", "/m/f.jsonl#7"])
        #expect(try matches(store, #"{"mtime": {"$lt": "2023-11-16"}}"#) == ["/n/a.md", "/n/b.md"])
        #expect(try matches(store, #"{"title": "T2"}"#) == ["/n/c.txt"])
        #expect(try matches(store, #"{"$or": [{"lang": "fr"}, {"$and": [{"draft": true}, {"year": 2023}]}]}"#) == ["/n/b.md", "/m/d.txt"])
        #expect(try matches(store, #"{"$not": {"$or": [{"lang": "en"}, {"lang": "de"}]}}"#) == ["/m/d.txt", "/m/f.jsonl#7"])
        #expect(try matches(store, #"{"lang": "en", "draft": {"$ne": true}, "year": {"$not": {"$gt": 2020}}}"#) == ["/n/c.txt"])
        #expect(try matches(store, #"{"nosuch": 1}"#) == [])
        #expect(try matches(store, #"{"nosuch": {"$ne": 1}}"#).count == 6)
    }

    @Test func builtInFieldsOfPaths() {
        let md = Metadata.builtIns(path: "/notes/C#/tips.md", size: 1, modifiedAt: 0, title: "")
        #expect(md["ext"] == .string("md") && md["id"] == nil && md["path"] == .string("/notes/C#/tips.md"))
        let record = Metadata.builtIns(path: "/c/corpus.jsonl#7", size: 1, modifiedAt: 0, title: "T")
        #expect(record["ext"] == .string("jsonl") && record["id"] == .string("7") && record["title"] == .string("T"))
        #expect(Metadata.builtIns(path: "doc:a#b", size: 1, modifiedAt: 0, title: "")["id"] == .string("a#b"))
        #expect(Metadata.builtIns(path: "/x/Makefile", size: 1, modifiedAt: 0, title: "")["ext"] == .string(""))
        #expect(Metadata.builtIns(path: "/x/.bashrc", size: 1, modifiedAt: 0, title: "")["ext"] == .string(""))
    }

    @Test func emptyCombinationsAndUncheckedOldFields() throws {
        let (store, _) = try makeStore()
        #expect(try store.matchingChunks(.and([])).count == 12)
        #expect(try store.matchingChunks(.or([])).count == 0)
        // A field stored before fields were checked (an object) is left out, not half indexed.
        try store.write("an old build's metadata") { db in
            try db.execute(sql: #"UPDATE documents SET metadata = '{"o":{"a":1},"k":1}', chunk_hi = -1, chunk_lo = 0 WHERE path = 'doc:e'"#)
        }
        let reopened = try CollectionStore(url: store.url)
        let fields = try #require(try reopened.documentInfo(path: "doc:e")?.fields)
        #expect(fields["o"] == nil && fields["k"] == .int(1))
    }

    @Test func sourceValuesForBuiltInNamesAreIgnored() throws {
        let store = try CollectionStore(url: temporaryDatabase())
        try store.replaceDocument(path: "doc:t", contentHash: "h", size: 3, modifiedAt: 0, title: "",
                                  metadata: #"{"title": 42, "path": "/elsewhere", "size": "big", "k": 1}"#, chunks: [chunk("text", [1, 0])])
        let fields = try #require(try store.documentInfo(path: "doc:t")?.fields)
        #expect(fields["title"] == nil && fields["path"] == .string("doc:t") && fields["size"] == .int(3) && fields["k"] == .int(1))
        #expect(try store.matchingChunks(try MetadataFilter(json: #"{"title": {"$exists": true}}"#)).count == 0)
        #expect(try store.matchingChunks(try MetadataFilter(json: #"{"path": {"$in": ["doc:t", "doc:u"]}}"#)).count == 1)
        #expect(try store.matchingChunks(try MetadataFilter(json: #"{"size": {"$in": [3, 4.5]}}"#)).count == 1)
        #expect(try store.matchingChunks(try MetadataFilter(json: #"{"title": {"$in": ["", "x"]}}"#)).count == 0)
    }

    @Test func integersNearTwoToTheSixtyThreeKeepTheirValue() throws {
        let (store, _) = try makeStore()
        #expect(try matches(store, #"{"big": 9223372036854775807}"#) == ["/n/a.md"])
        #expect(try matches(store, #"{"big": 9223372036854775806}"#) == ["/n/b.md"])
        #expect(try matches(store, #"{"big": {"$gt": 9223372036854775806}}"#) == ["/n/a.md"])
        #expect(try matches(store, #"{"big": {"$lt": -9223372036854775807}}"#) == ["/n/c.txt"])
        #expect(try store.documentInfo(path: "/n/a.md")?.fields["big"] == .int(Int64.max))
        #expect(try store.documentInfo(path: "/n/c.txt")?.fields["big"] == .int(Int64.min))
    }

    @Test func fieldsSetLaterAreKeptOrDroppedAndBuiltInsWin() throws {
        let (store, _) = try makeStore()
        let generation = try store.generation()
        let info = try #require(try store.setFields(path: "/n/a.md", ["status": .string("done"), "lang": .null, "year": .int(2030)]))
        #expect(info.fields["status"] == .string("done") && info.fields["lang"] == nil && info.fields["year"] == .int(2030))
        #expect(info.fields["path"] == .string("/n/a.md") && info.fields["ext"] == .string("md") && info.fields["size"] == .int(100))
        #expect(try store.generation() == generation)   // no chunk changed
        #expect(try matches(store, #"{"status": "done"}"#) == ["/n/a.md"])
        #expect(try matches(store, #"{"lang": "en"}"#) == ["/n/c.txt", "doc:e"])
        #expect(throws: StoreError.self) { try store.setFields(path: "/n/a.md", ["path": .string("x")]) }
        #expect(throws: StoreError.self) { try store.setFields(path: "/n/a.md", ["o": .object([:])]) }
        #expect(throws: StoreError.self) { try store.setFields(path: "/n/a.md", ["$x": .int(1)]) }
        #expect(try store.setFields(path: "/nope", ["a": .int(1)]) == nil)

        // Re-read from its source (a changed file): set fields stay; sent anew: they go.
        try store.replaceDocument(path: "/n/a.md", contentHash: "new", size: 5, modifiedAt: 0, title: "A",
                                  metadata: #"{"lang":"en","year":2000}"#, chunks: [chunk("new", [1, 0])])
        #expect(try matches(store, #"{"status": "done"}"#) == ["/n/a.md"])
        #expect(try store.documentInfo(path: "/n/a.md")?.fields["year"] == .int(2030))
        #expect(try store.documentInfo(path: "/n/a.md")?.fields["lang"] == nil)
        #expect(try store.setMetadata(path: "/n/a.md", json: #"{"lang":"en"}"#, keepSetFields: false))
        #expect(try matches(store, #"{"status": "done"}"#) == [])
        #expect(try matches(store, #"{"lang": "en"}"#).contains("/n/a.md"))
        // A removed document leaves no field rows behind.
        try store.removeDocument(path: "/n/a.md")
        #expect(try matches(store, #"{"lang": {"$exists": true}}"#) == ["/n/b.md", "/n/c.txt", "/m/d.txt", "doc:e"])
    }

    @Test func listingPagesAndFiltersAndCountsFields() throws {
        let (store, paths) = try makeStore()
        var seen: [String] = [], after: Int64 = 0
        while true {
            let page = try store.listDocuments(after: after, limit: 4)
            guard let last = page.last else { break }
            seen += page.map(\.path)
            after = last.rowId
        }
        #expect(seen == paths)
        #expect(try store.listDocuments(filter: try MetadataFilter(json: #"{"lang": "en"}"#), limit: 2).map(\.path) == ["/n/a.md", "/n/c.txt"])
        let next = try store.listDocuments(filter: try MetadataFilter(json: #"{"lang": "en"}"#), after: try store.documentInfo(path: "/n/c.txt")!.rowId, limit: 2)
        #expect(next.map(\.path) == ["doc:e"] && next[0].chunks == 2)
        let counts = Dictionary(uniqueKeysWithValues: try store.fieldCounts().map { ($0.name, $0.documents) })
        #expect(counts["path"] == 6 && counts["lang"] == 5 && counts["tags"] == 4 && counts["note"] == 1 && counts["id"] == 2)
    }

    @Test func documentsWithoutIndexedFieldsAreRepairedOnOpen() throws {
        let (store, _) = try makeStore()
        let url = store.url
        // What an older build leaves: no chunk range, no field rows.
        try store.write("simulating an old build") { db in
            try db.execute(sql: "UPDATE documents SET chunk_lo = 0, chunk_hi = -1 WHERE path = '/n/b.md'")
            try db.execute(sql: "DELETE FROM document_fields WHERE document_id = (SELECT id FROM documents WHERE path = '/n/b.md')")
        }
        #expect(try matches(store, #"{"lang": "de"}"#) == ["doc:e"])
        let reopened = try CollectionStore(url: url)
        #expect(try matches(reopened, #"{"lang": "de"}"#) == ["/n/b.md", "doc:e"])
    }

    @Test func randomFiltersAgreeWithAReferenceEvaluator() throws {
        let (store, _) = try makeStore()
        let docs = try store.listDocuments(limit: 1000)
        var rng = SplitMix(seed: 7)
        let fields = ["lang", "year", "tags", "draft", "score", "date", "note", "big", "nosuch", "path", "title", "size", "ext", "mtime", "id"]
        let values: [JSONValue] = [.string("en"), .string("de"), .string("x"), .string("y"), .int(2023), .int(2021), .double(2), .double(0.5),
                                   .bool(true), .bool(false), .null, .int(-1), .string("T2"), .string("/n/b.md"), .int(300), .double(200),
                                   .string("md"), .string("7"), .string("")]
        let bounds: [JSONValue] = [.int(2020), .double(2021.5), .int(0), .string("2024-02-01"), .int(9223372036854775806), .int(250),
                                   .string("2023-11-16")]
        func leaf() -> JSONValue {
            let f = fields[rng.next(fields.count)]
            switch rng.next(8) {
            case 0: return .object([f: values[rng.next(values.count)]])
            case 1: return .object([f: .object(["$ne": values[rng.next(values.count)]])])
            case 2: return .object([f: .object(["$in": .array([values[rng.next(values.count)], values[rng.next(values.count)]])])])
            case 3: return .object([f: .object(["$nin": .array([values[rng.next(values.count)]])])])
            case 4: return .object([f: .object([["$gt", "$gte", "$lt", "$lte"][rng.next(4)]: bounds[rng.next(bounds.count)]])])
            case 5: return .object([f: .object(["$exists": .bool(rng.next(2) == 0)])])
            case 6: return .object([f: .object(["$contains": values[rng.next(values.count)]])])
            default: return .object([["path", "title", "ext", "lang"][rng.next(4)]: .object(["$glob": .string(["/n/*", "*.txt", "doc:*", "*#*", "T*", "e?"][rng.next(6)])])])
            }
        }
        func filter(_ depth: Int) -> JSONValue {
            guard depth > 0, rng.next(3) > 0 else { return leaf() }
            switch rng.next(3) {
            case 0: return .object(["$and": .array([filter(depth - 1), filter(depth - 1)])])
            case 1: return .object(["$or": .array([filter(depth - 1), filter(depth - 1)])])
            default: return .object(["$not": filter(depth - 1)])
            }
        }
        for _ in 0..<600 {
            let json = filter(3)
            let parsed = try MetadataFilter(json)
            let expected = Set(docs.filter { reference(parsed, $0.fields) }.map(\.path))
            #expect(try matches(store, json.serialized) == expected, "\(json.serialized)")
        }
    }

    /// What a filter means, evaluated directly on a document's fields.
    private func reference(_ f: MetadataFilter, _ fields: [String: JSONValue]) -> Bool {
        switch f {
        case .and(let parts): return parts.allSatisfy { reference($0, fields) }
        case .or(let parts): return parts.contains { reference($0, fields) }
        case .not(let inner): return !reference(inner, fields)
        case .field(let key, let condition):
            guard let value = fields[key] else { return false }
            var items: [JSONValue]
            var isArray = false
            if case .array(let a) = value { items = a; isArray = true } else { items = [value] }
            func number(_ v: JSONValue) -> Double? {
                switch v { case .int(let i): return Double(i); case .double(let d): return d; default: return nil }
            }
            func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
                if case .int(let x) = a, case .int(let y) = b { return x == y }
                if let x = number(a), let y = number(b) { return x == y }
                return a == b
            }
            func compare(_ b: MetadataFilter.Bound, _ test: (Double, Double) -> Bool, _ exact: (Int64, Int64) -> Bool) -> Bool {
                items.contains { v in
                    switch b {
                    case .number(let n):
                        if case .int(let x) = v, case .int(let y) = n { return exact(x, y) }
                        guard let x = number(v), let y = number(n) else { return false }
                        return test(x, y)
                    case .date(let t):
                        guard case .string(let s) = v, let x = Metadata.parseISODate(s) else { return false }
                        return test(x, t)
                    }
                }
            }
            switch condition {
            case .equals(let v): return items.contains { same($0, v) }
            case .contains(let v): return isArray && items.contains { same($0, v) }
            case .exists: return true
            case .glob(let pattern):
                return items.contains { item in
                    guard case .string(let s) = item else { return false }
                    return fnmatch(pattern, s, 0) == 0
                }
            case .greater(let b, let orEqual): return orEqual ? compare(b, >=, >=) : compare(b, >, >)
            case .less(let b, let orEqual): return orEqual ? compare(b, <=, <=) : compare(b, <, <)
            }
        }
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ n: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(n))
    }
}
