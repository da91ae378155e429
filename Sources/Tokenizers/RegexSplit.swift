/// How a split pattern's matches become pieces (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// A pattern for `Split` pre-tokenizers and `Replace` normalizers: a literal string or a regex,
/// matched over Unicode scalars.
struct SplitPattern: @unchecked Sendable {   // `Regex<AnyRegexOutput>` is not Sendable, but matching never mutates it
    private let literal: [Unicode.Scalar]?
    private let regex: Regex<AnyRegexOutput>?

    init(json: Any?, context: String) throws {
        guard let dict = json as? [String: Any] else {
            throw TokenizerError(.malformed, "\(context) has no pattern object")
        }
        if let s = dict["String"] as? String {
            literal = Array(s.unicodeScalars)
            regex = nil
        } else if let r = dict["Regex"] as? String {
            do {
                regex = try Regex(r).matchingSemantics(.unicodeScalar)
            } catch {
                throw TokenizerError(.unsupported, "\(context): regex \(r.debugDescription) is not supported (\(error))")
            }
            literal = nil
        } else {
            throw TokenizerError(.malformed, "\(context) pattern is neither String nor Regex")
        }
    }

    /// Ranges (scalar offsets relative to the slice start) of the non-overlapping matches.
    func matches(in text: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        if let literal {
            guard !literal.isEmpty, text.count >= literal.count else { return [] }
            var result: [Range<Int>] = []
            var i = text.startIndex
            while i + literal.count <= text.endIndex {
                if text[i..<(i + literal.count)].elementsEqual(literal) {
                    result.append((i - text.startIndex)..<(i - text.startIndex + literal.count))
                    i += literal.count
                } else {
                    i += 1
                }
            }
            return result
        }
        var string = String()
        string.unicodeScalars.append(contentsOf: text)
        let scalars = string.unicodeScalars
        var result: [Range<Int>] = []
        var lastIndex = scalars.startIndex
        var lastOffset = 0
        for match in string.matches(of: regex!) {
            let lower = lastOffset + scalars.distance(from: lastIndex, to: match.range.lowerBound)
            let upper = lower + scalars.distance(from: match.range.lowerBound, to: match.range.upperBound)
            if upper > lower { result.append(lower..<upper) }
            lastIndex = match.range.upperBound
            lastOffset = upper
        }
        return result
    }

    /// Splits `text` around the matches per `behavior` (`invert`: the matches are the content).
    func split(_ text: ArraySlice<Unicode.Scalar>, behavior: SplitBehavior, invert: Bool = false) -> [ArraySlice<Unicode.Scalar>] {
        let base = text.startIndex
        // (range, isMatch) covering the whole text.
        var parts: [(Range<Int>, Bool)] = []
        var at = 0
        for m in matches(in: text) {
            if m.lowerBound > at { parts.append((at..<m.lowerBound, invert)) }
            parts.append((m, !invert))
            at = m.upperBound
        }
        if at < text.count { parts.append((at..<text.count, invert)) }

        var pieces: [Range<Int>] = []
        switch behavior {
        case .removed:
            pieces = parts.filter { !$0.1 }.map(\.0)
        case .isolated:
            pieces = parts.map(\.0)
        case .mergedWithPrevious:
            for (r, isMatch) in parts {
                if isMatch, let last = pieces.last, last.upperBound == r.lowerBound {
                    pieces[pieces.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    pieces.append(r)
                }
            }
        case .mergedWithNext:
            var pending: Range<Int>? = nil
            for (r, isMatch) in parts {
                if isMatch {
                    if let p = pending { pieces.append(p) }
                    pending = r
                } else if let p = pending {
                    pieces.append(p.lowerBound..<r.upperBound)
                    pending = nil
                } else {
                    pieces.append(r)
                }
            }
            if let p = pending { pieces.append(p) }
        case .contiguous:
            var lastWasMatch = false
            for (r, isMatch) in parts {
                if isMatch, lastWasMatch, let last = pieces.last, last.upperBound == r.lowerBound {
                    pieces[pieces.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    pieces.append(r)
                }
                lastWasMatch = isMatch
            }
        }
        return pieces.map { text[(base + $0.lowerBound)..<(base + $0.upperBound)] }
    }
}
