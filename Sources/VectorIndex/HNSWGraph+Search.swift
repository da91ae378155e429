internal import CKernels

/// A query ready for comparison with codes: its scaled components live in a scratch buffer.
struct PreparedQuery {
    /// Σ q_i mid_i.
    var offset: Float
    /// ‖q‖² (used by L2).
    var normSq: Float
}

extension HNSWGraph {
    /// Prepares a float vector into `scratch.query`.
    func prepareQuery(_ v: UnsafePointer<Float>, scratch: inout SearchScratch) -> PreparedQuery {
        let normSq = Distance.dot(v, v, dimensions)
        let offset = scratch.query.withUnsafeMutableBufferPointer { quantizer.prepare(v, scaled: $0.baseAddress!) }
        return PreparedQuery(offset: offset, normSq: normSq)
    }

    /// Prepares the decoded code of `slot` into `buffer` (for code-to-code distances).
    func prepareSlot(_ slot: UInt32, into buffer: inout [Float]) -> PreparedQuery {
        let offset = buffer.withUnsafeMutableBufferPointer { quantizer.prepare(code: code(slot), scaled: $0.baseAddress!) }
        return PreparedQuery(offset: offset, normSq: corrections[Int(slot) * 2 + 1])
    }

    /// The estimated distance from a query whose raw code dot product with `slot` is `dot`.
    @inline(__always)
    func estimate(_ q: PreparedQuery, dot: Float, _ slot: UInt32) -> Float {
        let c = corrections + Int(slot) * 2
        let ip = dot + q.offset + c[0]
        switch metric {
        case .cosine: return 1 - ip
        case .innerProduct: return -ip
        case .l2: return q.normSq + c[1] - 2 * ip
        }
    }

    /// Estimated distance from the query prepared in `scratch.query` to `slot`.
    @inline(__always)
    func distance(_ q: PreparedQuery, _ slot: UInt32, scratch: inout SearchScratch) -> Float {
        let dot = scratch.query.withUnsafeBufferPointer { sx_dot_f32_i8($0.baseAddress!, code(slot), dimensions) }
        return estimate(q, dot: dot, slot)
    }

    /// Estimated distance from a query prepared in `buffer` to `slot`.
    @inline(__always)
    func distance(_ q: PreparedQuery, in buffer: [Float], _ slot: UInt32) -> Float {
        let dot = buffer.withUnsafeBufferPointer { sx_dot_f32_i8($0.baseAddress!, code(slot), dimensions) }
        return estimate(q, dot: dot, slot)
    }

    /// Greedy walk on one upper level toward the query (ef = 1); tombstones are walked through.
    func greedy(_ q: PreparedQuery, from ep: inout UInt32, distance best: inout Float, level: Int,
                scratch: inout SearchScratch) {
        var changed = true
        while changed {
            changed = false
            let list = links(ep, level)
            let n = Int(list.pointee)
            guard n > 0 else { return }
            scratch.query.withUnsafeBufferPointer { qp in
                scratch.dots.withUnsafeMutableBufferPointer { dp in
                    sx_dot_f32_i8_many(qp.baseAddress!, codes, dimensions, list + 1, n, dimensions, dp.baseAddress!)
                }
            }
            var next = ep
            for i in 0..<n {
                let s = list[1 + i]
                let d = estimate(q, dot: scratch.dots[i], s)
                if d < best {
                    best = d
                    next = s
                    changed = true
                }
            }
            ep = next
        }
    }

    /// Best-first search of one level from `entries`, leaving up to `ef` accepted nodes in
    /// `scratch.results` (a max-heap). Every node is walked through; a node is accepted when it
    /// is live, not `exclude`, and its label passes `filter`. The search ends when the nearest
    /// open candidate is farther than the worst of `ef` accepted results, so with fewer than
    /// `ef` acceptable nodes it walks everything reachable.
    ///
    /// Exact duplicates of a walked node (byte-identical codes: boilerplate chunks such as a
    /// footer in every file) are set aside as ties instead of entering the beam: a group of
    /// identical vectors larger than `ef` would otherwise fill it with one point, and the walk
    /// would end there, never reaching nearer nodes behind it. Up to `ef` accepted ties,
    /// gathered through the group's own links, join the results at the end (possibly more than
    /// `ef` results in all).
    func searchLayer(_ q: PreparedQuery, entries: UnsafeBufferPointer<Scored>, ef: Int, level: Int, exclude: UInt32,
                     filter: ((UInt64) -> Bool)?, scratch: inout SearchScratch) {
        // Locals, so the loop reads no class storage (no exclusivity checks).
        let states = self.states, labels = self.labels
        let codes = self.codes, corrections = self.corrections, d = dimensions, metric = self.metric
        let links0 = self.links0, upper = self.upper, stride0 = linkStride, strideUp = upperStride
        scratch.resetVisited(slots: slotCount)
        scratch.candidates.removeAll()
        scratch.results.removeAll()
        scratch.ties.removeAll(keepingCapacity: true)
        @inline(__always) func accepted(_ s: UInt32) -> Bool {
            guard s != exclude, states[Int(s)] == .live else { return false }
            guard let filter else { return true }
            return filter(labels[Int(s)])
        }
        var bound = Float.infinity
        for e in entries where scratch.visit(e.slot) {
            scratch.candidates.push(e)
            if accepted(e.slot) {
                scratch.results.push(e)
                if scratch.results.count > ef { scratch.results.pop() }
            }
        }
        if scratch.results.count >= ef { bound = scratch.results.top.distance }
        let query = scratch.query
        let ids = scratch.neighbours.ids, dots = scratch.neighbours.dots
        query.withUnsafeBufferPointer { qp in
            let qv = qp.baseAddress!
            while !scratch.candidates.isEmpty {
                let c = scratch.candidates.top
                if c.distance > bound && scratch.results.count >= ef { break }
                scratch.candidates.pop()
                let list = level == 0 ? links0 + Int(c.slot) * stride0 : upper[Int(c.slot)]! + (level - 1) * strideUp
                let n = Int(list.pointee)
                var fresh = 0
                for i in 0..<n {
                    let s = list[1 + i]
                    if scratch.visit(s) {
                        ids[fresh] = s
                        fresh += 1
                    }
                }
                guard fresh > 0 else { continue }
                sx_dot_f32_i8_many(qv, codes, d, ids, fresh, d, dots)
                for i in 0..<fresh {
                    let s = ids[i]
                    let cs = corrections + Int(s) * 2
                    let ip = dots[i] + q.offset + cs[0]
                    let dist: Float
                    switch metric {
                    case .cosine: dist = 1 - ip
                    case .innerProduct: dist = -ip
                    case .l2: dist = q.normSq + cs[1] - 2 * ip
                    }
                    if dist == c.distance, scratch.ties.count < 4 * ef, sameCode(s, c.slot) {
                        scratch.ties.append(Scored(distance: dist, slot: s))
                        continue
                    }
                    guard scratch.results.count < ef || dist < bound else { continue }
                    scratch.candidates.push(Scored(distance: dist, slot: s))
                    if accepted(s) {
                        scratch.results.push(Scored(distance: dist, slot: s))
                        if scratch.results.count > ef { scratch.results.pop() }
                        if scratch.results.count >= ef { bound = scratch.results.top.distance }
                    }
                }
            }
        }
        gatherTies(ef: ef, level: level, bound: scratch.results.count >= ef ? bound : .infinity, accepted: accepted,
                   scratch: &scratch)
    }

    /// Follows the ties' own links to more copies of them (nearest groups first, breadth first,
    /// until `ef` accepted ties or the budget of 4 × ef), then adds the accepted ones that are
    /// not farther than `bound` (the worst of a full result list) to the results.
    private func gatherTies(ef: Int, level: Int, bound: Float, accepted: (UInt32) -> Bool, scratch: inout SearchScratch) {
        guard !scratch.ties.isEmpty else { return }
        scratch.ties.sort { $0.distance < $1.distance }
        var next = 0
        var acceptedTies = scratch.ties.reduce(0) { $0 + (accepted($1.slot) ? 1 : 0) }
        while next < scratch.ties.count, acceptedTies < ef, scratch.ties.count < 4 * ef {
            let t = scratch.ties[next]
            next += 1
            let list = links(t.slot, level)
            for i in 0..<Int(list.pointee) where scratch.ties.count < 4 * ef {
                let s = list[1 + i]
                guard sameCode(s, t.slot), scratch.visit(s) else { continue }
                scratch.ties.append(Scored(distance: t.distance, slot: s))
                if accepted(s) { acceptedTies += 1 }
            }
        }
        for t in scratch.ties where t.distance <= bound && accepted(t.slot) { scratch.results.push(t) }
    }

    @inline(__always)
    func accepts(_ slot: UInt32, exclude: UInt32, filter: ((UInt64) -> Bool)?) -> Bool {
        guard slot != exclude, states[Int(slot)] == .live else { return false }
        guard let filter else { return true }
        return filter(labels[Int(slot)])
    }

    /// The approximate nearest live nodes to a prepared vector: greedy descent through the
    /// upper levels, then a level-0 search with `ef`. Results stay in `scratch.results`.
    func search(_ v: UnsafePointer<Float>, ef: Int, filter: ((UInt64) -> Bool)?, scratch: inout SearchScratch) {
        scratch.results.removeAll()
        guard entry != Self.none else { return }
        let q = prepareQuery(v, scratch: &scratch)
        var ep = entry
        var d = distance(q, ep, scratch: &scratch)
        if maxLevel > 0 {
            for lc in stride(from: maxLevel, to: 0, by: -1) {
                greedy(q, from: &ep, distance: &d, level: lc, scratch: &scratch)
            }
        }
        var start = Scored(distance: d, slot: ep)
        withUnsafePointer(to: &start) { p in
            searchLayer(q, entries: UnsafeBufferPointer(start: p, count: 1), ef: ef, level: 0,
                        exclude: Self.none, filter: filter, scratch: &scratch)
        }
    }

    /// The `keep` live slots passing `filter` nearest to `v` by code distance, found by
    /// scanning every slot (no graph walk): for filters that match few slots, where a walk would
    /// wander through many that do not match. Results stay in `scratch.results`.
    func scanCodes(_ v: UnsafePointer<Float>, keep: Int, filter: ((UInt64) -> Bool)?, scratch: inout SearchScratch) {
        let states = self.states, labels = self.labels
        scanCodes(v, keep: keep, scratch: &scratch) { emit in
            for s in 0..<slotCount where states[s] == .live {
                if let filter, !filter(labels[s]) { continue }
                emit(UInt32(s))
            }
        }
    }

    /// The `keep` of `slots` (live ones) nearest to `v` by code distance, into `scratch.results`.
    func scanCodes(_ v: UnsafePointer<Float>, keep: Int, slots: [UInt32], scratch: inout SearchScratch) {
        scanCodes(v, keep: keep, scratch: &scratch) { emit in
            for s in slots { emit(s) }
        }
    }

    private func scanCodes(_ v: UnsafePointer<Float>, keep: Int, scratch: inout SearchScratch,
                           slots: (_ emit: (UInt32) -> Void) -> Void) {
        scratch.results.removeAll()
        guard keep > 0 else { return }
        let q = prepareQuery(v, scratch: &scratch)
        let codes = self.codes, d = dimensions
        let ids = scratch.neighbours.ids, dots = scratch.neighbours.dots
        let batch = scratch.neighbours.capacity
        var bound = Float.infinity
        var results = scratch.results
        scratch.query.withUnsafeBufferPointer { qp in
            let qv = qp.baseAddress!
            var pending = 0
            func flush() {
                guard pending > 0 else { return }
                sx_dot_f32_i8_many(qv, codes, d, ids, pending, d, dots)
                for i in 0..<pending {
                    let dist = estimate(q, dot: dots[i], ids[i])
                    guard results.count < keep || dist < bound else { continue }
                    results.push(Scored(distance: dist, slot: ids[i]))
                    if results.count > keep { results.pop() }
                    if results.count >= keep { bound = results.top.distance }
                }
                pending = 0
            }
            slots { s in
                ids[pending] = s
                pending += 1
                if pending == batch { flush() }
            }
            flush()
        }
        scratch.results = results
    }
}
