internal import CKernels
internal import CLZ4
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The index file: one fixed header, then LZ4-compressed blocks, each with CRC-32C checksums.
///
/// Header (128 bytes, little-endian): magic "SXTHNSW1", format version, header size,
/// dimensions, metric, flags (1 = stores vectors, 2 = trained), M, efConstruction, ef,
/// oversampling, trainingSize, repairFraction, seed, level-generator state, slot count, live,
/// deleted and pending counts, entry point, top level, block count, CRC-32C of bytes 0..<124.
/// Each block: kind, raw length, compressed length, CRC-32C of the compressed and of the raw
/// bytes, then the compressed bytes. A section (quantizer, labels, codes, links, …) is the
/// concatenation of its blocks' raw bytes. The file must end exactly after the last block.
enum IndexFile {
    static let magic: [UInt8] = Array("SXTHNSW1".utf8)
    /// Format versions: 1 keeps the full vectors; 2 may keep none (the caller's store holds
    /// them), so that builds that read only 1 refuse such a file (and rebuild it) rather than
    /// load an index they cannot rescore with. This build reads both.
    static let versions: ClosedRange<UInt32> = 1...2
    static let headerSize = 128
    static let blockHeaderSize = 24
    static let maxBlock = 4 << 20

    enum Section: UInt32, CaseIterable {
        case quantizer = 1, labels, states, levels, corrections, codes, links0, upper, vectors, pendingIds,
             pendingVectors, freeSlots
    }

    // MARK: Writing

    static func encode(_ index: HNSWIndex) -> [UInt8] {
        let d = index.dimensions
        let p = index.parameters
        let g = index.graph
        var sections: [(Section, [UInt8])] = []
        if let g {
            var w = ByteWriter()
            for v in g.quantizer.mid { w.append(v) }
            for v in g.quantizer.scale { w.append(v) }
            sections.append((.quantizer, w.bytes))
            let n = g.slotCount
            w = ByteWriter(); g.labels.withUnsafeBufferPointer { w.append(raw: $0.baseAddress!, count: n) }
            sections.append((.labels, w.bytes))
            sections.append((.states, g.states.prefix(n).map(\.rawValue)))
            sections.append((.levels, Array(g.levels.prefix(n))))
            w = ByteWriter(); w.append(raw: g.corrections, count: 2 * n); sections.append((.corrections, w.bytes))
            w = ByteWriter(); w.append(raw: g.codes, count: d * n); sections.append((.codes, w.bytes))
            w = ByteWriter(); w.append(raw: g.links0, count: g.linkStride * n); sections.append((.links0, w.bytes))
            w = ByteWriter()
            for s in 0..<n where g.levels[s] > 0 && g.states[s] != .free {
                w.append(raw: g.upper[s]!, count: Int(g.levels[s]) * g.upperStride)
            }
            sections.append((.upper, w.bytes))
            if let v = g.vectors {
                w = ByteWriter(); w.append(raw: v, count: d * n); sections.append((.vectors, w.bytes))
            }
            w = ByteWriter(); for s in g.freeSlots { w.append(s) }; sections.append((.freeSlots, w.bytes))
        } else {
            var w = ByteWriter(); for id in index.pending.ids { w.append(id) }
            sections.append((.pendingIds, w.bytes))
            w = ByteWriter(); for v in index.pending.vectors { w.append(v) }
            sections.append((.pendingVectors, w.bytes))
        }

        var body = ByteWriter()
        var blocks: UInt32 = 0
        for (kind, raw) in sections {
            var start = 0
            repeat {
                let end = min(raw.count, start + maxBlock)
                appendBlock(kind, raw[start..<end], to: &body)
                blocks += 1
                start = end
            } while start < raw.count
        }

        var h = ByteWriter()
        h.bytes.append(contentsOf: magic)
        h.append(UInt32(index.parameters.storesVectors ? 1 : 2))
        h.append(UInt32(headerSize))
        h.append(UInt32(d))
        h.append(index.metric.code)
        h.append(UInt8((p.storesVectors ? 1 : 0) | (g != nil ? 2 : 0)))
        h.append(UInt16(0))
        for v in [p.m, p.efConstruction, p.ef, p.oversampling, p.trainingSize] { h.append(UInt32(v)) }
        h.append(p.repairFraction)
        h.append(p.seed)
        h.append(g?.levelGenerator.state ?? p.seed)
        h.append(UInt64(g?.slotCount ?? 0))
        h.append(UInt64(g?.liveCount ?? 0))
        h.append(UInt64(g?.deletedCount ?? 0))
        h.append(UInt64(index.pending.ids.count))
        h.append(g?.entry ?? HNSWGraph.none)
        h.append(Int32(g?.maxLevel ?? -1))
        h.append(blocks)
        while h.bytes.count < headerSize - 4 { h.bytes.append(0) }
        h.append(sx_crc32c(0, h.bytes, h.bytes.count))
        return h.bytes + body.bytes
    }

    private static func appendBlock(_ kind: Section, _ raw: ArraySlice<UInt8>, to w: inout ByteWriter) {
        let bound = Int(LZ4_compressBound(Int32(raw.count)))
        var out = [UInt8](repeating: 0, count: max(bound, 1))
        let size = raw.withUnsafeBufferPointer { r in
            out.withUnsafeMutableBufferPointer { o in
                raw.isEmpty ? 0 : LZ4_compress_default(UnsafeRawPointer(r.baseAddress!).assumingMemoryBound(to: CChar.self),
                                                        UnsafeMutableRawPointer(o.baseAddress!).assumingMemoryBound(to: CChar.self),
                                                        Int32(raw.count), Int32(bound))
            }
        }
        precondition(size >= 0 && (size > 0 || raw.isEmpty), "LZ4 compression failed")
        let compressed = out[0..<Int(size)]
        w.append(kind.rawValue)
        w.append(UInt32(raw.count))
        w.append(UInt32(size))
        w.append(compressed.withUnsafeBufferPointer { sx_crc32c(0, $0.baseAddress, $0.count) })
        w.append(raw.withUnsafeBufferPointer { sx_crc32c(0, $0.baseAddress, $0.count) })
        w.append(UInt32(0))
        w.bytes.append(contentsOf: compressed)
    }

    /// Writes `bytes` to a temporary file next to `url`, fsyncs it, renames it over `url` and
    /// fsyncs the folder: readers see the old file or the new one, never a mix.
    static func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
        let path = url.path
        let temp = path + ".tmp-\(getpid())"
        func ioError(_ what: String) -> VectorIndexError {
            VectorIndexError(.io, "\(what) \(temp): \(String(cString: strerror(errno)))")
        }
        let fd = open(temp, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ioError("cannot create") }
        var written = 0
        let ok = bytes.withUnsafeBytes { b -> Bool in
            while written < b.count {
                let r = write(fd, b.baseAddress! + written, b.count - written)
                if r < 0 { if errno == EINTR { continue }; return false }
                written += r
            }
            return true
        }
        guard ok, fsync(fd) == 0 else {
            let e = ioError("cannot write")
            close(fd); unlink(temp)
            throw e
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let e = ioError("cannot rename")
            unlink(temp)
            throw e
        }
        let dir = open(url.deletingLastPathComponent().path, O_RDONLY)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    // MARK: Reading

    static func decode(_ data: UnsafeRawBufferPointer) throws -> HNSWIndex {
        func corrupt(_ m: String) -> VectorIndexError { VectorIndexError(.corrupt, m) }
        var r = ByteReader(data, what: "index file")
        guard data.count >= headerSize else { throw corrupt("index file is \(data.count) bytes, shorter than its header") }
        guard Array(try r.take(8)) == magic else { throw corrupt("not a Sextant index file (bad magic)") }
        let stored = data.loadUnaligned(fromByteOffset: headerSize - 4, as: UInt32.self).littleEndian
        guard sx_crc32c(0, data.baseAddress, headerSize - 4) == stored else { throw corrupt("index header checksum mismatch") }
        let version: UInt32 = try r.read()
        guard Self.versions.contains(version) else {
            throw VectorIndexError(.unsupportedVersion, "index format version \(version), this build reads \(Self.versions.lowerBound)...\(Self.versions.upperBound)")
        }
        guard try r.read(UInt32.self) == UInt32(headerSize) else { throw corrupt("unexpected header size") }
        let d = Int(try r.read(UInt32.self))
        guard let metric = Metric(code: try r.read(UInt8.self)) else { throw corrupt("unknown metric") }
        let flags: UInt8 = try r.read()
        _ = try r.read(UInt16.self)
        var p = HNSWParameters()
        p.m = Int(try r.read(UInt32.self))
        p.efConstruction = Int(try r.read(UInt32.self))
        p.ef = Int(try r.read(UInt32.self))
        p.oversampling = Int(try r.read(UInt32.self))
        p.trainingSize = Int(try r.read(UInt32.self))
        p.repairFraction = try r.readDouble()
        p.seed = try r.read()
        p.storesVectors = flags & 1 != 0
        let rngState: UInt64 = try r.read()
        let slotCount = Int(try r.read(UInt64.self))
        let liveCount = Int(try r.read(UInt64.self))
        let deletedCount = Int(try r.read(UInt64.self))
        let pendingCount = Int(try r.read(UInt64.self))
        let entry: UInt32 = try r.read()
        let maxLevel = Int(try r.read(Int32.self))
        let blockCount = Int(try r.read(UInt32.self))
        let index: HNSWIndex
        do {
            index = try HNSWIndex(dimensions: d, metric: metric, parameters: p)
        } catch let e as VectorIndexError {
            throw corrupt("index header has bad parameters: \(e.message)")
        }
        r.offset = headerSize

        // Blocks, checked and decompressed, gathered by section.
        var sections: [Section: [UInt8]] = [:]
        for b in 0..<blockCount {
            let kindValue: UInt32 = try r.read()
            guard let kind = Section(rawValue: kindValue) else { throw corrupt("block \(b) has unknown kind \(kindValue)") }
            let rawLength = Int(try r.read(UInt32.self))
            let compressedLength = Int(try r.read(UInt32.self))
            let crcCompressed: UInt32 = try r.read()
            let crcRaw: UInt32 = try r.read()
            _ = try r.read(UInt32.self)
            guard rawLength <= maxBlock, compressedLength > 0 || rawLength == 0 else {
                throw corrupt("block \(b) claims \(rawLength) bytes from \(compressedLength)")
            }
            let compressed = try r.take(compressedLength)
            guard sx_crc32c(0, compressed.baseAddress, compressed.count) == crcCompressed else {
                throw corrupt("block \(b) (\(kind)) checksum mismatch")
            }
            var raw = [UInt8](repeating: 0, count: rawLength)
            if rawLength > 0 {
                let got = raw.withUnsafeMutableBufferPointer { o in
                    LZ4_decompress_safe(compressed.baseAddress!.assumingMemoryBound(to: CChar.self),
                                        UnsafeMutableRawPointer(o.baseAddress!).assumingMemoryBound(to: CChar.self),
                                        Int32(compressedLength), Int32(rawLength))
                }
                guard got == Int32(rawLength) else { throw corrupt("block \(b) (\(kind)) does not decompress") }
            }
            guard raw.withUnsafeBufferPointer({ sx_crc32c(0, $0.baseAddress, $0.count) }) == crcRaw else {
                throw corrupt("block \(b) (\(kind)) decompresses to damaged bytes")
            }
            sections[kind, default: []].append(contentsOf: raw)
        }
        guard r.remaining == 0 else { throw corrupt("index file has \(r.remaining) stray bytes after its last block") }

        func section(_ s: Section, _ expected: Int) throws -> [UInt8] {
            let bytes = sections[s] ?? []
            guard bytes.count == expected else {
                throw corrupt("section \(s) has \(bytes.count) bytes, expected \(expected)")
            }
            return bytes
        }

        guard flags & 2 != 0 else {
            guard slotCount == 0 else { throw corrupt("untrained index with slots") }
            let idBytes = try section(.pendingIds, pendingCount * 8)
            let vecBytes = try section(.pendingVectors, pendingCount * d * 4)
            try idBytes.withUnsafeBytes { ib in
                try vecBytes.withUnsafeBytes { vb in
                    var ir = ByteReader(ib, what: "pending ids"), vr = ByteReader(vb, what: "pending vectors")
                    var v = [Float](repeating: 0, count: d)
                    for _ in 0..<pendingCount {
                        let id: UInt64 = try ir.read()
                        for j in 0..<d { v[j] = try vr.readFloat() }
                        guard v.allSatisfy(\.isFinite), index.pending.position[id] == nil else {
                            throw corrupt("pending vectors are damaged")
                        }
                        index.pending.append(id, v)
                    }
                }
            }
            return index
        }

        guard slotCount <= Int(UInt32.max - 1), (-1...LevelGenerator.maxLevel).contains(maxLevel) else {
            throw corrupt("index header has impossible counts")
        }
        let qBytes = try section(.quantizer, 8 * d)
        let quantizer = try qBytes.withUnsafeBytes { b -> ScalarQuantizer in
            var qr = ByteReader(b, what: "quantizer")
            var mid = [Float](), scale = [Float]()
            for _ in 0..<d { mid.append(try qr.readFloat()) }
            for _ in 0..<d { scale.append(try qr.readFloat()) }
            guard mid.allSatisfy(\.isFinite), scale.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw corrupt("quantizer ranges are damaged")
            }
            return ScalarQuantizer(dimensions: d, mid: mid, scale: scale)
        }
        let g = HNSWGraph(dimensions: d, metric: metric, parameters: p, quantizer: quantizer)
        g.levelGenerator = LevelGenerator(state: rngState, m: p.m)
        g.reserve(slotCount)
        let n = slotCount
        let labelBytes = try section(.labels, 8 * n)
        let stateBytes = try section(.states, n)
        let levelBytes = try section(.levels, n)
        g.labels = labelBytes.withUnsafeBytes { b in (0..<n).map { b.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian } }
        g.states = try stateBytes.map { v in
            guard let s = SlotState(rawValue: v) else { throw corrupt("slot state \(v) is unknown") }
            return s
        }
        guard levelBytes.allSatisfy({ Int($0) <= LevelGenerator.maxLevel }) else { throw corrupt("node level out of range") }
        g.levels = levelBytes
        g.indegree = [UInt32](repeating: 0, count: n)
        g.slotCount = n
        try section(.corrections, 8 * n).withUnsafeBytes { b in
            var cr = ByteReader(b, what: "corrections"); try cr.copy(into: g.corrections, count: 2 * n)
        }
        try section(.codes, d * n).withUnsafeBytes { b in
            var cr = ByteReader(b, what: "codes"); try cr.copy(into: g.codes, count: d * n)
        }
        try section(.links0, 4 * g.linkStride * n).withUnsafeBytes { b in
            var lr = ByteReader(b, what: "links"); try lr.copy(into: g.links0, count: g.linkStride * n)
        }
        var upperWords = 0
        for s in 0..<n where g.levels[s] > 0 && g.states[s] != .free { upperWords += Int(g.levels[s]) * g.upperStride }
        try section(.upper, 4 * upperWords).withUnsafeBytes { b in
            var ur = ByteReader(b, what: "upper links")
            for s in 0..<n where g.states[s] != .free {
                if g.levels[s] > 0 {
                    let words = Int(g.levels[s]) * g.upperStride
                    let list = UnsafeMutablePointer<UInt32>.allocate(capacity: words)
                    g.upper[s] = list
                    try ur.copy(into: list, count: words)
                }
            }
        }
        for s in 0..<n where g.states[s] == .free { g.levels[s] = 0 }
        if let v = g.vectors {
            try section(.vectors, 4 * d * n).withUnsafeBytes { b in
                var vr = ByteReader(b, what: "vectors"); try vr.copy(into: v, count: d * n)
            }
        }
        let freeBytes = sections[.freeSlots] ?? []
        guard freeBytes.count % 4 == 0 else { throw corrupt("free slot list is damaged") }
        g.freeSlots = freeBytes.withUnsafeBytes { b in (0..<freeBytes.count / 4).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian } }
        g.liveCount = liveCount
        g.deletedCount = deletedCount
        g.entry = entry
        g.maxLevel = maxLevel
        if n == 0 { g.maxLevel = -1 }

        // Structure: link counts and targets first (so that walking the graph is safe), then
        // in-degrees and the full invariant check.
        for s in 0..<UInt32(n) where g.states[Int(s)] != .free {
            for level in 0...Int(g.levels[Int(s)]) {
                let list = g.links(s, level)
                guard Int(list.pointee) <= g.maxDegree(level) else { throw corrupt("slot \(s) has too many links") }
                for i in 0..<Int(list.pointee) {
                    let t = list[1 + i]
                    guard Int(t) < n, g.states[Int(t)] != .free, Int(g.levels[Int(t)]) >= level else {
                        throw corrupt("slot \(s) links to an invalid slot")
                    }
                    if level == 0 { g.indegree[Int(t)] += 1 }
                }
            }
        }
        var scratch = SearchScratch(dimensions: d, maxDegree: g.m0)
        do {
            try g.checkInvariants(scratch: &scratch, reachability: false)
        } catch let e as VectorIndexError {
            throw corrupt("index graph is inconsistent: \(e.message)")
        }
        index.graph = g
        for s in 0..<n where g.states[s] == .live {
            guard index.slotOf.updateValue(UInt32(s), forKey: g.labels[s]) == nil else {
                throw corrupt("id \(g.labels[s]) appears twice")
            }
        }
        return index
    }
}

extension HNSWIndex {
    /// Saves the index to one file: written to a temporary file, fsynced, renamed over `url`.
    public func save(to url: URL) throws {
        let bytes = lock.reading { IndexFile.encode(self) }
        try IndexFile.writeAtomically(bytes, to: url)
    }

    /// Loads an index saved by `save(to:)`, verifying every checksum and the graph's structure.
    /// A damaged file throws `corrupt`: rebuild it from the full vectors with `rebuild`.
    public static func load(from url: URL, vectorSource: FullVectorSource? = nil) throws -> HNSWIndex {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw VectorIndexError(.io, "cannot read \(url.path): \(error.localizedDescription)")
        }
        let index = try data.withUnsafeBytes { try IndexFile.decode($0) }
        index.vectorSource = vectorSource
        return index
    }
}
