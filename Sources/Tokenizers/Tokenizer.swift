import Foundation

/// A tokenizer read from a Hugging Face `tokenizer.json`, giving the same ids as HF `tokenizers`.
///
/// Supported: WordPiece (BERT), BPE models (byte-level as in GPT-2/Qwen, SentencePiece style
/// with Metaspace and byte fallback as in Llama/Mistral) and SentencePiece Unigram (XLM-RoBERTa,
/// with its Precompiled normalizer), their normalizers, pre-tokenizers, added tokens and
/// post-processors (single sequences and pairs). Anything else is refused with a `TokenizerError` naming it.
public struct Tokenizer: Sendable {
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let model: TokenModel
    private var postProcessor: PostProcessor
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher
    private let addedTokenIds: [String: Int32]

    /// One more than the largest id the tokenizer can produce.
    public var idLimit: Int32 {
        max(model.vocab.maxId, addedTokenIds.values.max() ?? 0, postProcessor.addedIds.max() ?? 0) + 1
    }

    /// Number of tokens the post-processor adds around one sequence.
    public var specialTokenCount: Int { postProcessor.prefix.count + postProcessor.suffix.count }

    /// Loads `tokenizer.json`; errors name the file and the component at fault.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError(.unreadable, "\(url.path): cannot read the tokenizer file (\(error.localizedDescription))")
        }
        do {
            try self.init(jsonData: data)
        } catch let e as TokenizerError {
            throw TokenizerError(e.code, "\(url.path): \(e.message)")
        }
    }

    /// Parses the contents of a `tokenizer.json`.
    public init(jsonData: Data) throws {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: jsonData)
        } catch {
            throw TokenizerError(.malformed, "not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any] else {
            throw TokenizerError(.malformed, "the top level is not a JSON object")
        }
        guard let modelJSON = root["model"] as? [String: Any] else {
            throw TokenizerError(.malformed, "no 'model' object")
        }
        let modelType = modelJSON["type"] as? String
            ?? (modelJSON["merges"] != nil ? "BPE" : modelJSON["continuing_subword_prefix"] != nil ? "WordPiece" : "<missing>")
        let model: TokenModel
        switch modelType {
        case "WordPiece": model = .wordPiece(try WordPiece(json: modelJSON, exactVocab: try VocabularyJSON.entries(in: jsonData)))
        case "BPE": model = .bpe(try BPE(json: modelJSON, exactVocab: try VocabularyJSON.entries(in: jsonData)))
        case "Unigram": model = .unigram(try Unigram(json: modelJSON, exactVocab: try VocabularyJSON.unigramEntries(in: jsonData)))
        default:
            throw TokenizerError(.unsupported, "model type '\(modelType)' is not supported (supported: WordPiece, BPE, Unigram)")
        }
        self.model = model

        normalizer = try (root["normalizer"] as? [String: Any]).map(Normalizer.parse)
        preTokenizer = try (root["pre_tokenizer"] as? [String: Any]).map(PreTokenizer.parse)

        var raw: [AddedToken] = [], normalized: [AddedToken] = []
        var addedIds: [String: Int32] = [:]
        for item in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = item["content"] as? String, let id = item["id"] as? Int else {
                throw TokenizerError(.malformed, "an added_tokens entry lacks 'content' or 'id'")
            }
            let token = AddedToken(id: Int32(id), content: Array(content.unicodeScalars),
                                   special: item["special"] as? Bool ?? false,
                                   singleWord: item["single_word"] as? Bool ?? false,
                                   lstrip: item["lstrip"] as? Bool ?? false,
                                   rstrip: item["rstrip"] as? Bool ?? false,
                                   normalized: item["normalized"] as? Bool ?? !(item["special"] as? Bool ?? false))
            addedIds[content] = Int32(id)
            if token.normalized { normalized.append(token) } else { raw.append(token) }
        }
        rawAddedTokens = AddedTokenMatcher(raw)
        normalizedAddedTokens = AddedTokenMatcher(normalized)
        addedTokenIds = addedIds

        if let post = root["post_processor"] as? [String: Any] {
            postProcessor = try PostProcessor.parse(post) { name in addedIds[name] ?? model.vocab[name] }
        } else {
            postProcessor = .none
        }
    }

    /// Token ids the post-processor puts before and after a sequence.
    public var template: (prefix: [Int32], suffix: [Int32]) { (postProcessor.prefix, postProcessor.suffix) }

    /// A copy that wraps sequences in `prefix` … `suffix` instead (as `add_bos_token` /
    /// `add_eos_token` of `tokenizer_config.json` ask of Llama-style tokenizers).
    public func withTemplate(prefix: [Int32], suffix: [Int32]) -> Tokenizer {
        var copy = self
        copy.postProcessor = PostProcessor(prefix: prefix, suffix: suffix)
        return copy
    }

    /// The id of a token (added tokens first, then the model's vocabulary).
    public func id(of token: String) -> Int32? {
        addedTokenIds[token] ?? model.vocab[token]
    }

    /// Encodes `text` to token ids.
    /// - Parameters:
    ///   - addSpecialTokens: wrap with the post-processor's template (e.g. `[CLS] … [SEP]`).
    ///   - maxLength: total length limit, special tokens included; the text is cut at the end.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> [Int32] {
        var ids = tokenize(text)
        let reserved = addSpecialTokens ? specialTokenCount : 0
        if let maxLength, ids.count + reserved > maxLength {
            ids.removeSubrange(max(0, maxLength - reserved)...)
        }
        if addSpecialTokens {
            ids = postProcessor.prefix + ids + postProcessor.suffix
        }
        return ids
    }

    /// Encodes a pair (a query and a passage, for cross-encoders) with the post-processor's pair
    /// template, e.g. `[CLS] a [SEP] b [SEP]` (type ids 0 then 1) or `<s> a </s></s> b </s>`.
    /// With `maxLength` (special tokens included), tokens are removed from the end as HF's
    /// truncation strategies do: `longestFirst` from the longer side first, `onlySecond` from the
    /// second only.
    /// - Returns: nil when `onlySecond` cannot make the pair fit.
    public func encodePair(_ first: String, _ second: String, maxLength: Int? = nil,
                           truncation: PairTruncation = .longestFirst) -> (ids: [Int32], typeIds: [Int32])? {
        // Without a pair template the two are joined as they are, the second typed 1 (as HF does).
        let template = postProcessor.pair ?? [.sequence(second: false, typeId: 0), .sequence(second: true, typeId: 1)]
        var a = tokenize(first), b = tokenize(second)
        let added = template.reduce(0) { n, piece in if case let .special(ids, _) = piece { n + ids.count } else { n } }
        if let maxLength, a.count + b.count + added > maxLength, truncation == .onlySecond {
            let excess = a.count + b.count + added - maxLength
            guard b.count > excess else { return nil }
            b.removeSubrange((b.count - excess)...)
        } else if let maxLength, a.count + b.count + added > maxLength {
            let limit = max(0, maxLength - added)
            var (n1, n2) = (min(a.count, b.count), max(a.count, b.count))
            let swapped = a.count > b.count
            n2 = n1 > limit ? n1 : max(n1, limit - n1)
            if n1 + n2 > limit {
                n1 = limit / 2
                n2 = n1 + limit % 2
            }
            let (na, nb) = swapped ? (n2, n1) : (n1, n2)
            if a.count > na { a.removeSubrange(na...) }
            if b.count > nb { b.removeSubrange(nb...) }
        }
        var ids: [Int32] = [], types: [Int32] = []
        for piece in template {
            switch piece {
            case let .sequence(second, typeId):
                let part = second ? b : a
                ids += part
                types += Array(repeating: typeId, count: part.count)
            case let .special(special, typeId):
                ids += special
                types += Array(repeating: typeId, count: special.count)
            }
        }
        return (ids, types)
    }

    /// Token ids of `text` without any special tokens or truncation.
    public func tokenize(_ text: String) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int32] = []
        ids.reserveCapacity(scalars.count / 3 + 4)
        for piece in rawAddedTokens.split(scalars[...]) {
            switch piece {
            case let .token(id):
                ids.append(id)
            case let .text(raw):
                let normalizedText = normalizer.map { $0.apply(Array(raw)) } ?? Array(raw)
                // Whether the normalized text still begins at the input's first character: HF's
                // Metaspace `first` prepends only then (a dropped control character or stripped
                // space moves the start). Judged by normalizing that character alone.
                let keepsOrigin = raw.startIndex == 0 && !raw.isEmpty && (normalizer.map { !$0.apply([raw[raw.startIndex]]).isEmpty } ?? true)
                for inner in normalizedAddedTokens.split(normalizedText[...]) {
                    switch inner {
                    case let .token(id):
                        ids.append(id)
                    case let .text(chunk):
                        if chunk.isEmpty { continue }   // nothing to pre-tokenize (HF prepends nothing to "")
                        let word = Word(scalars: chunk, atOrigin: keepsOrigin && chunk.startIndex == 0)
                        let words = preTokenizer.map { $0.split([word]) } ?? [word]
                        for word in words where !word.scalars.isEmpty {
                            model.tokenize(word.scalars, into: &ids)
                        }
                    }
                }
            }
        }
        return ids
    }
}

/// How a pair too long for its limit is cut (HF `tokenizers` truncation strategies).
public enum PairTruncation: Sendable {
    /// Tokens come off the end of the longer sequence first (sentence-transformers' CrossEncoder).
    case longestFirst
    /// Tokens come off the end of the second sequence only.
    case onlySecond
}

/// The subword model of a tokenizer.
enum TokenModel: Sendable {
    case wordPiece(WordPiece)
    case bpe(BPE)
    case unigram(Unigram)

    var vocab: Vocabulary {
        switch self {
        case let .wordPiece(m): m.vocab
        case let .bpe(m): m.vocab
        case let .unigram(m): m.vocab
        }
    }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        switch self {
        case let .wordPiece(m): m.tokenize(word, into: &ids)
        case let .bpe(m): m.tokenize(word, into: &ids)
        case let .unigram(m): m.tokenize(word, into: &ids)
        }
    }
}
