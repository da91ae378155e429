import Foundation
import Testing
import Sextant

/// Words as tokens: a simple, exact counter for chunking tests.
let wordCounter: (String) -> Int = { $0.split(whereSeparator: \.isWhitespace).count }

@Suite struct ChunkerTests {
    @Test func chunksRespectTheLimitAndKeepExactSpans() {
        let text = (1...30).map { "Paragraph \($0) has a few words in it." }.joined(separator: "\n\n")
        let chunker = Chunker(maxTokens: 40, overlapTokens: 10, count: wordCounter)
        let chunks = chunker.chunks(of: text, markdown: false)
        #expect(chunks.count > 5)
        let bytes = Array(text.utf8)
        for c in chunks {
            #expect(wordCounter(c.text) <= 40)
            #expect(String(decoding: bytes[c.byteRange], as: UTF8.self) == c.text)
            let startLine = bytes[..<c.byteRange.lowerBound].filter { $0 == 0x0A }.count + 1
            #expect(c.lineRange.lowerBound == startLine)
        }
        // Every paragraph is in some chunk, and consecutive chunks overlap.
        for p in 1...30 { #expect(chunks.contains { $0.text.contains("Paragraph \(p) ") }) }
        #expect(chunks[1].byteRange.lowerBound < chunks[0].byteRange.upperBound)
    }

    @Test func headingsStartChunksAndFormThePath() {
        let text = "# Guide\n\nIntro text here.\n\n## Install\n\nRun the script.\n\n## Use\n\nSearch things.\n"
        let chunks = Chunker(maxTokens: 100, overlapTokens: 0, count: wordCounter).chunks(of: text, markdown: true)
        #expect(chunks.count == 3)
        #expect(chunks.map(\.headingPath) == ["Guide", "Guide > Install", "Guide > Use"])
        #expect(chunks[1].text.hasPrefix("## Install"))
        #expect(chunks[2].lineRange == 9...11)
    }

    @Test func oversizedParagraphsSplitAtSentencesThenWords() {
        let sentence = "This sentence has exactly seven words. "
        let text = String(repeating: sentence, count: 20) + String(repeating: "x", count: 50) + " " + String(repeating: "word ", count: 30)
        let chunks = Chunker(maxTokens: 15, overlapTokens: 0, count: wordCounter).chunks(of: text, markdown: false)
        for c in chunks { #expect(wordCounter(c.text) <= 15) }
        #expect(chunks.first?.text.hasSuffix("words. ") == true || chunks.first?.text.hasSuffix("words.") == true)
        #expect(chunks.map(\.text).joined(separator: " ").split(separator: " ").count == text.split(separator: " ").count)
    }

    @Test func emptyAndBlankTextGiveNoChunks() {
        let chunker = Chunker(maxTokens: 10, overlapTokens: 2, count: wordCounter)
        #expect(chunker.chunks(of: "", markdown: true).isEmpty)
        #expect(chunker.chunks(of: "\n\n   \n", markdown: false).isEmpty)
    }
}

@Suite struct FusionAndSnippetTests {
    @Test func reciprocalRankFusionRewardsAgreement() {
        let fused = reciprocalRankFusion([["a", "b", "c"], ["c", "a", "d"]])
        #expect(fused.map(\.id) == ["a", "c", "b", "d"])
        #expect(abs(fused[0].score - (1.0 / 61 + 1.0 / 62)) < 1e-12)
    }

    @Test func snippetCentersOnQueryWords() {
        let text = String(repeating: "filler words about nothing much. ", count: 30) + "The boundary layer separates near the trailing edge. "
            + String(repeating: "more filler text here. ", count: 30)
        let s = snippet(of: text, query: "boundary layer separation", maxLength: 120)
        #expect(s.contains("boundary layer"))
        #expect(s.count <= 125)
    }

    @Test func snippetEdgeCases() {
        // Short texts come back whole, whitespace runs collapsed.
        #expect(snippet(of: "  Flaps\n\n increase\tlift. ", query: "lift") == "Flaps increase lift.")
        #expect(snippet(of: "", query: "lift") == "")
        // Case and punctuation do not hide a query word; the window is counted in characters.
        let filler = String(repeating: "ordinary words again. ", count: 40)
        let s = snippet(of: filler + "(BOUNDARY) layer, Grenzschicht-Ablösung über Flügeln. " + filler, query: "boundary ablösung", maxLength: 80)
        #expect(s.contains("(BOUNDARY) layer"), "\(s)")
        #expect(s.hasPrefix("… ") && s.hasSuffix(" …"))
        #expect(s.count <= 84)
        // A non-ASCII query word is found too, and multi-byte characters are never split.
        let german = String(repeating: "Wörter über Wörter. ", count: 30) + "Die Ablösung beginnt früh. " + String(repeating: "Straße ", count: 60)
        let g = snippet(of: german, query: "Ablösung", maxLength: 60)
        #expect(g.contains("Ablösung"), "\(g)")
        #expect(g.count <= 64)
        // One word longer than the window: its first characters.
        let blob = String(repeating: "ä", count: 500)
        #expect(snippet(of: blob, query: "x", maxLength: 100) == String(repeating: "ä", count: 100) + " …")
        // No query words at all: the start of the text.
        #expect(snippet(of: filler, query: "zebra", maxLength: 50).hasPrefix("ordinary words again."))
    }
}
