/// WordPiece: greedy longest-match-first subwords, continuations prefixed (usually "##").
struct WordPiece: Sendable {
    let vocab: Vocabulary
    let unkId: Int32
    let continuingPrefix: [Unicode.Scalar]
    let maxInputCharsPerWord: Int

    init(json: [String: Any], exactVocab: [([Unicode.Scalar], Int32)]?) throws {
        guard let vocab = json["vocab"] as? [String: Any] else {
            throw TokenizerError(.malformed, "WordPiece model has no 'vocab' object")
        }
        let v = try Vocabulary(json: vocab, exact: exactVocab, context: "WordPiece")
        let unk = json["unk_token"] as? String ?? "[UNK]"
        guard let unkId = v[unk] else {
            throw TokenizerError(.malformed, "WordPiece unk_token '\(unk)' is not in the vocab")
        }
        self.vocab = v
        self.unkId = unkId
        self.continuingPrefix = Array((json["continuing_subword_prefix"] as? String ?? "##").unicodeScalars)
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
                var piece = start == word.startIndex ? [] : continuingPrefix
                piece.append(contentsOf: word[start..<end])
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

/// Token strings to ids, compared scalar by scalar. (Swift `String` keys would treat
/// canonically equivalent tokens, such as a precomposed and a decomposed "é", as one.)
struct Vocabulary: Sendable {
    private var ids: [[Unicode.Scalar]: Int32] = [:]

    /// From the exact entries (see `VocabularyJSON`), or else from Foundation's parsed object.
    init(json: [String: Any], exact: [([Unicode.Scalar], Int32)]?, context: String) throws {
        if let exact {
            ids.reserveCapacity(exact.count)
            for (token, id) in exact { ids[token] = id }
            return
        }
        ids.reserveCapacity(json.count)
        for (token, id) in json {
            guard let id = id as? Int, let id32 = Int32(exactly: id) else {
                throw TokenizerError(.malformed, "\(context) vocab entry '\(token)' has a non-integer id")
            }
            ids[Array(token.unicodeScalars)] = id32
        }
    }

    /// From (piece, id) pairs in order; a repeated piece keeps its last id.
    init(entries: [([Unicode.Scalar], Int32)]) {
        ids.reserveCapacity(entries.count)
        for (token, id) in entries { ids[token] = id }
    }

    subscript(scalars: [Unicode.Scalar]) -> Int32? { ids[scalars] }
    subscript(token: String) -> Int32? { ids[Array(token.unicodeScalars)] }

    var count: Int { ids.count }
    var maxId: Int32 { ids.values.max() ?? 0 }
}
