import CKernels
import Foundation

/// A BERT encoder (`BertModel` in transformers; also `XLMRobertaModel`/`RobertaModel`, which
/// differ only in their position ids and names): absolute positions, post-layer-norm blocks,
/// exact-erf GELU. Sequences of a batch are packed end to end with no padding; attention and
/// the matrix products run per sequence, so a batch gives bit for bit what each sequence alone would.
public final class BertModel: EmbeddingModel, Sendable {
    public let hiddenSize: Int
    /// The longest sequence (the position table, less the rows RoBERTa reserves).
    public let maxPositions: Int
    public let vocabSize: Int
    /// The position id of a sequence's first token: 0 for BERT, padding index + 1 for RoBERTa.
    let positionOffset: Int
    /// RoBERTa's padding token: it takes the padding position and does not advance the count.
    let paddingToken: Int32?
    /// The classification head of a `…ForSequenceClassification` checkpoint, if it has one.
    public let classifier: ClassifierHead?
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

    /// Precision of the linear layers (attention products stay f32).
    public let precision: Precision

    /// Builds the model from a parsed `config.json` and the folder's weights.
    public init(config: [String: Any], configPath: String, weights: WeightStore, precision: Precision = .f32) throws {
        self.precision = precision
        let c = ConfigReader(json: config, path: configPath)
        let h = try c.int("hidden_size")
        hiddenSize = h
        heads = try c.int("num_attention_heads")
        intermediateSize = try c.int("intermediate_size")
        let positions = try c.int("max_position_embeddings")
        // RoBERTa-family models number positions from padding_idx + 1 (XLM-R: 2).
        let modelType = c.string("model_type") ?? ""
        let roberta = ["xlm-roberta", "roberta"].contains(modelType)
        positionOffset = roberta ? (config["pad_token_id"] as? Int ?? 1) + 1 : 0
        paddingToken = roberta ? Int32(config["pad_token_id"] as? Int ?? 1) : nil
        guard positions > positionOffset else {
            throw InferenceError(.badConfig, "\(configPath): max_position_embeddings \(positions) leaves no positions after the offset \(positionOffset)")
        }
        maxPositions = positions - positionOffset
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

        // Checkpoints saved from task heads prefix the encoder's names with "bert." or "roberta.".
        let prefix = ["", "bert.", "roberta."].first { weights.contains($0 + "embeddings.word_embeddings.weight") } ?? ""
        func t(_ name: String, _ shape: [Int]) throws -> FloatTensor {
            try weights.floats(prefix + name, shape: shape)
        }
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [vocab, h])
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [positions, h])
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
                qkvWeight: LinearWeight(FloatTensor(shape: [3 * h, h], owned: qkvW), precision: precision.attentionInput(decoder: false)),
                qkvBias: FloatTensor(shape: [3 * h], owned: qkvB),
                attentionOut: (try linear(p + "attention.output.dense.weight", [h, h]), try t(p + "attention.output.dense.bias", [h])),
                attentionNorm: (try t(p + "attention.output.LayerNorm.weight", [h]), try t(p + "attention.output.LayerNorm.bias", [h])),
                intermediate: (try linear(p + "intermediate.dense.weight", [inter, h]), try t(p + "intermediate.dense.bias", [inter])),
                output: (try linear(p + "output.dense.weight", [h, inter]), try t(p + "output.dense.bias", [h])),
                outputNorm: (try t(p + "output.LayerNorm.weight", [h]), try t(p + "output.LayerNorm.bias", [h]))))
        }
        self.layers = layers
        classifier = try ClassifierHead(config: config, configPath: configPath, weights: weights, hidden: h, encoderPrefix: prefix)
    }

    public func encode(_ sequences: [[Int32]], pooling: Pooling, scratch: Scratch, output: UnsafeMutablePointer<Float>, threads: Int) {
        forward(sequences, typeIds: nil, scratch: scratch, threads: threads) { x in
            var begin = 0
            for (i, seq) in sequences.enumerated() {
                pooling.pool(x + begin * hiddenSize, length: seq.count, dims: hiddenSize, into: output + i * hiddenSize)
                begin += seq.count
            }
        }
    }

    /// The classifier's logits for each sequence (`…ForSequenceClassification`): `labels` floats
    /// per sequence, from the first token's final hidden state. `typeIds` as the tokenizer's pair
    /// template gives them (BERT: 0 for the query, 1 for the passage).
    public func classify(_ sequences: [[Int32]], typeIds: [[Int32]], scratch: Scratch, threads: Int) -> [[Float]] {
        guard let classifier else { preconditionFailure("classify on a model without a classification head") }
        var logits: [[Float]] = []
        forward(sequences, typeIds: typeIds, scratch: scratch, threads: threads) { x in
            var begin = 0
            for seq in sequences {
                logits.append(classifier.apply(x + begin * hiddenSize))
                begin += seq.count
            }
        }
        return logits
    }

    /// Runs the encoder and hands the final hidden states (packed rows) to `finish`.
    private func forward(_ sequences: [[Int32]], typeIds: [[Int32]]?, scratch: Scratch, threads: Int,
                         finish: (UnsafeMutablePointer<Float>) -> Void) {
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
        let headDim = h / heads
        let packedKeys = scratch.buffer(6, count: AttentionProducts.packedCount(rows: longest, width: headDim))
        let packedValues = scratch.buffer(7, count: AttentionProducts.packedCount(rows: headDim, width: longest))

        // Embeddings: word + position + token type (0 unless given), then layer norm.
        var row = 0
        let typeRows = tokenTypeEmbeddings.shape[0]
        for (s, seq) in sequences.enumerated() {
            var counted = 0   // RoBERTa: tokens other than padding so far
            for (pos, id) in seq.enumerated() {
                let dst = x + (row + pos) * h
                let word = wordEmbeddings.pointer + Int(id) * h
                var positionId = pos + positionOffset
                if let pad = paddingToken {
                    if id == pad { positionId = Int(pad) } else { counted += 1; positionId = Int(pad) + counted }
                }
                let position = positionEmbeddings.pointer + positionId * h
                let typeId = min(Int(typeIds?[s][pos] ?? 0), typeRows - 1)
                let type = tokenTypeEmbeddings.pointer + typeId * h
                for c in 0..<h { dst[c] = word[c] + position[c] + type[c] }
            }
            row += seq.count
        }
        sx_add_layer_norm(x, nil, total, h, embeddingNorm.gamma.pointer, embeddingNorm.beta.pointer, eps)

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
                    AttentionProducts.packKeys(q + h, ldk: 3 * h, n: n, d: headDim, into: packedKeys)
                    AttentionProducts.scores(m: n, n: n, d: headDim, q: q, ldq: 3 * h, keys: packedKeys, out: scores, ldo: n)
                    sx_softmax_rows(scores, n, n, n, scale)
                    AttentionProducts.packValues(q + 2 * h, ldv: 3 * h, n: n, d: headDim, into: packedValues)
                    AttentionProducts.context(m: n, n: n, d: headDim, p: scores, ldp: n, values: packedValues,
                                              out: context + start * h + head * headDim, ldo: h)
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

        finish(x)
    }
}

/// The classification head of a BERT-family `…ForSequenceClassification` model: a dense layer
/// with tanh on the first token's hidden state (BERT's pooler, or XLM-R's `classifier.dense`),
/// then a linear layer to the labels (`classifier` / `classifier.out_proj`).
public struct ClassifierHead: Sendable {
    /// Number of labels (logits per sequence).
    public let labels: Int
    /// `config.json`'s `id2label` names in label order (empty when it has none).
    public let labelNames: [String]
    let dense: (weight: FloatTensor, bias: FloatTensor)
    let out: (weight: FloatTensor, bias: FloatTensor)

    /// The head in `weights`, or nil when the checkpoint has none (a plain encoder).
    init?(config: [String: Any], configPath: String, weights: WeightStore, hidden h: Int, encoderPrefix: String) throws {
        let names: (dense: String, out: String)
        if weights.contains("classifier.out_proj.weight") {
            names = ("classifier.dense", "classifier.out_proj")
        } else if weights.contains("classifier.weight") {
            names = (encoderPrefix + "pooler.dense", "classifier")
        } else {
            return nil
        }
        guard let outShape = weights.shape(of: names.out + ".weight"), outShape.count == 2, outShape[1] == h, outShape[0] > 0 else {
            throw InferenceError(.badConfig, "\(configPath): \(names.out).weight is not a [labels, \(h)] matrix")
        }
        labels = outShape[0]
        dense = (try weights.floats(names.dense + ".weight", shape: [h, h]), try weights.floats(names.dense + ".bias", shape: [h]))
        out = (try weights.floats(names.out + ".weight", shape: [labels, h]), try weights.floats(names.out + ".bias", shape: [labels]))
        let id2label = config["id2label"] as? [String: Any] ?? [:]
        labelNames = (0..<labels).compactMap { id2label[String($0)] as? String }
    }

    /// The logits of one sequence from its first token's hidden state (in f64 sums; tiny work;
    /// tanh from CKernels, which gives the same bits on every CPU).
    func apply(_ first: UnsafePointer<Float>) -> [Float] {
        let h = dense.bias.shape[0]
        var pooled = [Float](repeating: 0, count: h)
        for j in 0..<h {
            var sum = Double(dense.bias.pointer[j])
            let w = dense.weight.pointer + j * h
            for c in 0..<h { sum += Double(w[c]) * Double(first[c]) }
            pooled[j] = Float(sx_tanh_f64(sum))
        }
        return (0..<labels).map { l in
            var sum = Double(out.bias.pointer[l])
            let w = out.weight.pointer + l * h
            for c in 0..<h { sum += Double(w[c]) * Double(pooled[c]) }
            return Float(sum)
        }
    }
}
