/// Where the index finds full-precision vectors for rescoring when it does not keep them itself
/// (`HNSWParameters.storesVectors == false`), e.g. the SQLite store or a memory-mapped file.
public protocol FullVectorSource: AnyObject {
    /// Calls `body` with the vector of each of `ids` that the source holds, as it was added (not
    /// normalized), in any order; ids it does not hold are skipped. Called under the index's read
    /// lock (so it must not call the index's writers), with up to a few hundred ids at a time.
    func forEachVector(ids: [UInt64], _ body: (UInt64, UnsafeBufferPointer<Float>) -> Void) throws
}
