import Foundation
import Testing
@testable import Sextant
import Store

@Suite(.serialized) struct MetadataSearchTests {
    static let frontMatterDocs = [
        "notes/wing.md": "---\ntitle: Wing design\ntags: [aero, wings]\nyear: 2021\ndraft: false\npublished: 2021-05-03\n---\n# Wings\n\nA swept wing delays the drag rise near the speed of sound.\n",
        "notes/soup.md": "---\ntags:\n  - cooking\n  - soup\nyear: 2023\nrating: 4.5 # out of 5\nsummary: |\n  Hot soup,\n  slowly.\n---\nSimmer vegetables in stock and season with salt.\n",
        "notes/broken.md": "---\ntitle: broken\nthis line is not yaml\n---\nBoundary layers separate under adverse pressure gradients.\n",
        "notes/open.md": "---\ntitle: never closed\nJet engines produce thrust by accelerating air through a nozzle.\n",
        "corpus.jsonl": #"{"_id":"r1","title":"Heat","text":"Heat transfer in hypersonic flow.","metadata":{"year":1999,"src":"cran","nested":{"a":1}}}"# + "\n",
    ]

    @Test func frontMatterAndRecordsBecomeFieldsThatFilterAndTravelWithHits() throws {
        let root = try makeTree(Self.frontMatterDocs)
        let dir = newIndexDirectory()
        let warnings = WarningLog()
        let c = try openCollection(dir, warnings: warnings)
        let report = try c.sync(SyncOptions(folders: [root]))
        #expect(report.documentsAdded == 5)
        // Malformed front matter: a warning, and the file is indexed as text with its block.
        #expect(warnings.lines.contains { $0.contains("broken.md: front matter line 3") })
        #expect(warnings.lines.contains { $0.contains("open.md: front matter opened with --- is never closed") })
        #expect(warnings.lines.contains { $0.contains("corpus.jsonl") && $0.contains("'nested' is an object") })
        let broken = try c.search(SearchRequest(query: "this line is not yaml", k: 1, mode: .lexical))
        #expect(broken.first?.path.hasSuffix("broken.md") == true)

        let wing = try #require(try c.document(path: root.appendingPathComponent("notes/wing.md").path))
        #expect(wing.title == "Wing design" && wing.fields["title"] == .string("Wing design"))
        #expect(wing.fields["tags"] == .array([.string("aero"), .string("wings")]) && wing.fields["year"] == .int(2021))
        #expect(wing.fields["draft"] == .bool(false) && wing.fields["published"] == .string("2021-05-03") && wing.fields["ext"] == .string("md"))
        let soup = try #require(try c.document(path: root.appendingPathComponent("notes/soup.md").path))
        #expect(soup.fields["rating"] == .double(4.5) && soup.fields["summary"] == .string("Hot soup,\nslowly."))
        let record = try #require(try c.document(path: root.appendingPathComponent("corpus.jsonl").path + "#r1"))
        #expect(record.fields["src"] == .string("cran") && record.fields["id"] == .string("r1") && record.fields["nested"] == nil)
        // The front matter is not searchable text, and chunk positions still point into the file.
        #expect(try c.search(SearchRequest(query: "aero 2021", k: 5, mode: .lexical)).isEmpty)
        let wingHit = try #require(try c.search(SearchRequest(query: "swept wing drag", k: 1, mode: .dense)).first)
        #expect(wingHit.lineStart == 8 && wingHit.metadata?["year"] == .int(2021))

        for mode in SearchMode.allCases {
            let hits = try c.search(SearchRequest(query: "wing vegetables heat thrust", k: 10, mode: mode,
                                                  filter: try MetadataFilter.parse(#"{"year": {"$gte": 2000}}"#)))
            #expect(Set(hits.map { URL(fileURLWithPath: $0.path).lastPathComponent }) == ["wing.md", "soup.md"], "\(mode)")
        }
        let dated = try c.search(SearchRequest(query: "wing", k: 10, mode: .dense, filter: try MetadataFilter.parse(#"{"published": {"$lt": "2022-01-01"}}"#)))
        #expect(dated.map(\.path) == [wing.path])
        let none = try c.search(SearchRequest(query: "wing", k: 10, mode: .hybrid, filter: try MetadataFilter.parse(#"{"tags": {"$contains": "nothing"}}"#)))
        #expect(none.isEmpty)
        let combined = try c.search(SearchRequest(query: "soup", k: 10, mode: .dense, pathFilter: "*/notes/*",
                                                  filter: try MetadataFilter.parse(#"{"$or": [{"src": "cran"}, {"tags": "soup"}]}"#)))
        #expect(combined.map(\.path) == [soup.path])
        let bare = try c.search(SearchRequest(query: "soup", k: 1, mode: .dense, metadata: false))
        #expect(bare.first?.metadata == nil)
        let info = try c.info()
        #expect(info.fields.contains(FieldCount(name: "tags", documents: 2)) && info.fields.contains(FieldCount(name: "path", documents: 5)))
    }

    @Test func settingFieldsEmbedsNothingAndSurvivesReindexAndReopen() throws {
        let root = try makeTree(Self.frontMatterDocs)
        let dir = newIndexDirectory()
        let c = try openCollection(dir)
        try c.sync(SyncOptions(folders: [root]))
        let wingPath = root.appendingPathComponent("notes/wing.md").path
        let embedded = c.embedder.textsEmbedded
        let updated = try c.setFields(path: wingPath, ["status": .string("reviewed"), "year": .int(2024), "draft": .null])
        #expect(updated.fields["status"] == .string("reviewed") && updated.fields["year"] == .int(2024) && updated.fields["draft"] == nil)
        #expect(c.embedder.textsEmbedded == embedded, "setting fields must not embed")
        #expect(try c.search(SearchRequest(query: "wing", k: 5, mode: .dense, filter: try MetadataFilter.parse(#"{"status": "reviewed"}"#))).map(\.path) == [wingPath])
        // Bad updates: one clear error each, nothing changed.
        #expect(throws: SextantError.self) { try c.setFields(path: wingPath, ["path": .string("/elsewhere")]) }
        #expect(throws: SextantError.self) { try c.setFields(path: wingPath, ["o": .object(["a": .int(1)])]) }
        #expect(throws: SextantError.self) { try c.setFields(path: "/no/such/file.md", ["a": .int(1)]) }
        #expect(throws: SextantError.self) { try c.setFields(path: wingPath, [:]) }

        // A sync with nothing changed embeds nothing and keeps the set fields; a touched file
        // gets its new mtime without being embedded.
        let beforeSync = c.embedder.textsEmbedded   // the search above embedded its query
        let later = Date().addingTimeInterval(3600)
        try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: wingPath)
        let quiet = try c.sync(SyncOptions(folders: [root]))
        #expect(quiet.chunksEmbedded == 0 && c.embedder.textsEmbedded == beforeSync)
        let touched = try #require(try c.document(path: wingPath))
        #expect(touched.fields["mtime"] == .string(Metadata.isoDate(later.timeIntervalSince1970)) && touched.fields["status"] == .string("reviewed"))

        // The file's text changes: embedded again, the set fields stay, the front matter's
        // other fields follow the file.
        try Data("---\ntitle: Wing design\nyear: 2020\nlang: en\n---\nWinglets reduce induced drag.\n".utf8).write(to: URL(fileURLWithPath: wingPath))
        let changed = try c.sync(SyncOptions(folders: [root]))
        #expect(changed.documentsUpdated == 1)
        let after = try #require(try c.document(path: wingPath))
        #expect(after.fields["status"] == .string("reviewed") && after.fields["year"] == .int(2024) && after.fields["lang"] == .string("en"))
        #expect(after.fields["tags"] == nil)

        // Re-embedding with the model and reopening (a server restart) keep every field.
        _ = try Collection.reindex(directory: dir, model: nil)
        let reopened = try openCollection(dir)
        #expect(try reopened.document(path: wingPath)?.fields == after.fields)
        #expect(try reopened.search(SearchRequest(query: "winglets", k: 5, mode: .dense, filter: try MetadataFilter.parse(#"{"lang": "en"}"#))).map(\.path) == [wingPath])
    }

    @Test func documentsSentAgainReplaceTheirFieldsAndBadMetadataIsRefused() throws {
        let c = try openCollection(newIndexDirectory())
        try c.upsertTexts([TextDocument(id: "a", text: "Propellers convert shaft power into thrust.", metadataJSON: #"{"team":"x","n":1}"#)])
        try c.setFields(path: "doc:a", ["reviewed": .bool(true)])
        let embedded = c.embedder.textsEmbedded
        let same = try c.upsertTexts([TextDocument(id: "a", text: "Propellers convert shaft power into thrust.", metadataJSON: #"{"team":"y"}"#)])
        #expect(same[0].changed == false && c.embedder.textsEmbedded == embedded)
        #expect(try c.document(path: "doc:a")?.fields.filter { !Metadata.builtInFields.contains($0.key) } == ["team": .string("y")])
        for bad in [#"{"a": {"b": 1}}"#, #"{"a": [[1]]}"#, "[1]", "{", #"{"$x": 1}"#] {
            #expect(throws: SextantError.self, "\(bad)") {
                try c.upsertTexts([TextDocument(id: "b", text: "Text.", metadataJSON: bad)])
            }
        }
        #expect(try c.document(path: "doc:b") == nil)
    }

    /// Filtered dense search returns min(k, matches) hits, the same as an exact search over the
    /// matching chunks, at every selectivity.
    @Test func filteredSearchIsExactAboutKAndAgreesWithBruteForce() throws {
        let c = try openCollection(newIndexDirectory())
        let topics = ["wings", "engines", "bread", "soup", "rivers", "stars", "chess", "gardens", "trains", "glass"]
        let verbs = ["describes", "compares", "questions", "explains", "measures"]
        var docs: [TextDocument] = []
        for i in 0..<400 {
            let text = "Note \(i) \(verbs[i % 5]) \(topics[i % 10]) and \(topics[(i / 10) % 10]) with \(topics[(i * 7) % 10]) in detail."
            docs.append(TextDocument(id: "n\(i)", text: text, metadataJSON: #"{"n": \#(i), "g": \#(i % 20), "tags": ["t\#(i % 3)", "u\#(i % 7)"]}"#))
        }
        try c.upsertTexts(docs)
        let filters = [#"{"n": {"$lt": 200}}"#, #"{"g": 3}"#, #"{"n": {"$in": [5, 77, 123, 301]}}"#, #"{"n": 42}"#,
                       #"{"tags": {"$contains": "u3"}, "g": {"$ne": 3}}"#, #"{"$not": {"g": {"$lt": 19}}}"#]
        let queries = ["wings and engines", "soup in detail", "comparing stars with chess", "glass trains", "bread rivers gardens"]
        var found = 0, expected = 0
        for json in filters {
            let filter = try MetadataFilter.parse(json)
            let allowed = try c.store.matchingChunks(filter)
            for query in queries {
                let q = c.embedder.embed([query], kind: .query())[0]
                var exact: [(Int64, Float)] = []
                try c.store.withVectors(ids: (0...2000).map(Int64.init).filter { allowed.contains($0) }) { id, v in
                    exact.append((id, zip(q, v).reduce(0) { $0 + $1.0 * $1.1 }))
                }
                exact.sort { $0.1 > $1.1 }
                let hits = try c.search(SearchRequest(query: query, k: 10, mode: .dense, filter: filter), queryVector: q)
                #expect(hits.count == min(10, allowed.count), "\(json)")
                let top = Set(exact.prefix(10).map(\.0))
                found += hits.filter { top.contains($0.chunkId) }.count
                expected += top.count
                // The lexical leg keeps to the filter as well.
                let lexical = try c.search(SearchRequest(query: query, k: 10, mode: .lexical, filter: filter))
                #expect(lexical.allSatisfy { allowed.contains($0.chunkId) })
            }
        }
        #expect(Double(found) / Double(expected) >= 0.99, "recall@10 \(found)/\(expected)")
    }
}
