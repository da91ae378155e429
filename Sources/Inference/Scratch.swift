/// Reusable working memory of one inference worker: numbered f32 buffers that grow on demand
/// and are kept between batches, so steady-state inference allocates nothing.
public final class Scratch {
    private var buffers: [UnsafeMutablePointer<Float>?] = []
    private var capacities: [Int] = []

    public init() {}

    deinit {
        for b in buffers { b?.deallocate() }
    }

    /// Buffer number `slot`, with room for at least `count` floats (contents unspecified).
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while buffers.count <= slot {
            buffers.append(nil)
            capacities.append(0)
        }
        if capacities[slot] < count {
            buffers[slot]?.deallocate()
            let capacity = max(count, capacities[slot] * 3 / 2)
            buffers[slot] = .allocate(capacity: capacity)
            capacities[slot] = capacity
        }
        return buffers[slot]!
    }
}
