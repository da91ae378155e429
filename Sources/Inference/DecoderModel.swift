import CKernels
import Foundation

/// A decoder-only transformer (Llama, Mistral, Qwen2, Qwen3 in transformers): RMSNorm,
/// rotary positions (rotate-half), grouped-query causal attention, SwiGLU MLP; Qwen2's q/k/v
/// biases and Qwen3's per-head q/k norms. Sequences of a batch are packed with no padding,
/// each with positions from 0 (or from the end of its cached prefix).
public final class DecoderModel: EmbeddingModel, Sendable {
    public let hiddenSize: Int
    public let maxPositions: Int
    public let vocabSize: Int
    public let architecture: String
    let layerCount: Int
    let heads: Int
    let kvHeads: Int
    let headDim: Int
    let intermediateSize: Int
    let eps: Float
    let invFreq: [Float]
    var qDim: Int { heads * headDim }
    var kvDim: Int { kvHeads * headDim }
    var qkvWidth: Int { qDim + 2 * kvDim }

    let embeddings: FloatTensor          // [vocab, hidden]
    let lmHead: FloatTensor?             // [vocab, hidden]; the embeddings when tied
    let finalNorm: FloatTensor
    let layers: [Layer]

    struct Layer {
        let inputNorm: FloatTensor
        let qkvWeight: LinearWeight      // [q | k | v rows, hidden]
        let qkvBias: FloatTensor?
        let qNorm: FloatTensor?          // Qwen3: [headDim]
        let kNorm: FloatTensor?
        let outWeight: LinearWeight      // [hidden, q rows]
        let postNorm: FloatTensor
        let gateUpWeight: LinearWeight   // [gate | up rows, hidden]
        let downWeight: LinearWeight     // [hidden, intermediate]
    }

    /// Whether refinement (which needs output logits) is possible.
    public var hasLanguageModelHead: Bool { lmHead != nil }

    public static let supportedArchitectures = ["MistralForCausalLM", "MistralModel", "LlamaForCausalLM", "LlamaModel",
                                                "Qwen2ForCausalLM", "Qwen2Model", "Qwen3ForCausalLM", "Qwen3Model"]
    static let supportedTypes = ["mistral", "llama", "qwen2", "qwen3"]

    /// Whether a `config.json` describes a decoder this class runs.
    public static func accepts(config: [String: Any]) -> Bool {
        let archs = config["architectures"] as? [String] ?? []
        if let a = archs.first { return supportedArchitectures.contains(a) }
        return supportedTypes.contains(config["model_type"] as? String ?? "")
    }

    /// Precision of the layers' matrix products (attention, norms and the LM head stay f32).
    public let precision: Precision

    public init(config: [String: Any], configPath: String, weights: WeightStore, precision: Precision = .f32) throws {
        self.precision = precision
        let c = ConfigReader(json: config, path: configPath)
        let type = c.string("model_type") ?? ""
        architecture = (config["architectures"] as? [String])?.first ?? type
        guard Self.supportedTypes.contains(type) else {
            throw InferenceError(.unsupportedArchitecture, "\(configPath): model_type '\(type)' is not a supported decoder (supported: \(Self.supportedTypes.joined(separator: ", ")))")
        }
        // RoPE settings: `rope_theta` + `rope_scaling` (transformers 4), or `rope_parameters` (5).
        let ropeParameters = config["rope_parameters"] as? [String: Any]
        for (key, value) in [("rope_scaling", config["rope_scaling"]), ("rope_parameters", ropeParameters as Any?)] {
            guard let value, !(value is NSNull) else { continue }
            let dict = value as? [String: Any]
            let kind = dict?["rope_type"] as? String ?? dict?["type"] as? String ?? "\(value)"
            if kind != "default" {
                throw InferenceError(.unsupportedArchitecture, "\(configPath): \(key) type '\(kind)' is not supported (only plain RoPE)")
            }
        }
        let act = c.string("hidden_act") ?? "silu"
        guard act == "silu" else {
            throw InferenceError(.unsupportedArchitecture, "\(configPath): hidden_act '\(act)' is not supported for decoders (supported: silu)")
        }
        let h = try c.int("hidden_size")
        hiddenSize = h
        layerCount = try c.int("num_hidden_layers")
        let heads = try c.int("num_attention_heads")
        self.heads = heads
        let kvHeads = try c.int("num_key_value_heads", default: heads)
        self.kvHeads = kvHeads
        let headDim = try c.int("head_dim", default: h / heads)
        self.headDim = headDim
        intermediateSize = try c.int("intermediate_size")
        maxPositions = try c.int("max_position_embeddings")
        vocabSize = try c.int("vocab_size")
        eps = Float(c.double("rms_norm_eps", default: 1e-6))
        guard heads % kvHeads == 0, headDim % 2 == 0 else {
            throw InferenceError(.badConfig, "\(configPath): num_attention_heads \(heads) must be a multiple of num_key_value_heads \(kvHeads), head_dim \(headDim) even")
        }
        let theta = ropeParameters.map { ConfigReader(json: $0, path: configPath).double("rope_theta", default: 10000) }
            ?? c.double("rope_theta", default: 10000)
        // As transformers computes it: 1 / theta^(2i/d) in f32 (theta^e from CKernels, the same
        // bits on every CPU).
        invFreq = (0..<(headDim / 2)).map { i in 1 / Float(sx_pow_f64(theta, Double(2 * i) / Double(headDim))) }

        let prefix = weights.contains("model.embed_tokens.weight") ? "model." : ""
        func t(_ name: String, _ shape: [Int]) throws -> FloatTensor { try weights.floats(prefix + name, shape: shape) }
        func optional(_ name: String, _ shape: [Int]) throws -> FloatTensor? {
            weights.contains(prefix + name) ? try t(name, shape) : nil
        }
        embeddings = try t("embed_tokens.weight", [vocabSize, h])
        finalNorm = try t("norm.weight", [h])
        let tied = config["tie_word_embeddings"] as? Bool ?? false
        if weights.contains("lm_head.weight") {
            lmHead = try weights.floats("lm_head.weight", shape: [vocabSize, h])
        } else {
            lmHead = tied ? embeddings : nil
        }

        let qDim = heads * headDim, kvDim = kvHeads * headDim, inter = try c.int("intermediate_size")
        let qkvBiasExpected = type == "qwen2" || (config["attention_bias"] as? Bool ?? false)
        var layers: [Layer] = []
        for i in 0..<layerCount {
            let p = "layers.\(i)."
            let q = try t(p + "self_attn.q_proj.weight", [qDim, h])
            let k = try t(p + "self_attn.k_proj.weight", [kvDim, h])
            let v = try t(p + "self_attn.v_proj.weight", [kvDim, h])
            var bias: FloatTensor? = nil
            if qkvBiasExpected || weights.contains(prefix + p + "self_attn.q_proj.bias") {
                bias = try Self.stack([try t(p + "self_attn.q_proj.bias", [qDim]), try t(p + "self_attn.k_proj.bias", [kvDim]),
                                       try t(p + "self_attn.v_proj.bias", [kvDim])], columns: 1)
            }
            let qNorm = type == "qwen3" ? try t(p + "self_attn.q_norm.weight", [headDim]) : try optional(p + "self_attn.q_norm.weight", [headDim])
            let kNorm = type == "qwen3" ? try t(p + "self_attn.k_norm.weight", [headDim]) : try optional(p + "self_attn.k_norm.weight", [headDim])
            layers.append(Layer(
                inputNorm: try t(p + "input_layernorm.weight", [h]),
                qkvWeight: LinearWeight(try Self.stack([q, k, v], columns: h), precision: precision.attentionInput(decoder: true)),
                qkvBias: bias, qNorm: qNorm, kNorm: kNorm,
                outWeight: LinearWeight(try t(p + "self_attn.o_proj.weight", [h, qDim]), precision: precision),
                postNorm: try t(p + "post_attention_layernorm.weight", [h]),
                gateUpWeight: LinearWeight(try Self.stack([try t(p + "mlp.gate_proj.weight", [inter, h]),
                                                           try t(p + "mlp.up_proj.weight", [inter, h])], columns: h), precision: precision),
                downWeight: LinearWeight(try t(p + "mlp.down_proj.weight", [h, inter]), precision: precision)))
        }
        self.layers = layers
    }

    /// Rows of several [n_i, columns] tensors stacked into one [Σn_i, columns].
    static func stack(_ parts: [FloatTensor], columns: Int) throws -> FloatTensor {
        let rows = parts.reduce(0) { $0 + $1.count / columns }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
        var at = out
        for p in parts {
            at.update(from: p.pointer, count: p.count)
            at += p.count
        }
        return FloatTensor(shape: columns == 1 ? [rows] : [rows, columns], owned: out)
    }

    /// A new, empty key/value cache for this model.
    public func makeCache() -> KVCache { KVCache(layers: layerCount, width: kvDim) }

    public func encode(_ sequences: [[Int32]], pooling: Pooling, scratch: Scratch, output: UnsafeMutablePointer<Float>, threads: Int) {
        encode(sequences, prefixes: Array(repeating: nil, count: sequences.count), pooling: pooling, scratch: scratch,
               output: output, threads: threads)
    }

    /// Like `encode`, where sequence i continues the first `prefixes[i].tokens` tokens of a cache.
    public func encode(_ sequences: [[Int32]], prefixes: [(cache: KVCache, tokens: Int)?], pooling: Pooling,
                       scratch: Scratch, output: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let total = sequences.reduce(0) { $0 + $1.count }
        guard total > 0 else { return }
        let x = scratch.buffer(0, count: total * hiddenSize)
        gatherEmbeddings(sequences, into: x)
        let states = forward(x, lengths: sequences.map(\.count), pasts: prefixes,
                             appendTo: Array(repeating: nil, count: sequences.count), scratch: scratch, threads: threads)
        var begin = 0
        for (i, seq) in sequences.enumerated() {
            pooling.pool(states + begin * hiddenSize, length: seq.count, dims: hiddenSize, into: output + i * hiddenSize)
            begin += seq.count
        }
    }

    /// The LM head's logits of `tokens` for one final hidden state (`hiddenSize` floats), summed
    /// in f64; nil when the model has neither `lm_head.weight` nor tied embeddings.
    public func logits(of hidden: UnsafePointer<Float>, tokens: [Int32]) -> [Double]? {
        guard let head = lmHead else { return nil }
        return tokens.map { t in
            let row = head.pointer + Int(t) * hiddenSize
            var sum = 0.0
            for c in 0..<hiddenSize { sum += Double(row[c]) * Double(hidden[c]) }
            return sum
        }
    }

    /// Runs `tokens` and returns a cache holding their keys and values.
    public func prefill(_ tokens: [Int32], scratch: Scratch, threads: Int = 1) -> KVCache {
        let cache = makeCache()
        guard !tokens.isEmpty else { return cache }
        let x = scratch.buffer(0, count: tokens.count * hiddenSize)
        gatherEmbeddings([tokens], into: x)
        _ = forward(x, lengths: [tokens.count], pasts: [nil], appendTo: [cache], scratch: scratch, threads: threads)
        return cache
    }

    /// GIRCSE soft-token refinement: after `tokens`, generate `steps` soft tokens (each the
    /// softmax of the last position's logits times the input-embedding matrix, fed back
    /// through the cache); returns the mean of the final hidden states at the soft tokens.
    public func refine(_ tokens: [Int32], steps: Int, scratch: Scratch, output: UnsafeMutablePointer<Float>) throws {
        guard let head = lmHead else {
            throw InferenceError(.unsupportedArchitecture, "\(architecture): refinement needs an LM head (lm_head.weight) or tied embeddings")
        }
        let h = hiddenSize
        let cache = makeCache()
        var last = scratch.buffer(10, count: h)
        if tokens.isEmpty {
            throw InferenceError(.badConfig, "refinement needs at least one input token")
        }
        let x = scratch.buffer(0, count: tokens.count * h)
        gatherEmbeddings([tokens], into: x)
        var states = forward(x, lengths: [tokens.count], pasts: [nil], appendTo: [cache], scratch: scratch)
        last.update(from: states + (tokens.count - 1) * h, count: h)
        let logits = scratch.buffer(11, count: vocabSize)
        let soft = scratch.buffer(12, count: h)
        output.initialize(repeating: 0, count: h)
        for _ in 0..<steps {
            sx_matvec_f32(last, head.pointer, h, vocabSize, h, logits)
            sx_softmax_rows(logits, 1, vocabSize, vocabSize, 1)
            sx_vecmat_f32(logits, embeddings.pointer, h, vocabSize, h, soft)
            let input = scratch.buffer(0, count: h)
            input.update(from: soft, count: h)
            states = forward(input, lengths: [1], pasts: [(cache, cache.count)], appendTo: [cache], scratch: scratch)
            for c in 0..<h { output[c] += states[c] }
            last = scratch.buffer(10, count: h)
            last.update(from: states, count: h)
        }
        sx_scale(output, h, 1 / Float(max(steps, 1)))
    }

    private func gatherEmbeddings(_ sequences: [[Int32]], into x: UnsafeMutablePointer<Float>) {
        var row = 0
        for seq in sequences {
            for id in seq {
                (x + row * hiddenSize).update(from: embeddings.pointer + Int(id) * hiddenSize, count: hiddenSize)
                row += 1
            }
        }
    }

    /// The transformer over packed inputs `x` (Σ lengths × hidden, consumed). Sequence i starts
    /// after `pasts[i]` (positions continue from there); its new keys and values are appended to
    /// `appendTo[i]` when given. Returns the final-norm hidden states of all new tokens.
    func forward(_ input: UnsafeMutablePointer<Float>, lengths: [Int], pasts: [(cache: KVCache, tokens: Int)?],
                 appendTo: [KVCache?], scratch: Scratch, threads: Int = 1) -> UnsafeMutablePointer<Float> {
        let h = hiddenSize, total = lengths.reduce(0, +), inter = intermediateSize
        let pastCounts = pasts.map { $0?.tokens ?? 0 }
        let longestContext = zip(lengths, pastCounts).map { $0 + $1 }.max() ?? 0
        let longest = lengths.max() ?? 0
        let block = 128
        let x = input
        let normed = scratch.buffer(1, count: total * h)
        let qkv = scratch.buffer(2, count: total * qkvWidth)
        let context = scratch.buffer(3, count: total * qDim)
        let mlp = scratch.buffer(4, count: total * 2 * inter)
        let scores = scratch.buffer(5, count: min(block, longest) * longestContext)
        let keysAll = scratch.buffer(6, count: longestContext * kvDim)
        let valuesAll = scratch.buffer(7, count: longestContext * kvDim)
        let half = headDim / 2
        let cosTable = scratch.buffer(8, count: total * half)
        let sinTable = scratch.buffer(9, count: total * half)
        let packedKeys = scratch.buffer(13, count: AttentionProducts.packedCount(rows: longestContext, width: headDim))
        let packedValues = scratch.buffer(14, count: AttentionProducts.packedCount(rows: headDim, width: longestContext))

        // Rotary tables for every new token's position.
        var row = 0
        for (len, past) in zip(lengths, pastCounts) {
            for p in 0..<len {
                for i in 0..<half {
                    let angle = Float(past + p) * invFreq[i]
                    var s = 0.0, c = 0.0
                    sx_sincos_f64(Double(angle), &s, &c)
                    cosTable[row * half + i] = Float(c)
                    sinTable[row * half + i] = Float(s)
                }
                row += 1
            }
        }

        let scale = 1 / Float(headDim).squareRoot()
        let group = heads / kvHeads
        for (li, layer) in layers.enumerated() {
            normed.update(from: x, count: total * h)
            sx_rms_norm(normed, total, h, layer.inputNorm.pointer, eps)
            if let bias = layer.qkvBias {
                sx_fill_rows(qkv, total, qkvWidth, qkvWidth, bias.pointer)
            }
            layer.qkvWeight.apply(lengths: lengths, x: normed, ldx: h, y: qkv, ldy: qkvWidth, accumulate: layer.qkvBias != nil, threads: threads)
            for t in 0..<total {
                let r = qkv + t * qkvWidth
                if let qn = layer.qNorm { sx_rms_norm(r, heads, headDim, qn.pointer, eps) }
                if let kn = layer.kNorm { sx_rms_norm(r + qDim, kvHeads, headDim, kn.pointer, eps) }
            }
            sx_rope(qkv, total, heads, headDim, qkvWidth, cosTable, sinTable)
            sx_rope(qkv + qDim, total, kvHeads, headDim, qkvWidth, cosTable, sinTable)

            var start = 0
            for (s, len) in lengths.enumerated() {
                let rows = qkv + start * qkvWidth
                appendTo[s]?.append(layer: li, keys: rows + qDim, values: rows + qDim + kvDim, rows: len, stride: qkvWidth)
                // Keys and values: the cached prefix (if any) followed by the new tokens.
                let past = pastCounts[s]
                var k: UnsafePointer<Float> = UnsafePointer(rows + qDim)
                var v: UnsafePointer<Float> = UnsafePointer(rows + qDim + kvDim)
                var ldkv = qkvWidth
                if past > 0, let cache = pasts[s]?.cache {
                    cache.keys[li].withUnsafeBufferPointer { keysAll.update(from: $0.baseAddress!, count: past * kvDim) }
                    cache.values[li].withUnsafeBufferPointer { valuesAll.update(from: $0.baseAddress!, count: past * kvDim) }
                    for r in 0..<len {
                        (keysAll + (past + r) * kvDim).update(from: rows + r * qkvWidth + qDim, count: kvDim)
                        (valuesAll + (past + r) * kvDim).update(from: rows + r * qkvWidth + qDim + kvDim, count: kvDim)
                    }
                    k = UnsafePointer(keysAll)
                    v = UnsafePointer(valuesAll)
                    ldkv = kvDim
                }
                // Per block of rows, each key/value head is packed once for the heads of its group.
                var r0 = 0
                while r0 < len {
                    let r1 = min(len, r0 + block)
                    let visible = past + r1   // keys any row of this block may see
                    for g in 0..<kvHeads {
                        AttentionProducts.packKeys(k + g * headDim, ldk: ldkv, n: visible, d: headDim, into: packedKeys)
                        AttentionProducts.packValues(v + g * headDim, ldv: ldkv, n: visible, d: headDim, into: packedValues)
                        for head in g * group..<(g + 1) * group {
                            let q = rows + r0 * qkvWidth + head * headDim
                            AttentionProducts.scores(m: r1 - r0, n: visible, d: headDim, q: q, ldq: qkvWidth,
                                                     keys: packedKeys, out: scores, ldo: visible)
                            sx_softmax_causal(scores, r1 - r0, visible, visible, scale, past + r0 + 1)
                            AttentionProducts.context(m: r1 - r0, n: visible, d: headDim, p: scores, ldp: visible,
                                                      values: packedValues, out: context + (start + r0) * qDim + head * headDim,
                                                      ldo: qDim)
                        }
                    }
                    r0 = r1
                }
                start += len
            }
            // x += context · Woᵀ
            layer.outWeight.apply(lengths: lengths, x: context, ldx: qDim, y: x, ldy: h, accumulate: true, threads: threads)
            normed.update(from: x, count: total * h)
            sx_rms_norm(normed, total, h, layer.postNorm.pointer, eps)
            layer.gateUpWeight.apply(lengths: lengths, x: normed, ldx: h, y: mlp, ldy: 2 * inter, accumulate: false, threads: threads)
            sx_swiglu(mlp, total, inter)
            layer.downWeight.apply(lengths: lengths, x: mlp, ldx: 2 * inter, y: x, ldy: h, accumulate: true, threads: threads)
        }
        sx_rms_norm(x, total, h, finalNorm.pointer, eps)
        return x
    }
}
