/// WordPiece: greedy longest-match-first subwords, continuations prefixed (usually "##").
struct WordPiece: Sendable {
    let vocab: [String: Int32]
    let unkId: Int32
    let continuingPrefix: String
    let maxInputCharsPerWord: Int

    init(json: [String: Any]) throws {
        guard let vocab = json["vocab"] as? [String: Any] else {
            throw TokenizerError(.malformed, "WordPiece model has no 'vocab' object")
        }
        var v: [String: Int32] = [:]
        v.reserveCapacity(vocab.count)
        for (token, id) in vocab {
            guard let id = id as? Int, let id32 = Int32(exactly: id) else {
                throw TokenizerError(.malformed, "WordPiece vocab entry '\(token)' has a non-integer id")
            }
            v[token] = id32
        }
        let unk = json["unk_token"] as? String ?? "[UNK]"
        guard let unkId = v[unk] else {
            throw TokenizerError(.malformed, "WordPiece unk_token '\(unk)' is not in the vocab")
        }
        self.vocab = v
        self.unkId = unkId
        self.continuingPrefix = json["continuing_subword_prefix"] as? String ?? "##"
        self.maxInputCharsPerWord = json["max_input_chars_per_word"] as? Int ?? 100
    }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        if word.count > maxInputCharsPerWord {
            ids.append(unkId)
            return
        }
        let mark = ids.count
        var start = word.startIndex
        while start < word.endIndex {
            var end = word.endIndex
            var found: Int32? = nil
            while start < end {
                var piece = start == word.startIndex ? "" : continuingPrefix
                piece.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocab[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.removeSubrange(mark...)
                ids.append(unkId)
                return
            }
            ids.append(id)
            start = end
        }
    }
}
