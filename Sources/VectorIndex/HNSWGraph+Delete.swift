/// Tombstones, repair of the links around them, and slot reuse.
extension HNSWGraph {
    /// Marks a live slot deleted: it is still walked through by searches but never returned.
    func markDeleted(_ slot: UInt32) {
        guard states[Int(slot)] == .live else { return }
        states[Int(slot)] = .deleted
        liveCount -= 1
        deletedCount += 1
    }

    /// Reconnects every neighbour list that points at a tombstone, moves the entry point off
    /// tombstones, frees their slots for reuse, and links any live node left unreachable.
    func repair(scratch: inout SearchScratch) {
        defer { connectUnreachable(scratch: &scratch) }
        guard deletedCount > 0 else { return }
        var candidates: [Scored] = []
        var kept: [UInt32] = []
        for n in 0..<UInt32(slotCount) where states[Int(n)] == .live {
            for level in 0...Int(levels[Int(n)]) {
                let list = links(n, level)
                let count = Int(list.pointee)
                var touched = false
                for i in 0..<count where states[Int(list[1 + i])] != .live { touched = true; break }
                guard touched else { continue }
                relink(n, level: level, candidates: &candidates, kept: &kept, scratch: &scratch)
            }
        }
        // A new entry point: a live node on the highest level.
        if entry == Self.none || states[Int(entry)] != .live {
            entry = Self.none
            maxLevel = -1
            for s in 0..<slotCount where states[s] == .live && Int(levels[s]) > maxLevel {
                maxLevel = Int(levels[s])
                entry = UInt32(s)
            }
        }
        for s in 0..<slotCount where states[s] == .deleted {
            states[s] = .free
            setLinks(UInt32(s), level: 0, [])
            upper[s]?.deallocate()
            upper[s] = nil
            levels[s] = 0
            freeSlots.append(UInt32(s))
        }
        deletedCount = 0
        freeSlots.sort(by: >)   // reuse low slots first
    }

    /// New neighbours for `n` on `level`: its live neighbours, the live neighbours of its dead
    /// neighbours, and (when those are few) the result of a search for n itself.
    private func relink(_ n: UInt32, level: Int, candidates: inout [Scored], kept: inout [UInt32],
                        scratch: inout SearchScratch) {
        let po = prepareSlot(n, into: &scratch.owner)
        candidates.removeAll(keepingCapacity: true)
        scratch.resetVisited(slots: slotCount)
        _ = scratch.visit(n)
        let list = links(n, level)
        for i in 0..<Int(list.pointee) {
            let s = list[1 + i]
            if states[Int(s)] == .live {
                if scratch.visit(s) { candidates.append(Scored(distance: distance(po, in: scratch.owner, s), slot: s)) }
            } else {
                let hop = links(s, level)
                for j in 0..<Int(hop.pointee) {
                    let t = hop[1 + j]
                    if states[Int(t)] == .live && scratch.visit(t) {
                        candidates.append(Scored(distance: distance(po, in: scratch.owner, t), slot: t))
                    }
                }
            }
        }
        if candidates.count < m {
            // Prepare n as the query and search its level from the entry point.
            let q = prepareSlot(n, into: &scratch.query)
            var ep = entry
            var d = distance(q, ep, scratch: &scratch)
            if maxLevel > level {
                for lc in stride(from: maxLevel, to: level, by: -1) {
                    greedy(q, from: &ep, distance: &d, level: lc, scratch: &scratch)
                }
            }
            var start = Scored(distance: d, slot: ep)
            withUnsafePointer(to: &start) { p in
                searchLayer(q, entries: UnsafeBufferPointer(start: p, count: 1), ef: max(efConstruction / 2, m0),
                            level: level, exclude: n, filter: nil, scratch: &scratch)
            }
            let seen = Set(candidates.map(\.slot))
            for r in scratch.results.items where !seen.contains(r.slot) { candidates.append(r) }
        }
        sortForSelection(&candidates, owner: n)
        selectNeighbours(candidates, owner: n, max: maxDegree(level), into: &kept, scratch: &scratch)
        // The heuristic alone would thin the list (its reverse links are gone): top it up with
        // the nearest other candidates to the degree it had.
        let degree = min(Int(list.pointee), maxDegree(level))
        if kept.count < degree {
            for c in candidates where kept.count < degree && !kept.contains(c.slot) { kept.append(c.slot) }
        }
        setLinks(n, level: level, kept)
    }

    /// Live nodes that no walk from the entry point reaches, following links on every level
    /// (tombstones walked through).
    func unreachableLiveNodes(scratch: inout SearchScratch) -> [UInt32] {
        guard entry != Self.none else { return [] }
        scratch.resetVisited(slots: slotCount)
        var stack: [UInt32] = [entry]
        _ = scratch.visit(entry)
        var reached = 0
        while let s = stack.popLast() {
            if states[Int(s)] == .live { reached += 1 }
            for level in 0...Int(levels[Int(s)]) {
                let list = links(s, level)
                for i in 0..<Int(list.pointee) where scratch.visit(list[1 + i]) { stack.append(list[1 + i]) }
            }
        }
        guard reached < liveCount else { return [] }
        var out: [UInt32] = []
        for s in 0..<UInt32(slotCount) where states[Int(s)] == .live && scratch.visit(s) { out.append(s) }
        return out
    }

    /// Links each unreachable live node from its nearest reachable node (taking the place of
    /// that node's farthest link when its list is full), until every live node is reachable.
    func connectUnreachable(scratch: inout SearchScratch) {
        for _ in 0..<8 {
            let lost = unreachableLiveNodes(scratch: &scratch)
            if lost.isEmpty { return }
            for u in lost {
                let q = prepareSlot(u, into: &scratch.query)
                var ep = entry
                var d = distance(q, ep, scratch: &scratch)
                if maxLevel > 0 {
                    for lc in stride(from: maxLevel, to: 0, by: -1) {
                        greedy(q, from: &ep, distance: &d, level: lc, scratch: &scratch)
                    }
                }
                var start = Scored(distance: d, slot: ep)
                withUnsafePointer(to: &start) { p in
                    searchLayer(q, entries: UnsafeBufferPointer(start: p, count: 1), ef: efConstruction,
                                level: 0, exclude: u, filter: nil, scratch: &scratch)
                }
                var found = scratch.results.array
                if found.isEmpty { continue }
                found.sort { $0.distance < $1.distance }
                forceLink(from: found[0].slot, to: u, scratch: &scratch)
            }
        }
    }
}
