import Foundation
import Testing

@Suite(.serialized) struct ImportCommandTests {
    /// Vectors made by `sextant embed` elsewhere go in with `sextant import` and search exactly as
    /// if the collection had embedded them; wrong model, dimensions, duplicates and bad lines are
    /// one error each, with nothing stored.
    @Test func precomputedVectorsGoInWithoutEmbedding() throws {
        let texts = ["Propellers convert shaft power into thrust.", "Simmer vegetables in stock and season with salt.",
                     "Knead the dough and let it rise."]
        let embedded = try runSextant(["embed"], input: Data(texts.enumerated().map { #"{"id": "t\#($0)", "text": \#(jsonString($1))}"# }
            .joined(separator: "\n").utf8))
        #expect(embedded.status == 0, "\(embedded.stderr)")
        var lines: [String] = []
        for (text, line) in zip(texts, embedded.stdout.split(separator: "\n")) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let vector = String(line[line.range(of: "[")!.lowerBound...line.range(of: "]")!.upperBound])
            lines.append(#"{"id": "\#(object["id"] as! String)", "text": \#(jsonString(text)), "vector": \#(vector.dropLast()), "metadata": {"src": "elsewhere"}}"#)
        }
        let index = temporaryFolder("sextant-import-index").path
        let info = try runSextant(["index", "fixtures/docs", "--index", index, "--quiet"])
        #expect(info.status == 0, "\(info.stderr)")
        let meta = try runSextant(["info", "--index", index, "--json"])
        let sha = try #require((try JSONSerialization.jsonObject(with: Data(meta.stdout.utf8)) as? [String: Any])?["modelSHA256"] as? String)
        // `sextant fingerprint` prints the same without a collection; a folder without weights is an error.
        let printed = try runSextant(["fingerprint"])
        #expect(printed.status == 0 && printed.stdout == sha + "\n", "\(printed.stdout) \(printed.stderr)")
        let none = try runSextant(["fingerprint", "--model", temporaryFolder("sextant-no-model").path])
        #expect(none.status != 0 && none.stderr.contains("no .safetensors weights") && none.stdout.isEmpty, "\(none.stderr)")
        let file = temporaryFolder("sextant-import-file").appendingPathComponent("vectors.jsonl")

        // Bad input first: one error each, nothing stored.
        let good = lines.joined(separator: "\n") + "\n"
        for (content, args, says) in [
            (good, ["--model-sha256", String(repeating: "0", count: 64)], "this collection's model"),
            (good.replacingOccurrences(of: "\"id\": \"t1\"", with: "\"id\": \"t0\""), ["--model-sha256", sha], "given twice"),
            (good + #"{"id": "x", "text": "y", "vector": [1, 0]}"# + "\n", ["--model-sha256", sha], "2 dimensions"),
            (good + "{not json\n", ["--model-sha256", sha], "line 4: not valid JSON"),
            (good + #"{"id": "x", "text": "y"}"# + "\n", ["--model-sha256", sha], "line 4: needs a \"vector\""),
            (lines[0].replacingOccurrences(of: "[0", with: "[5") + "\n", ["--model-sha256", sha], "not 1"),
        ] as [(String, [String], String)] {
            try Data(content.utf8).write(to: file)
            let r = try runSextant(["import", file.path, "--index", index] + args)
            #expect(r.status != 0 && r.stderr.contains(says), "\(says): \(r.stderr)")
        }
        let before = try runSextant(["docs", "list", "--index", index, "--json", "--where", #"{"src": "elsewhere"}"#])
        #expect(before.stdout.contains(#""documents":[]"#), "\(before.stdout)")

        try Data(good.utf8).write(to: file)
        let imported = try runSextant(["import", file.path, "--index", index, "--model-sha256", sha])
        #expect(imported.status == 0 && imported.stdout.contains("imported 3 documents"), "\(imported.stderr)")
        // The score is the dot product of the query's vector and the imported one.
        let hits = try runSextant(["search", "making bread dough", "--index", index, "--mode", "dense", "--json", "-k", "1",
                                   "--where", #"{"src": "elsewhere"}"#])
        #expect(hits.stdout.contains(#""path":"doc:t2""#), "\(hits.stdout)")
        let query = try runSextant(["embed", "--query"], input: Data(#"{"text": "making bread dough"}"#.utf8))
        let q = try parseVector(query.stdout), d = try parseVector(String(embedded.stdout.split(separator: "\n")[2]))
        let expected = zip(q, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let score = try #require(((try JSONSerialization.jsonObject(with: Data(hits.stdout.utf8)) as? [String: Any])?["hits"] as? [[String: Any]])?.first?["score"] as? Double)
        #expect(abs(score - expected) < 1e-5, "score \(score), dot of the vectors \(expected)")
    }

    /// The same vectors from a .npy array (float32 and float64), texts from the JSON lines.
    @Test func vectorsFromANumPyArray() throws {
        let texts = ["Jet engines produce thrust by accelerating air.", "Sourdough needs a starter."]
        let embedded = try runSextant(["embed"], input: Data(texts.map { #"{"text": \#(jsonString($0))}"# }.joined(separator: "\n").utf8))
        let vectors = try embedded.stdout.split(separator: "\n").map { try parseVector(String($0)) }
        let index = temporaryFolder("sextant-npy-index").path
        #expect(try runSextant(["index", "fixtures/docs", "--index", index, "--quiet"]).status == 0)
        let meta = try runSextant(["info", "--index", index, "--json"])
        let sha = try #require((try JSONSerialization.jsonObject(with: Data(meta.stdout.utf8)) as? [String: Any])?["modelSHA256"] as? String)
        // `sextant fingerprint` prints the same without a collection; a folder without weights is an error.
        let printed = try runSextant(["fingerprint"])
        #expect(printed.status == 0 && printed.stdout == sha + "\n", "\(printed.stdout) \(printed.stderr)")
        let none = try runSextant(["fingerprint", "--model", temporaryFolder("sextant-no-model").path])
        #expect(none.status != 0 && none.stderr.contains("no .safetensors weights") && none.stdout.isEmpty, "\(none.stderr)")
        let folder = temporaryFolder("sextant-npy")
        let lines = folder.appendingPathComponent("docs.jsonl")
        try Data(texts.enumerated().map { #"{"id": "n\#($0)", "text": \#(jsonString($1))}"# }.joined(separator: "\n").utf8).write(to: lines)
        for (dtype, width) in [("<f4", 4), ("<f8", 8)] {
            let npy = folder.appendingPathComponent("v\(width).npy")
            try npyData(vectors, dtype: dtype, width: width).write(to: npy)
            let r = try runSextant(["import", lines.path, "--vectors", npy.path, "--index", index, "--model-sha256", sha])
            #expect(r.status == 0 && r.stdout.contains("imported 2 documents"), "\(dtype): \(r.stderr)")
        }
        let hit = try runSextant(["search", "jet thrust", "--index", index, "--mode", "dense", "--json", "-k", "1", "--where", #"{"id": {"$in": ["n0", "n1"]}}"#])
        #expect(hit.stdout.contains(#""path":"doc:n0""#), "\(hit.stdout)")
        // Rows that do not match the lines, and arrays that are not 2-D float: one error each.
        let short = folder.appendingPathComponent("short.npy")
        try npyData(Array(vectors.prefix(1)), dtype: "<f4", width: 4).write(to: short)
        let long = folder.appendingPathComponent("long.npy")
        try npyData(vectors + [vectors[0]], dtype: "<f4", width: 4).write(to: long)
        let bad = folder.appendingPathComponent("bad.npy")
        try Data("not numpy".utf8).write(to: bad)
        for (npy, says) in [(short, "has 1 rows for more documents"), (long, "has 3 rows for 2 documents"), (bad, "not a .npy file")] {
            let r = try runSextant(["import", lines.path, "--vectors", npy.path, "--index", index, "--model-sha256", sha])
            #expect(r.status != 0 && r.stderr.contains(says), "\(r.stderr)")
        }
    }

    /// A version 1.0 .npy file of `rows` (C order).
    private func npyData(_ rows: [[Float]], dtype: String, width: Int) -> Data {
        var header = "{'descr': '\(dtype)', 'fortran_order': False, 'shape': (\(rows.count), \(rows.first?.count ?? 0)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        for row in rows {
            for v in row {
                if width == 4 { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
                else { withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            }
        }
        return data
    }

    private func jsonString(_ s: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [s]), as: UTF8.self).dropFirst().dropLast().description
    }

    private func parseVector(_ line: String) throws -> [Float] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        return (object["embedding"] as? [Double] ?? []).map(Float.init)
    }
}
