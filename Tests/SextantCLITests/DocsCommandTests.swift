import Foundation
import Testing

@Suite(.serialized) struct DocsCommandTests {
    /// Front matter to fields, `--where` on search, `docs list/show/set`, and bad input: one
    /// clear error, a non-zero exit, nothing changed.
    @Test func fieldsFiltersAndUpdatesFromTheCommandLine() throws {
        let docs = temporaryFolder("sextant-docs-docs")
        try Data("---\ntags: [aero, old]\nyear: 1950\n---\nPropellers convert shaft power into thrust.\n".utf8)
            .write(to: docs.appendingPathComponent("props.md"))
        try Data("---\ntags: [aero]\nyear: 1990\n---\nJet engines produce thrust by accelerating air through a nozzle.\n".utf8)
            .write(to: docs.appendingPathComponent("jets.md"))
        try Data("Simmer vegetables in stock and season with salt.\n".utf8).write(to: docs.appendingPathComponent("soup.txt"))
        let index = temporaryFolder("sextant-docs-index")
        let indexed = try runSextant(["index", docs.path, "--index", index.path, "--quiet"])
        #expect(indexed.status == 0, "\(indexed.stderr)")
        let jets = docs.appendingPathComponent("jets.md").standardizedFileURL.path
        let props = docs.appendingPathComponent("props.md").standardizedFileURL.path

        func paths(_ r: RunResult) -> [String] {
            let object = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            return (object?["hits"] as? [[String: Any]] ?? object?["documents"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
        }
        let recent = try runSextant(["search", "thrust", "--index", index.path, "--json", "--where", #"{"year": {"$gt": 1960}}"#])
        #expect(recent.status == 0 && paths(recent) == [jets], "\(recent.stderr)")
        #expect(recent.stdout.contains(#""metadata":{"ext":"md""#))
        let tagged = try runSextant(["search", "thrust", "--index", index.path, "--json", "--where", #"{"tags": {"$contains": "old"}}"#, "--mode", "dense"])
        #expect(paths(tagged) == [props])

        // Set a field on a file, list by it, show it; nothing is embedded, and re-indexing keeps it.
        let set = try runSextant(["docs", "set", docs.path + "/soup.txt", #"{"course": "starter", "tags": ["food"]}"#, "--index", index.path])
        #expect(set.status == 0 && set.stdout.contains(#""course":"starter""#), "\(set.stderr)")
        let reindexed = try runSextant(["index", docs.path, "--index", index.path, "--json"])
        #expect(reindexed.stdout.contains(#""chunksEmbedded" : 0"#) || reindexed.stdout.contains(#""chunksEmbedded":0"#), "\(reindexed.stdout)")
        let listed = try runSextant(["docs", "list", "--index", index.path, "--json", "--where", #"{"tags": "food"}"#])
        #expect(paths(listed) == [docs.appendingPathComponent("soup.txt").standardizedFileURL.path], "\(listed.stderr)")
        let shown = try runSextant(["docs", "show", docs.path + "/soup.txt", "--index", index.path])
        #expect(shown.status == 0 && shown.stdout.contains("course: \"starter\""))
        let paged = try runSextant(["docs", "list", "--index", index.path, "--json", "--limit", "2"])
        #expect(paths(paged).count == 2 && paged.stdout.contains(#""next_after":"#))

        // A file of updates: all or nothing.
        let updates = docs.appendingPathComponent("updates.jsonl")
        try Data((#"{"path": "\#(jets)", "metadata": {"rank": 1}}"# + "\n" + #"{"path": "/no/such.md", "metadata": {"rank": 2}}"# + "\n").utf8).write(to: updates)
        let partial = try runSextant(["docs", "set", "--file", updates.path, "--index", index.path])
        #expect(partial.status != 0 && partial.stderr.contains("no document at /no/such.md"))
        #expect(!(try runSextant(["docs", "show", jets, "--index", index.path])).stdout.contains("rank"))
        try Data((#"{"path": "\#(jets)", "metadata": {"rank": 1}}"# + "\n" + #"{"path": "\#(props)", "metadata": {"rank": 2}}"# + "\n").utf8).write(to: updates)
        let bulk = try runSextant(["docs", "set", "--file", updates.path, "--index", index.path])
        #expect(bulk.status == 0 && bulk.stdout.contains("set fields of 2 documents"), "\(bulk.stderr)")
        #expect(paths(try runSextant(["search", "thrust", "--index", index.path, "--json", "--where", #"{"rank": {"$lte": 1}}"#])) == [jets])

        // Bad input: one line naming what is wrong.
        for (args, says) in [
            (["search", "thrust", "--where", #"{"year": {"$regex": "19.*"}}"#], "field 'year': unknown operator '$regex'"),
            (["search", "thrust", "--where", #"{"year": {"$gt": "soon"}}"#], "field 'year', operator '$gt'"),
            (["search", "thrust", "--where", "{year: 1}"], "not valid JSON"),
            (["docs", "set", jets, #"{"path": "/x"}"#], "'path' is a built-in field"),
            (["docs", "set", jets, #"{"o": {"a": 1}}"#], "field 'o' is an object"),
            (["docs", "set", jets, "[1]"], "must be a JSON object"),
            (["docs", "set", "/no/such.md", #"{"a": 1}"#], "no document at /no/such.md"),
            (["docs", "show", "/no/such.md"], "no document /no/such.md"),
            (["docs", "list", "--where", "{}"], "empty"),
        ] as [([String], String)] {
            let r = try runSextant(args + ["--index", index.path])
            #expect(r.status != 0 && r.stderr.contains(says), "\(args): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(args)")
        }
    }
}
