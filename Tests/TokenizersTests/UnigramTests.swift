import Foundation
import Testing
@testable import Tokenizers

/// SentencePiece Unigram tokenizers (XLM-RoBERTa style with the Precompiled normalizer, with and
/// without byte fallback, and one trained by HF `tokenizers`): ids identical to HF `tokenizers`
/// on every golden string, single and in pairs (fixtures made by tools/make-reranker-fixtures.py).
@Suite struct UnigramTests {
    struct Case: Decodable { let text: String; let ids: [Int32]; let ids_no_special: [Int32]? }
    struct PairCase: Decodable {
        let query: String; let passage: String; let max_length: Int; let truncation: String
        let ids: [Int32]?; let type_ids: [Int32]?; let error: String?
    }

    static var names: [String] {
        let dir = repoRoot.appendingPathComponent("fixtures/rerankers/tokenizers")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    @Test func everyUnigramFixtureIsTested() {
        #expect(Self.names.count >= 3, "fixtures/rerankers/tokenizers: \(Self.names)")
    }

    @Test(arguments: names)
    func matchesHuggingFaceTokenizers(_ name: String) throws {
        let tokenizer = try Tokenizer(contentsOf: repoRoot.appendingPathComponent("fixtures/rerankers/tokenizers/\(name)/tokenizer.json"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: repoRoot.appendingPathComponent("fixtures/tokenizer/\(name).golden.json")))
        #expect(cases.count >= 200)
        var bad = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            let plain = tokenizer.encode(c.text, addSpecialTokens: false)
            if ids != c.ids || (c.ids_no_special.map { plain != $0 } ?? false) {
                bad += 1
                if bad <= 5 { Issue.record("\(name): \(c.text.debugDescription.prefix(80)): \(ids.prefix(20)) != \(c.ids.prefix(20))") }
            }
        }
        #expect(bad == 0, "\(name): \(bad) of \(cases.count) strings differ")
    }

    @Test(arguments: names)
    func pairsMatchHuggingFaceTokenizers(_ name: String) throws {
        let url = repoRoot.appendingPathComponent("fixtures/tokenizer/\(name).pairs.golden.json")
        // Every fixture tokenizer has pair goldens.
        guard FileManager.default.fileExists(atPath: url.path) else {
            Issue.record("\(name): no pair goldens at \(url.path)")
            return
        }
        let tokenizer = try Tokenizer(contentsOf: repoRoot.appendingPathComponent("fixtures/rerankers/tokenizers/\(name)/tokenizer.json"))
        let cases = try JSONDecoder().decode([PairCase].self, from: Data(contentsOf: url))
        #expect(!cases.isEmpty)
        for c in cases {
            let strategy: PairTruncation = c.truncation == "only_second" ? .onlySecond : .longestFirst
            let got = tokenizer.encodePair(c.query, c.passage, maxLength: c.max_length, truncation: strategy)
            if c.error != nil {
                #expect(got == nil, "\(name) \(c.truncation): \(c.query.prefix(30)) should not fit")
            } else {
                #expect(got?.ids == c.ids && got?.typeIds == c.type_ids, "\(name) \(c.truncation): \(c.query.prefix(30)) / \(c.passage.prefix(30))")
            }
        }
    }

    /// Viterbi picks the best-scoring split, unknown characters fuse, byte fallback spells them.
    @Test func viterbiUnknownsAndByteFallback() throws {
        func tokenizer(byteFallback: Bool) throws -> Tokenizer {
            let json = """
            {"model": {"type": "Unigram", "unk_id": 0, "byte_fallback": \(byteFallback), "vocab": [
              ["<unk>", 0], ["a", -1], ["b", -1], ["ab", -1.5], ["abc", -5], ["c", -1], ["<0xC3>", -9], ["<0xA9>", -9]]}}
            """
            return try Tokenizer(jsonData: Data(json.utf8))
        }
        let t = try tokenizer(byteFallback: false)
        #expect(t.encode("ab") == [3])            // "ab" (-1.5) beats "a" + "b" (-2)
        #expect(t.encode("abc") == [3, 5])        // "ab" + "c" (-2.5) beats "abc" (-5)
        #expect(t.encode("aéé") == [1, 0])        // two unknown characters fuse into one <unk>
        #expect(try tokenizer(byteFallback: true).encode("aé") == [1, 6, 7])   // é = C3 A9
        #expect(try tokenizer(byteFallback: true).encode("a☃") == [1, 0])      // bytes missing: <unk>
    }
}
