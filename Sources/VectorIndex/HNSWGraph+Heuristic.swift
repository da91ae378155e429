internal import CKernels

/// The neighbour-selection heuristic, used both when a node is linked and when a neighbour
/// list overflows.
extension HNSWGraph {
    /// Sorts candidates nearest first. Exact ties are broken by a hash of (slot, owner) rather
    /// than by slot order, so that among identical vectors each owner prefers different ones.
    func sortForSelection(_ c: inout [Scored], owner: UInt32) {
        c.sort { a, b in
            if a.distance != b.distance { return a.distance < b.distance }
            return Self.tieKey(a.slot, owner) < Self.tieKey(b.slot, owner)
        }
    }

    @inline(__always)
    static func tieKey(_ slot: UInt32, _ owner: UInt32) -> UInt64 {
        var z = (UInt64(slot) << 32 | UInt64(owner)) &* 0x9E37_79B9_7F4A_7C15
        z ^= z >> 29
        return z &* 0xBF58_476D_1CE4_E5B9
    }

    /// Picks up to `max` neighbours for `owner` from `sorted` (nearest first, distances to the
    /// owner). A candidate is kept only if it is strictly closer to the owner than to every
    /// neighbour kept so far. Exact duplicates of the owner (byte-identical codes) neither veto
    /// nor get vetoed by each other, but at most `max / 2` of them are kept, so a group of
    /// identical vectors links to itself and still reaches out; a duplicate of a kept
    /// neighbour is dropped.
    func selectNeighbours(_ sorted: [Scored], owner: UInt32, max: Int, into kept: inout [UInt32],
                          scratch: inout SearchScratch) {
        kept.removeAll(keepingCapacity: true)
        var keptDistinct = 0         // kept neighbours that are not duplicates of the owner
        var duplicates = 0
        let duplicateLimit = Swift.max(1, max / 2)
        var keptIsDuplicate = [Bool]()
        keptIsDuplicate.reserveCapacity(max)
        for c in sorted {
            if kept.count >= max { break }
            if sameCode(c.slot, owner) {
                if duplicates < duplicateLimit {
                    duplicates += 1
                    kept.append(c.slot)
                    keptIsDuplicate.append(true)
                }
                continue
            }
            var good = true
            if keptDistinct > 0 {
                let pc = prepareSlot(c.slot, into: &scratch.candidate)
                for (i, r) in kept.enumerated() where !keptIsDuplicate[i] {
                    if sameCode(c.slot, r) || distance(pc, in: scratch.candidate, r) < c.distance {
                        good = false
                        break
                    }
                }
            }
            if good {
                kept.append(c.slot)
                keptIsDuplicate.append(false)
                keptDistinct += 1
            }
        }
    }

    /// Adds the link n → target on `level`; when n's list is full, its neighbours and the target
    /// are re-selected by the heuristic, seen from n.
    func addLink(from n: UInt32, to target: UInt32, level: Int, scratch: inout SearchScratch) {
        let list = links(n, level)
        let count = Int(list.pointee)
        for i in 0..<count where list[1 + i] == target { return }
        let cap = maxDegree(level)
        if count < cap {
            list[1 + count] = target
            list.pointee = UInt32(count + 1)
            if level == 0 { indegree[Int(target)] += 1 }
            return
        }
        let po = prepareSlot(n, into: &scratch.owner)
        var candidates: [Scored] = []
        candidates.reserveCapacity(count + 1)
        for i in 0..<count {
            let s = list[1 + i]
            candidates.append(Scored(distance: distance(po, in: scratch.owner, s), slot: s))
        }
        candidates.append(Scored(distance: distance(po, in: scratch.owner, target), slot: target))
        sortForSelection(&candidates, owner: n)
        var kept: [UInt32] = []
        selectNeighbours(candidates, owner: n, max: cap, into: &kept, scratch: &scratch)
        if level == 0 { keepSoleLinks(of: n, candidates: candidates, kept: &kept) }
        setLinks(n, level: level, kept)
    }

    /// A dropped level-0 neighbour whose only in-link is n's would be cut off: it takes the
    /// place of the farthest kept neighbour that has other in-links.
    private func keepSoleLinks(of n: UInt32, candidates: [Scored], kept: inout [UInt32]) {
        let list = links(n, 0)
        let old = UnsafeBufferPointer(start: list + 1, count: Int(list.pointee))
        for c in candidates where old.contains(c.slot) && indegree[Int(c.slot)] <= 1 && c.slot != entry {
            if kept.contains(c.slot) { continue }
            // The farthest kept neighbour still linked from elsewhere once n drops it.
            guard let i = kept.lastIndex(where: { k in
                old.contains(k) ? indegree[Int(k)] >= 2 : indegree[Int(k)] >= 1
            }) else { return }
            kept[i] = c.slot
        }
    }

    /// Links v → u even when v's level-0 list is full, replacing v's farthest neighbour that
    /// keeps another in-link (or the farthest of all when none does).
    func forceLink(from v: UInt32, to u: UInt32, scratch: inout SearchScratch) {
        let list = links(v, 0)
        let count = Int(list.pointee)
        for i in 0..<count where list[1 + i] == u { return }
        if count < m0 {
            list[1 + count] = u
            list.pointee = UInt32(count + 1)
            indegree[Int(u)] += 1
            return
        }
        let pv = prepareSlot(v, into: &scratch.owner)
        var worst = -1, worstAny = 0
        var worstDistance = -Float.infinity, worstAnyDistance = -Float.infinity
        for i in 0..<count {
            let t = list[1 + i]
            let d = distance(pv, in: scratch.owner, t)
            if d > worstAnyDistance { worstAnyDistance = d; worstAny = i }
            if indegree[Int(t)] >= 2 && d > worstDistance { worstDistance = d; worst = i }
        }
        let i = worst >= 0 ? worst : worstAny
        indegree[Int(list[1 + i])] -= 1
        list[1 + i] = u
        indegree[Int(u)] += 1
    }

    /// Replaces the neighbour list of `slot` on `level`.
    func setLinks(_ slot: UInt32, level: Int, _ neighbours: [UInt32]) {
        let list = links(slot, level)
        let n = Swift.min(neighbours.count, maxDegree(level))
        if level == 0 {
            for i in 0..<Int(list.pointee) { indegree[Int(list[1 + i])] -= 1 }
            for i in 0..<n { indegree[Int(neighbours[i])] += 1 }
        }
        list.pointee = UInt32(n)
        for i in 0..<n { list[1 + i] = neighbours[i] }
    }
}
