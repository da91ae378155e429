import Foundation
import Testing
@testable import Sextant
import Store

@Suite struct FrontMatterTests {
    private func fields(_ text: String) -> (fields: [String: JSONValue], text: String, warnings: [String])? {
        var warnings: [String] = []
        guard let r = FrontMatter.split(text, source: "t.md", warn: { warnings.append($0) }) else { return nil }
        return (r.fields, r.text, warnings)
    }

    @Test func scalarsListsAndBlocks() throws {
        let text = """
            ---
            title: "Flaps: how they work"   # quoted, with a colon
            author: O'Brien
            single: 'it''s'
            count: 42
            negative: -7
            big: 9223372036854775807
            ratio: 0.25
            exp: 1e3
            yes: true
            no: False
            nothing: ~
            empty:
            date: 2024-05-01
            version: 1.2.3
            tags: [aero, "with, comma", 3]
            list:
              - one
              - 2   # a comment
            summary: >
              folded
              text
            # a comment line
            ---
            Body text.
            """
        let r = try #require(fields(text))
        let f = r.fields
        #expect(f["title"] == .string("Flaps: how they work") && f["author"] == .string("O'Brien") && f["single"] == .string("it's"))
        #expect(f["count"] == .int(42) && f["negative"] == .int(-7) && f["big"] == .int(Int64.max))
        #expect(f["ratio"] == .double(0.25) && f["exp"] == .double(1000))
        #expect(f["yes"] == .bool(true) && f["no"] == .bool(false) && f["nothing"] == .null && f["empty"] == .null)
        #expect(f["date"] == .string("2024-05-01") && f["version"] == .string("1.2.3"))
        #expect(f["tags"] == .array([.string("aero"), .string("with, comma"), .int(3)]))
        #expect(f["list"] == .array([.string("one"), .int(2)]))
        #expect(f["summary"] == .string("folded text"))
        #expect(r.warnings.isEmpty)
        // Same bytes and lines: the block is blanked, not cut.
        #expect(r.text.utf8.count == text.utf8.count)
        #expect(r.text.split(separator: "\n", omittingEmptySubsequences: false).count == text.split(separator: "\n", omittingEmptySubsequences: false).count)
        #expect(r.text.hasSuffix("Body text.") && !r.text.contains("aero"))
    }

    @Test func malformedOrAbsentFrontMatter() {
        #expect(fields("No front matter here.\n---\na: 1\n---\n") == nil)
        var warnings: [String] = []
        #expect(FrontMatter.split("---\na: 1\nnot yaml\n---\nx", source: "t.md", warn: { warnings.append($0) }) == nil)
        #expect(FrontMatter.split("---\na: 1\nbody without an end\n", source: "t.md", warn: { warnings.append($0) }) == nil)
        #expect(FrontMatter.split("---\n  indented: 1\n---\nx", source: "t.md", warn: { warnings.append($0) }) == nil)
        #expect(warnings.count == 3 && warnings.allSatisfy { $0.hasPrefix("t.md: front matter") })
        // Skipped fields warn but keep the rest.
        let r = fields("---\nmap:\n  a: 1\n  b: 2\nkeep: yes\n$op: 1\npath: /x\n---\nx")
        #expect(r?.fields == ["keep": .string("yes")])   // path is built in: dropped
        #expect(r?.warnings.contains { $0.contains("'map' is a nested map") } == true)
        #expect(r?.warnings.contains { $0.contains("'$op'") } == true)
        #expect(r?.warnings.contains { $0.contains("'path' is built in") } == true)
        // Lists of lists and maps are skipped, not mangled; `id` is reserved.
        let nested = fields("---\na:\n  - [x, y]\nb: [[x, y], z]\nc: {k: 1}\nd: [1, {k: 1}]\nid: 5\ne: [x, y]\n---\nbody")
        #expect(nested?.fields == ["e": .array([.string("x"), .string("y")])])
        #expect(nested?.warnings.count == 5)
        // Windows line ends and an empty block.
        #expect(fields("---\r\ntitle: T\r\n---\r\nx")?.fields == ["title": .string("T")])
        #expect(fields("---\n---\nx")?.fields == [:])
    }
}
