/// Byte-pair encoding ("model": {"type": "BPE"}): a word's symbols are merged pair by pair, the
/// pair with the lowest merge rank first, as HF `tokenizers` does.
struct BPE: Sendable {
    let vocab: Vocabulary
    /// (left id, right id) → (rank, merged id)
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkId: Int32?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// `<0xXX>` token ids for byte fallback.
    private let byteIds: [Int32?]

    init(json: [String: Any], exactVocab: [([Unicode.Scalar], Int32)]?) throws {
        guard let vocabJSON = json["vocab"] as? [String: Any] else {
            throw TokenizerError(.malformed, "BPE model has no 'vocab' object")
        }
        let vocab = try Vocabulary(json: vocabJSON, exact: exactVocab, context: "BPE")
        if (json["continuing_subword_prefix"] as? String)?.isEmpty == false || (json["end_of_word_suffix"] as? String)?.isEmpty == false {
            throw TokenizerError(.unsupported, "BPE with continuing_subword_prefix or end_of_word_suffix is not supported")
        }
        if let dropout = json["dropout"] as? Double, dropout > 0 {
            throw TokenizerError(.unsupported, "BPE dropout is not supported at inference")
        }
        guard let mergeList = json["merges"] as? [Any] else {
            throw TokenizerError(.malformed, "BPE model has no 'merges' list")
        }
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let pair: ([Unicode.Scalar], [Unicode.Scalar])
            if let s = entry as? String {
                // "a b": split at the first space scalar (neither side contains a space).
                let scalars = Array(s.unicodeScalars)
                guard let space = scalars.firstIndex(of: " ") else {
                    throw TokenizerError(.malformed, "BPE merge \(rank) '\(s)' is not of the form 'a b'")
                }
                pair = (Array(scalars[..<space]), Array(scalars[(space + 1)...]))
            } else if let a = entry as? [String], a.count == 2 {
                pair = (Array(a[0].unicodeScalars), Array(a[1].unicodeScalars))
            } else {
                throw TokenizerError(.malformed, "BPE merge \(rank) is neither 'a b' nor [\"a\", \"b\"]")
            }
            guard let left = vocab[pair.0], let right = vocab[pair.1], let merged = vocab[pair.0 + pair.1] else {
                throw TokenizerError(.malformed, "BPE merge \(rank) ('\(String(String.UnicodeScalarView(pair.0)))', '\(String(String.UnicodeScalarView(pair.1)))') uses tokens missing from the vocab")
            }
            let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
            if merges[key] == nil { merges[key] = (Int32(rank), merged) }
        }
        self.vocab = vocab
        self.merges = merges
        if let unk = json["unk_token"] as? String {
            guard let id = vocab[unk] else {
                throw TokenizerError(.malformed, "BPE unk_token '\(unk)' is not in the vocab")
            }
            unkId = id
        } else {
            unkId = nil
        }
        fuseUnk = json["fuse_unk"] as? Bool ?? false
        byteFallback = json["byte_fallback"] as? Bool ?? false
        ignoreMerges = json["ignore_merges"] as? Bool ?? false
        byteIds = (0..<256).map { vocab[String(format: "<0x%02X>", $0)] }
    }

    /// Appends the ids of one pre-tokenized word.
    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        if ignoreMerges {
            if let id = vocab[Array(word)] {
                ids.append(id)
                return
            }
        }
        // Initial symbols: one per scalar, or its UTF-8 bytes (byte fallback), or unk.
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var lastWasUnk = false
        for scalar in word {
            if let id = vocab[[scalar]] {
                symbols.append(id)
                lastWasUnk = false
            } else if byteFallback, let bytes = Optional(Array(String(Character(scalar)).utf8)),
                      bytes.allSatisfy({ byteIds[Int($0)] != nil }) {
                for b in bytes { symbols.append(byteIds[Int(b)]!) }
                lastWasUnk = false
            } else if let unk = unkId {
                if !(fuseUnk && lastWasUnk) { symbols.append(unk) }
                lastWasUnk = true
            }
            // Without an unk token, an unknown character is dropped (as HF does).
        }
        mergeAll(&symbols)
        ids.append(contentsOf: symbols)
    }

    /// Applies merges lowest rank first (leftmost on ties) with a heap over a linked list, so
    /// long words stay O(n log n).
    private func mergeAll(_ symbols: inout [Int32]) {
        let n = symbols.count
        guard n > 1 else { return }
        var next = Array(1...n)           // n = end
        var prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        func push(_ i: Int) {
            let j = next[i]
            guard j < n else { return }
            let key = UInt64(UInt32(bitPattern: symbols[i])) << 32 | UInt64(UInt32(bitPattern: symbols[j]))
            if let m = merges[key] { heap.push((m.rank, Int32(i), symbols[i], symbols[j])) }
        }
        for i in 0..<(n - 1) { push(i) }
        while let (_, pos, left, right) = heap.pop() {
            let i = Int(pos)
            guard alive[i], symbols[i] == left else { continue }
            let j = next[i]
            guard j < n, alive[j], symbols[j] == right else { continue }
            let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
            guard let m = merges[key] else { continue }
            symbols[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0 { push(prev[i]) }
            push(i)
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i < n {
            out.append(symbols[i])
            i = next[i]
        }
        symbols = out
    }
}

/// A binary min-heap of merge candidates ordered by (rank, position).
private struct MergeHeap {
    typealias Item = (rank: Int32, pos: Int32, left: Int32, right: Int32)
    private var items: [Item] = []

    private static func less(_ a: Item, _ b: Item) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
    }

    mutating func push(_ item: Item) {
        items.append(item)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard Self.less(items[c], items[p]) else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> Item? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < items.count, Self.less(items[l], items[m]) { m = l }
                if r < items.count, Self.less(items[r], items[m]) { m = r }
                if m == p { break }
                items.swapAt(p, m)
                p = m
            }
        }
        return top
    }
}
