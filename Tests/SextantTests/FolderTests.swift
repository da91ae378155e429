import Foundation
import Testing
import Sextant

func makeTree(_ files: [String: String]) throws -> URL {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("sextant-tree-\(UUID().uuidString)")
    for (path, content) in files {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(content.utf8).write(to: url)
    }
    return root
}

@Suite struct FolderWalkerTests {
    @Test func skipsHiddenJunkIgnoredAndUnknownFiles() throws {
        let root = try makeTree([
            "a.md": "# A", "b.txt": "b", "code/main.swift": "let x = 1",
            ".hidden.txt": "no", ".git/config.txt": "no", "node_modules/x/readme.md": "no",
            "logs/run.log": "ignored by .gitignore", "keep/important.log": "re-included",
            ".gitignore": "*.log\n!keep/important.log\nbuild-output/\n", "build-output/out.txt": "no",
            "image.png": "not text", "notes/deep/c.rst": "c",
        ])
        let files = FolderWalker().files(under: root).map(\.relativePath)
        #expect(Set(files) == ["a.md", "b.txt", "code/main.swift", "keep/important.log", "notes/deep/c.rst"])
        let only = FolderWalker(include: ["*.md"]).files(under: root).map(\.relativePath)
        #expect(only == ["a.md"])
        let without = FolderWalker(exclude: ["notes"]).files(under: root).map(\.relativePath)
        #expect(!without.contains("notes/deep/c.rst"))
    }

    @Test func symlinkLoopsAreVisitedOnce() throws {
        let root = try makeTree(["sub/x.txt": "x"])
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("sub/loop"), withDestinationURL: root)
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("alias"), withDestinationURL: root.appendingPathComponent("sub"))
        let files = FolderWalker().files(under: root).map(\.relativePath)
        #expect(files.filter { $0.hasSuffix("x.txt") }.count == 1)
    }
}

@Suite struct TextExtractorTests {
    @Test func htmlKeepsTitleAndTextWithoutMarkup() throws {
        let root = try makeTree(["p.html": "<html><head><title>Wing &amp; Flap</title><style>p{}</style></head><body><h1>Lift</h1><p>Flaps raise &lt;lift&gt;.</p><script>alert(1)</script></body></html>"])
        let doc = try TextExtractor.extract(root.appendingPathComponent("p.html"), maxBytes: 1 << 20, warn: { _ in })[0]
        #expect(doc.title == "Wing & Flap")
        #expect(doc.text.contains("# Lift"))
        #expect(doc.text.contains("Flaps raise <lift>."))
        #expect(!doc.text.contains("alert") && !doc.text.contains("<p>"))
    }

    @Test func beirJSONLinesGiveOneDocumentPerRecord() throws {
        let root = try makeTree(["corpus.jsonl": "{\"_id\": \"1\", \"title\": \"T\", \"text\": \"body one\"}\nnot json\n{\"_id\": \"2\", \"title\": \"\", \"text\": \"body two\"}\n"])
        var warnings: [String] = []
        let docs = try TextExtractor.extract(root.appendingPathComponent("corpus.jsonl"), maxBytes: 1 << 20) { warnings.append($0) }
        #expect(docs.map(\.text) == ["T. body one", "body two"])
        #expect(docs[0].key.hasSuffix("corpus.jsonl#1"))
        #expect(warnings.count == 1 && warnings[0].contains("line 2"))
    }

    @Test func badFilesAreSkippedWithAReason() throws {
        let root = try makeTree(["empty.txt": "", "big.txt": String(repeating: "a", count: 3000)])
        try Data([0x48, 0x00, 0x01, 0x02, 0xFF]).write(to: root.appendingPathComponent("binary.txt"))
        func reason(_ name: String, max: Int = 1 << 20) -> String? {
            do { _ = try TextExtractor.extract(root.appendingPathComponent(name), maxBytes: max, warn: { _ in }); return nil }
            catch { return "\(error)" }
        }
        #expect(reason("empty.txt")?.contains("empty") == true)
        #expect(reason("binary.txt")?.contains("binary") == true)
        #expect(reason("big.txt", max: 1000)?.contains("limit") == true)
        #expect(reason("missing.txt") != nil)
        // Invalid UTF-8 is decoded lossily, with a warning.
        try Data([0x61, 0x62, 0xC3, 0x28, 0x63]).write(to: root.appendingPathComponent("latin.txt"))
        var warned = false
        let doc = try TextExtractor.extract(root.appendingPathComponent("latin.txt"), maxBytes: 1 << 20) { _ in warned = true }[0]
        #expect(warned && doc.text.hasPrefix("ab") && doc.text.contains("\u{FFFD}"))
    }
}
