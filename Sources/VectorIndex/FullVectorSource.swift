/// Where the index finds full-precision vectors for rescoring when it does not keep them itself
/// (`HNSWParameters.storesVectors == false`), e.g. the SQLite store or a memory-mapped file.
public protocol FullVectorSource: AnyObject {
    /// Calls `body` with the vector of `id` as it was added (not normalized); returns false
    /// when the source has no vector for `id`. Called under the index's read lock.
    func withVector(id: UInt64, _ body: (UnsafeBufferPointer<Float>) -> Void) -> Bool
}
