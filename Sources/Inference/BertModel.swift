import CKernels
import Foundation

/// A BERT encoder (`BertModel` in transformers): absolute positions, post-layer-norm blocks,
/// exact-erf GELU. Sequences of a batch are packed end to end with no padding; attention and
/// the matrix products run per sequence, so a batch gives bit for bit what each sequence alone would.
public final class BertModel: EmbeddingModel, Sendable {
    public let hiddenSize: Int
    public let maxPositions: Int
    public let vocabSize: Int
    let heads: Int
    let intermediateSize: Int
    let eps: Float

    let wordEmbeddings: FloatTensor
    let positionEmbeddings: FloatTensor
    let tokenTypeEmbeddings: FloatTensor
    let embeddingNorm: (gamma: FloatTensor, beta: FloatTensor)
    let layers: [Layer]

    struct Layer {
        let qkvWeight: LinearWeight      // [3H, H]: query, key, value rows stacked
        let qkvBias: FloatTensor         // [3H]
        let attentionOut: (weight: LinearWeight, bias: FloatTensor)
        let attentionNorm: (gamma: FloatTensor, beta: FloatTensor)
        let intermediate: (weight: LinearWeight, bias: FloatTensor)
        let output: (weight: LinearWeight, bias: FloatTensor)
        let outputNorm: (gamma: FloatTensor, beta: FloatTensor)
    }

    /// Builds the model from a parsed `config.json` and the folder's weights.
    /// Precision of the linear layers (attention products stay f32).
    public let precision: Precision

    public init(config: [String: Any], configPath: String, weights: WeightStore, precision: Precision = .f32) throws {
        self.precision = precision
        let c = ConfigReader(json: config, path: configPath)
        let h = try c.int("hidden_size")
        hiddenSize = h
        heads = try c.int("num_attention_heads")
        intermediateSize = try c.int("intermediate_size")
        maxPositions = try c.int("max_position_embeddings")
        eps = Float(c.double("layer_norm_eps", default: 1e-12))
        let layerCount = try c.int("num_hidden_layers")
        let vocab = try c.int("vocab_size")
        vocabSize = vocab
        let typeVocab = try c.int("type_vocab_size", default: 2)
        guard h % heads == 0 else {
            throw InferenceError(.badConfig, "\(configPath): hidden_size \(h) is not divisible by num_attention_heads \(heads)")
        }
        let act = c.string("hidden_act") ?? "gelu"
        guard act == "gelu" else {
            throw InferenceError(.unsupportedArchitecture, "\(configPath): hidden_act '\(act)' is not supported for BERT (supported: gelu)")
        }
        if let pos = c.string("position_embedding_type"), pos != "absolute" {
            throw InferenceError(.unsupportedArchitecture, "\(configPath): position_embedding_type '\(pos)' is not supported (supported: absolute)")
        }

        // Checkpoints saved from task heads prefix the encoder's names with "bert.".
        let prefix = weights.contains("embeddings.word_embeddings.weight") ? ""
            : weights.contains("bert.embeddings.word_embeddings.weight") ? "bert." : ""
        func t(_ name: String, _ shape: [Int]) throws -> FloatTensor {
            try weights.floats(prefix + name, shape: shape)
        }
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [vocab, h])
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [maxPositions, h])
        tokenTypeEmbeddings = try t("embeddings.token_type_embeddings.weight", [typeVocab, h])
        embeddingNorm = (try t("embeddings.LayerNorm.weight", [h]), try t("embeddings.LayerNorm.bias", [h]))

        var layers: [Layer] = []
        for i in 0..<layerCount {
            let p = "encoder.layer.\(i)."
            let parts = try ["query", "key", "value"].map {
                (try t(p + "attention.self.\($0).weight", [h, h]), try t(p + "attention.self.\($0).bias", [h]))
            }
            let qkvW = UnsafeMutablePointer<Float>.allocate(capacity: 3 * h * h)
            let qkvB = UnsafeMutablePointer<Float>.allocate(capacity: 3 * h)
            for (j, part) in parts.enumerated() {
                (qkvW + j * h * h).update(from: part.0.pointer, count: h * h)
                (qkvB + j * h).update(from: part.1.pointer, count: h)
            }
            let inter = intermediateSize
            func linear(_ name: String, _ shape: [Int]) throws -> LinearWeight { LinearWeight(try t(name, shape), precision: precision) }
            layers.append(Layer(
                qkvWeight: LinearWeight(FloatTensor(shape: [3 * h, h], owned: qkvW), precision: precision.attentionInput),
                qkvBias: FloatTensor(shape: [3 * h], owned: qkvB),
                attentionOut: (try linear(p + "attention.output.dense.weight", [h, h]), try t(p + "attention.output.dense.bias", [h])),
                attentionNorm: (try t(p + "attention.output.LayerNorm.weight", [h]), try t(p + "attention.output.LayerNorm.bias", [h])),
                intermediate: (try linear(p + "intermediate.dense.weight", [inter, h]), try t(p + "intermediate.dense.bias", [inter])),
                output: (try linear(p + "output.dense.weight", [h, inter]), try t(p + "output.dense.bias", [h])),
                outputNorm: (try t(p + "output.LayerNorm.weight", [h]), try t(p + "output.LayerNorm.bias", [h]))))
        }
        self.layers = layers
    }

    public func encode(_ sequences: [[Int32]], pooling: Pooling, scratch: Scratch, output: UnsafeMutablePointer<Float>, threads: Int) {
        let h = hiddenSize, inter = intermediateSize
        let total = sequences.reduce(0) { $0 + $1.count }
        let lengths = sequences.map(\.count)
        let longest = lengths.max() ?? 0
        precondition(longest <= maxPositions, "sequence longer than max_position_embeddings")
        guard total > 0 else { return }

        var x = scratch.buffer(0, count: total * h)
        var y = scratch.buffer(1, count: total * h)
        let qkv = scratch.buffer(2, count: total * 3 * h)
        let context = scratch.buffer(3, count: total * h)
        let hidden = scratch.buffer(4, count: total * inter)
        let scores = scratch.buffer(5, count: longest * longest)

        // Embeddings: word + position + token type 0, then layer norm.
        var row = 0
        for seq in sequences {
            for (pos, id) in seq.enumerated() {
                let dst = x + (row + pos) * h
                let word = wordEmbeddings.pointer + Int(id) * h
                let position = positionEmbeddings.pointer + pos * h
                let type = tokenTypeEmbeddings.pointer
                for c in 0..<h { dst[c] = word[c] + position[c] + type[c] }
            }
            row += seq.count
        }
        sx_add_layer_norm(x, nil, total, h, embeddingNorm.gamma.pointer, embeddingNorm.beta.pointer, eps)

        let headDim = h / heads
        let scale = 1 / Float(headDim).squareRoot()
        for layer in layers {
            // Q, K, V in one product: qkv[t] = [q | k | v]. Each product starts from its bias (beta = 1).
            sx_fill_rows(qkv, total, 3 * h, 3 * h, layer.qkvBias.pointer)
            layer.qkvWeight.apply(lengths: lengths, x: x, ldx: h, y: qkv, ldy: 3 * h, accumulate: true, threads: threads)
            var start = 0
            for seq in sequences {
                let n = seq.count
                for head in 0..<heads {
                    let q = qkv + start * 3 * h + head * headDim
                    BLAS.matmulTransposedB(m: n, n: n, k: headDim, x: q, ldx: 3 * h, w: q + h, ldw: 3 * h, y: scores, ldy: n)
                    sx_softmax_rows(scores, n, n, n, scale)
                    BLAS.matmul(m: n, n: headDim, k: n, a: scores, lda: n, b: q + 2 * h, ldb: 3 * h,
                                y: context + start * h + head * headDim, ldy: h)
                }
                start += n
            }
            sx_fill_rows(y, total, h, h, layer.attentionOut.bias.pointer)
            layer.attentionOut.weight.apply(lengths: lengths, x: context, ldx: h, y: y, ldy: h, accumulate: true, threads: threads)
            sx_add_layer_norm(y, x, total, h, layer.attentionNorm.gamma.pointer, layer.attentionNorm.beta.pointer, eps)
            swap(&x, &y)

            sx_fill_rows(hidden, total, inter, inter, layer.intermediate.bias.pointer)
            layer.intermediate.weight.apply(lengths: lengths, x: x, ldx: h, y: hidden, ldy: inter, accumulate: true, threads: threads)
            for r in 0..<total { sx_gelu_erf(hidden + r * inter, inter) }   // per row: the same vector/tail split for every row
            sx_fill_rows(y, total, h, h, layer.output.bias.pointer)
            layer.output.weight.apply(lengths: lengths, x: hidden, ldx: inter, y: y, ldy: h, accumulate: true, threads: threads)
            sx_add_layer_norm(y, x, total, h, layer.outputNorm.gamma.pointer, layer.outputNorm.beta.pointer, eps)
            swap(&x, &y)
        }

        var begin = 0
        for (i, seq) in sequences.enumerated() {
            pooling.pool(x + begin * h, length: seq.count, dims: h, into: output + i * h)
            begin += seq.count
        }
    }
}
