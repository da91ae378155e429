import Foundation

/// SentencePiece Unigram: the segmentation of a word with the highest sum of piece scores
/// (Viterbi), as HF `tokenizers` computes it. A character no piece covers becomes the unknown
/// token (scored min - 10), runs of unknowns are fused into one, and with `byte_fallback` an
/// unknown run is spelled as its UTF-8 bytes (`<0xXX>` pieces) when they all exist.
struct Unigram: Sendable {
    let vocab: Vocabulary
    private let scores: [Double]
    private let unkId: Int32?
    private let byteFallback: Bool
    private let unkScore: Double
    private let trie: ScalarTrie
    /// `<0xXX>` piece ids by byte value (nil where the vocabulary lacks one).
    private let byteIds: [Int32?]

    /// The penalty below the lowest piece score given to an unknown character.
    private static let unknownPenalty = 10.0

    init(json: [String: Any], exactVocab: [([Unicode.Scalar], Double)]?) throws {
        guard let entries = exactVocab, json["vocab"] is [Any] else {
            throw TokenizerError(.malformed, "Unigram model has no 'vocab' list of [piece, score] pairs")
        }
        let exact = entries.enumerated().map { ($1.0, Int32($0)) }
        let scores = entries.map(\.1)
        guard !scores.isEmpty else { throw TokenizerError(.malformed, "Unigram vocab is empty") }
        vocab = Vocabulary(entries: exact)
        self.scores = scores
        if let unk = json["unk_id"] as? Int {
            guard (0..<entries.count).contains(unk) else {
                throw TokenizerError(.malformed, "Unigram unk_id \(unk) is outside the vocab (\(entries.count) pieces)")
            }
            unkId = Int32(unk)
        } else {
            unkId = nil
        }
        byteFallback = json["byte_fallback"] as? Bool ?? false
        unkScore = scores.min()! - Self.unknownPenalty
        var trie = ScalarTrie()
        for (piece, id) in exact where !piece.isEmpty { trie.insert(piece, id: id) }
        self.trie = trie
        let v = vocab
        byteIds = (0..<256).map { b in v["<0x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) + ">"] }
    }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        let chars = Array(word)
        let n = chars.count
        guard n > 0 else { return }
        // best[e]: the best path over chars[0..<e]: its score, where its last piece starts, the piece id.
        var bestScore = [Double](repeating: 0, count: n + 1)
        var bestStart = [Int](repeating: -1, count: n + 1)
        var bestId = [Int32](repeating: -1, count: n + 1)
        bestStart[0] = 0
        let unk = unkId ?? -1
        for start in 0..<n {
            let base = bestScore[start]
            var single = false
            trie.prefixes(of: chars, from: start) { end, id in
                let candidate = base + scores[Int(id)]
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestId[end] = id
                }
                if end == start + 1 { single = true }
            }
            if !single {
                let candidate = base + unkScore
                if bestStart[start + 1] < 0 || candidate > bestScore[start + 1] {
                    bestScore[start + 1] = candidate
                    bestStart[start + 1] = start
                    bestId[start + 1] = unk
                }
            }
        }
        // Walk back; consecutive unknown pieces are fused into one.
        var pieces: [(range: Range<Int>, id: Int32)] = []
        var end = n
        while end > 0 {
            let start = bestStart[end]
            let id = bestId[end]
            if id == unk, let last = pieces.last, last.id == unk {
                pieces[pieces.count - 1].range = start..<last.range.upperBound
            } else {
                pieces.append((start..<end, id))
            }
            end = start
        }
        for (range, id) in pieces.reversed() {
            if id != unk {
                ids.append(id)
                continue
            }
            // A fused run of unknowns: its text is looked up as a piece (as HF does), then spelled in bytes.
            let text = Array(chars[range])
            if let known = vocab[text] {
                ids.append(known)
                continue
            }
            if byteFallback {
                var s = String()
                s.unicodeScalars.append(contentsOf: text)
                let bytes = Array(s.utf8)
                let pieces = bytes.compactMap { byteIds[Int($0)] }
                if pieces.count == bytes.count {
                    ids.append(contentsOf: pieces)
                    continue
                }
            }
            if let unkId { ids.append(unkId) }
        }
    }
}

/// A trie over Unicode scalars for the pieces of a vocabulary: one hash table from (node,
/// scalar) to child node, so a 250 000-piece vocabulary is one table, not a table per node.
struct ScalarTrie: Sendable {
    private var children: [UInt64: Int32] = [:]
    private var values: [Int32] = [-1]

    private static func key(_ node: Int, _ s: Unicode.Scalar) -> UInt64 { UInt64(node) << 21 | UInt64(s.value) }

    mutating func insert(_ key: [Unicode.Scalar], id: Int32) {
        var node = 0
        for s in key {
            if let next = children[Self.key(node, s)] {
                node = Int(next)
            } else {
                values.append(-1)
                let next = Int32(values.count - 1)
                children[Self.key(node, s)] = next
                node = Int(next)
            }
        }
        values[node] = id   // a repeated piece keeps its last id, as HF's token -> id map does
    }

    /// Calls `body(end, id)` for every piece that equals `text[start..<end]`, shortest first.
    func prefixes(of text: [Unicode.Scalar], from start: Int, _ body: (Int, Int32) -> Void) {
        var node = 0
        var i = start
        while i < text.count, let next = children[Self.key(node, text[i])] {
            node = Int(next)
            i += 1
            if values[node] >= 0 { body(i, values[node]) }
        }
    }
}
