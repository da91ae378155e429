/// Keys (after rotary embedding) and values of a token prefix, per layer, so that inputs
/// starting with that prefix skip recomputing it.
public final class KVCache: @unchecked Sendable {   // filled by one prefill, then shared read-only
    /// Tokens cached.
    public private(set) var count = 0
    let layers: Int
    let width: Int            // key/value heads × head dim
    var keys: [[Float]]
    var values: [[Float]]

    init(layers: Int, width: Int) {
        self.layers = layers
        self.width = width
        keys = Array(repeating: [], count: layers)
        values = Array(repeating: [], count: layers)
    }

    /// Appends `rows` tokens of layer `layer` from strided key and value rows.
    func append(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows: Int, stride: Int) {
        for r in 0..<rows {
            keys[layer].append(contentsOf: UnsafeBufferPointer(start: k + r * stride, count: width))
            values[layer].append(contentsOf: UnsafeBufferPointer(start: v + r * stride, count: width))
        }
        if layer == layers - 1 { count += rows }
    }

    /// Bytes held.
    public var byteCount: Int { 2 * count * width * layers * MemoryLayout<Float>.size }
}
