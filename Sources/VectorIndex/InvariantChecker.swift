/// Structural checks of the graph: counts, degree bounds, no links to freed slots or to nodes
/// below the level, the entry point on the top level, every live node reachable.
extension HNSWGraph {
    func checkInvariants(scratch: inout SearchScratch, reachability: Bool = true) throws {
        func fail(_ m: String) -> VectorIndexError { VectorIndexError(.invariant, m) }
        var live = 0, deleted = 0, free = 0, top = -1
        for s in 0..<slotCount {
            switch states[s] {
            case .live: live += 1
            case .deleted: deleted += 1
            case .free: free += 1
            }
            if states[s] != .free { top = max(top, Int(levels[s])) }
        }
        guard live == liveCount, deleted == deletedCount else {
            throw fail("counts: \(live) live and \(deleted) deleted slots, recorded \(liveCount) and \(deletedCount)")
        }
        guard free == freeSlots.count, Set(freeSlots).count == free,
              freeSlots.allSatisfy({ Int($0) < slotCount && states[Int($0)] == .free }) else {
            throw fail("the free list does not match the free slots")
        }
        for s in 0..<UInt32(slotCount) where states[Int(s)] != .free {
            for level in 0...Int(levels[Int(s)]) {
                let list = links(s, level)
                let n = Int(list.pointee)
                guard n <= maxDegree(level) else { throw fail("slot \(s) has \(n) links on level \(level)") }
                var seen = Set<UInt32>()
                for i in 0..<n {
                    let t = list[1 + i]
                    guard Int(t) < slotCount else { throw fail("slot \(s) links to slot \(t) past the end") }
                    guard t != s else { throw fail("slot \(s) links to itself on level \(level)") }
                    guard states[Int(t)] != .free else { throw fail("slot \(s) links to freed slot \(t)") }
                    guard Int(levels[Int(t)]) >= level else {
                        throw fail("slot \(s) links on level \(level) to slot \(t) of level \(levels[Int(t)])")
                    }
                    guard seen.insert(t).inserted else { throw fail("slot \(s) links twice to \(t)") }
                }
            }
        }
        var counted = [UInt32](repeating: 0, count: slotCount)
        for s in 0..<UInt32(slotCount) where states[Int(s)] != .free {
            let list = links(s, 0)
            for i in 0..<Int(list.pointee) { counted[Int(list[1 + i])] += 1 }
        }
        guard counted == Array(indegree.prefix(slotCount)) else { throw fail("recorded in-degrees do not match the links") }
        if live + deleted == 0 {
            guard entry == Self.none else { throw fail("an empty graph has an entry point") }
            return
        }
        guard entry != Self.none, Int(entry) < slotCount, states[Int(entry)] != .free else {
            throw fail("no valid entry point")
        }
        guard Int(levels[Int(entry)]) == maxLevel, maxLevel == top else {
            throw fail("entry point on level \(levels[Int(entry)]), top level \(top), recorded \(maxLevel)")
        }
        guard reachability else { return }
        let lost = unreachableLiveNodes(scratch: &scratch)
        guard lost.isEmpty else { throw fail("\(lost.count) live nodes unreachable from the entry point") }
    }
}
