/// A transformer that turns token sequences into one pooled vector each.
public protocol EmbeddingModel: AnyObject, Sendable {
    /// Length of the pooled vectors.
    var hiddenSize: Int { get }
    /// The longest sequence the model accepts (its position table).
    var maxPositions: Int { get }
    /// Number of rows of the token embedding table; token ids must be below it.
    var vocabSize: Int { get }
    /// Runs `sequences` (each non-empty, at most `maxPositions` long) and writes one pooled,
    /// unnormalized vector per sequence to `output` (`sequences.count × hiddenSize` floats).
    /// `scratch` is the caller's working memory; one scratch per concurrent caller.
    /// `threads` > 1 splits the large matrix products of this one call over that many threads.
    func encode(_ sequences: [[Int32]], pooling: Pooling, scratch: Scratch, output: UnsafeMutablePointer<Float>, threads: Int)
}

extension EmbeddingModel {
    public func encode(_ sequences: [[Int32]], pooling: Pooling, scratch: Scratch, output: UnsafeMutablePointer<Float>) {
        encode(sequences, pooling: pooling, scratch: scratch, output: output, threads: 1)
    }
}

/// Reads a typed value from a `config.json` dictionary, with a clear error.
struct ConfigReader {
    let json: [String: Any]
    let path: String

    func int(_ key: String) throws -> Int {
        guard let v = json[key] as? Int, v > 0 else {
            throw InferenceError(.badConfig, "\(path): '\(key)' is missing or not a positive integer")
        }
        return v
    }

    func int(_ key: String, default value: Int) throws -> Int {
        json[key] == nil || !(json[key] is Int) && !(json[key] is Double) ? value : try int(key)
    }

    func double(_ key: String, default value: Double) -> Double {
        (json[key] as? Double) ?? (json[key] as? Int).map(Double.init) ?? value
    }

    func string(_ key: String) -> String? { json[key] as? String }
}

