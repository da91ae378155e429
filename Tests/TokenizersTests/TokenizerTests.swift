import Foundation
import Testing
@testable import Tokenizers

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let defaultModel = repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2")

func loadDefaultTokenizer() throws -> Tokenizer {
    let url = defaultModel.appendingPathComponent("tokenizer.json")
    guard FileManager.default.fileExists(atPath: url.path) else {
        Issue.record("the default model is missing at \(defaultModel.path): run tools/setup.sh")
        throw CancellationError()
    }
    return try Tokenizer(contentsOf: url)
}

/// A minimal WordPiece tokenizer.json with the given components.
func miniTokenizerJSON(normalizer: String = #"{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}"#,
                       preTokenizer: String = #"{"type": "BertPreTokenizer"}"#,
                       modelType: String = "WordPiece") -> Data {
    let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "un", "##aff", "##able", ",", "!", "a"]
    let vocabJSON = vocab.enumerated().map { "\"\($1)\": \($0)" }.joined(separator: ", ")
    return Data("""
    {"version": "1.0",
     "added_tokens": [{"id": 2, "content": "[CLS]", "special": true, "normalized": false},
                      {"id": 3, "content": "[SEP]", "special": true, "normalized": false}],
     "normalizer": \(normalizer),
     "pre_tokenizer": \(preTokenizer),
     "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
     "model": {"type": "\(modelType)", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 10, "vocab": {\(vocabJSON)}}}
    """.utf8)
}

@Suite struct TokenizerUnitTests {
    @Test func wordPieceGreedyLongestMatch() throws {
        let t = try Tokenizer(jsonData: miniTokenizerJSON())
        #expect(t.encode("Hello, unaffable world!") == [2, 4, 9, 6, 7, 8, 5, 10, 3])
    }

    @Test func unknownPiecesAndOverlongWordsBecomeUnk() throws {
        let t = try Tokenizer(jsonData: miniTokenizerJSON())
        #expect(t.encode("hellox", addSpecialTokens: false) == [1])
        // max_input_chars_per_word is 10 in this vocabulary.
        #expect(t.encode("aaaaaaaaaaa", addSpecialTokens: false) == [1])
    }

    @Test func truncationKeepsRoomForSpecialTokens() throws {
        let t = try Tokenizer(jsonData: miniTokenizerJSON())
        let ids = t.encode("hello world hello world hello", maxLength: 4)
        #expect(ids == [2, 4, 5, 3])
        #expect(t.encode("", maxLength: 4) == [2, 3])
    }

    @Test func addedTokensAreMatchedBeforeNormalization() throws {
        let t = try Tokenizer(jsonData: miniTokenizerJSON())
        #expect(t.encode("hello[SEP]world", addSpecialTokens: false) == [4, 3, 5])
        // Lower-case "[sep]" is not the added token: it is split as punctuation and text.
        #expect(t.encode("[sep]", addSpecialTokens: false) == [1, 1, 1])
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let e1 = #expect(throws: TokenizerError.self) {
            try Tokenizer(jsonData: miniTokenizerJSON(normalizer: #"{"type": "Precompiled"}"#))
        }
        #expect(e1?.message.contains("Precompiled") == true)
        let e2 = #expect(throws: TokenizerError.self) {
            try Tokenizer(jsonData: miniTokenizerJSON(preTokenizer: #"{"type": "Punctuation"}"#))
        }
        #expect(e2?.message.contains("Punctuation") == true)
        let e3 = #expect(throws: TokenizerError.self) {
            try Tokenizer(jsonData: miniTokenizerJSON(modelType: "WordLevel"))
        }
        #expect(e3?.code == .unsupported && e3?.message.contains("WordLevel") == true)
        // A Unigram model whose vocab is not a list of [piece, score] pairs.
        let e4 = #expect(throws: TokenizerError.self) {
            try Tokenizer(jsonData: miniTokenizerJSON(modelType: "Unigram"))
        }
        #expect(e4?.code == .malformed && e4?.message.contains("[piece, score]") == true)
    }

    /// Template ids that are not token ids are a malformed file, not a crash; template ids count
    /// in `idLimit` (so a model whose vocabulary is smaller is caught before it reads past it).
    @Test func templateIdsAreChecked() throws {
        let good = String(decoding: miniTokenizerJSON(), as: UTF8.self)
        for bad in ["-1", "99999999999"] {
            let text = good.replacingOccurrences(of: #""ids": [3]"#, with: "\"ids\": [\(bad)]")
            let e = #expect(throws: TokenizerError.self) { try Tokenizer(jsonData: Data(text.utf8)) }
            #expect(e?.code == .malformed && e?.message.contains("not a valid token id") == true)
        }
        let big = good.replacingOccurrences(of: #""ids": [3]"#, with: #""ids": [40]"#)
        #expect(try Tokenizer(jsonData: Data(big.utf8)).idLimit == 41)
    }

    @Test func malformedFilesGiveClearErrors() throws {
        #expect(throws: TokenizerError.self) { try Tokenizer(jsonData: Data("{not json".utf8)) }
        #expect(throws: TokenizerError.self) { try Tokenizer(jsonData: Data("[1, 2]".utf8)) }
        #expect(throws: TokenizerError.self) { try Tokenizer(jsonData: Data(#"{"model": {"type": "WordPiece"}}"#.utf8)) }
        let missing = URL(fileURLWithPath: "/nonexistent/tokenizer.json")
        let e = #expect(throws: TokenizerError.self) { try Tokenizer(contentsOf: missing) }
        #expect(e?.message.contains("/nonexistent/tokenizer.json") == true)
    }
}

@Suite struct TokenizerGoldenTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int32]
    }

    /// Token ids identical to HF `tokenizers` (fixtures/tokenizer, made by tools/make-goldens.py).
    @Test func defaultModelMatchesHuggingFaceTokenizers() throws {
        let tokenizer = try loadDefaultTokenizer()
        let url = repoRoot.appendingPathComponent("fixtures/tokenizer/all-MiniLM-L6-v2.golden.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
        #expect(cases.count >= 300)
        var mismatches = 0
        for c in cases {
            let ids = tokenizer.encode(c.text, maxLength: 256)
            if ids != c.ids {
                mismatches += 1
                if mismatches <= 10 {
                    Issue.record("text \(c.text.debugDescription.prefix(120)): got \(ids.prefix(40)), expected \(c.ids.prefix(40))")
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(cases.count) golden strings differ")
    }
}

@Suite struct BPETokenizerGoldenTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int32]
    }

    static let styles = ["bytelevel-qwen", "bytelevel-qwen3emb", "gpt2", "sp-metaspace", "sp-legacy"]

    /// Byte-level and SentencePiece-style BPE give HF `tokenizers`' ids (tokenizers trained by
    /// tools/make-decoder-fixtures.py).
    @Test(arguments: styles)
    func matchesHuggingFaceTokenizers(_ style: String) throws {
        let tokenizer = try Tokenizer(contentsOf: repoRoot.appendingPathComponent("fixtures/decoders/tokenizers/\(style)/tokenizer.json"))
        let url = repoRoot.appendingPathComponent("fixtures/tokenizer/\(style).golden.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
        #expect(cases.count >= 200)
        var mismatches = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                mismatches += 1
                if mismatches <= 8 {
                    Issue.record("\(style): \(c.text.debugDescription.prefix(100)): got \(ids.prefix(30)), expected \(c.ids.prefix(30))")
                }
            }
        }
        #expect(mismatches == 0, "\(style): \(mismatches) of \(cases.count) strings differ")
    }
}

@Suite struct BPEUnitTests {
    /// A byte-level BPE with merges given in both notations.
    @Test func mergesInBothNotationsAndLowestRankFirst() throws {
        let json = #"""
        {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5},
                   "merges": ["b c", ["a", "bc"], "a b"]},
         "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null}
        """#
        let t = try Tokenizer(jsonData: Data(json.utf8))
        // "b c" has rank 0, so "abc" merges b+c first, then a+bc.
        #expect(t.encode("abc") == [5])
        #expect(t.encode("ab") == [3])
        #expect(t.encode("cab") == [2, 3])
    }

    @Test func byteFallbackAndUnknownCharacters() throws {
        var vocab = ["<unk>": 0, "a": 1, "▁": 2, "▁a": 3]
        for b in 0..<256 { vocab[String(format: "<0x%02X>", b)] = 4 + b }
        let vocabJSON = vocab.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
        let json = """
        {"model": {"type": "BPE", "vocab": {\(vocabJSON)}, "merges": ["▁ a"], "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true},
         "added_tokens": [], "normalizer": null,
         "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
         "post_processor": null}
        """
        let t = try Tokenizer(jsonData: Data(json.utf8))
        // "é" is not in the vocab: its two UTF-8 bytes C3 A9.
        #expect(t.encode("a é") == [3, 2, 4 + 0xC3, 4 + 0xA9])
    }

    @Test func longUnsplitInputStaysFast() throws {
        // A Metaspace tokenizer without splitting sees the whole text as one word.
        let json = #"""
        {"model": {"type": "BPE", "vocab": {"a": 0, "aa": 1, "aaaa": 2}, "merges": ["a a", "aa aa"]},
         "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null}
        """#
        let t = try Tokenizer(jsonData: Data(json.utf8))
        let ids = t.encode(String(repeating: "a", count: 200_001))
        #expect(ids.count == 50_001)
        #expect(ids.last == 0)
    }
}
