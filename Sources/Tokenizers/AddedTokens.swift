/// Tokens matched verbatim in the input before the model sees it ("added_tokens").
struct AddedToken: Sendable {
    let id: Int32
    let content: [Unicode.Scalar]
    let special: Bool
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
}

/// A piece of input: either text still to be tokenized, or an added token already resolved.
enum Piece {
    case text(ArraySlice<Unicode.Scalar>)
    case token(Int32)
}

/// Leftmost-longest matching of added tokens, with their lstrip / rstrip / single_word rules.
struct AddedTokenMatcher: Sendable {
    private let byFirstScalar: [Unicode.Scalar: [AddedToken]]

    init(_ tokens: [AddedToken]) {
        var map: [Unicode.Scalar: [AddedToken]] = [:]
        for t in tokens where !t.content.isEmpty {
            map[t.content[0], default: []].append(t)
        }
        // Longest first, so the first match at a position is the longest one.
        byFirstScalar = map.mapValues { $0.sorted { $0.content.count > $1.content.count } }
    }

    var isEmpty: Bool { byFirstScalar.isEmpty }

    private static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        s.properties.isAlphabetic || s.properties.numericType != nil || s == "_"
    }

    /// Splits `text` into plain text pieces and added-token pieces.
    func split(_ text: ArraySlice<Unicode.Scalar>) -> [Piece] {
        if isEmpty { return [.text(text)] }
        var pieces: [Piece] = []
        var textStart = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            guard let candidates = byFirstScalar[text[i]],
                  let token = candidates.first(where: { matches($0, in: text, at: i) }) else {
                i += 1
                continue
            }
            var before = i
            if token.lstrip {
                while before > textStart, text[before - 1].isRustWhitespace { before -= 1 }
            }
            var after = i + token.content.count
            if token.rstrip {
                while after < text.endIndex, text[after].isRustWhitespace { after += 1 }
            }
            if textStart < before { pieces.append(.text(text[textStart..<before])) }
            pieces.append(.token(token.id))
            textStart = after
            i = after
        }
        if textStart < text.endIndex { pieces.append(.text(text[textStart..<text.endIndex])) }
        return pieces
    }

    private func matches(_ token: AddedToken, in text: ArraySlice<Unicode.Scalar>, at i: Int) -> Bool {
        let end = i + token.content.count
        guard end <= text.endIndex, text[i..<end].elementsEqual(token.content) else { return false }
        if token.singleWord {
            if i > text.startIndex, Self.isWordScalar(text[i - 1]) { return false }
            if end < text.endIndex, Self.isWordScalar(text[end]) { return false }
        }
        return true
    }
}
