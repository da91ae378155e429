/// Something the vector index cannot do: bad input, a damaged file, or an I/O failure.
public struct VectorIndexError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// A parameter out of range (k < 0, ef < 1, M < 2, dimensions < 1, …).
        case invalidArgument
        /// A vector whose length is not the index's dimension count.
        case dimensionMismatch
        /// A vector with NaN or infinite components, or a zero vector under cosine.
        case invalidVector
        /// An id that is not in the index.
        case notFound
        /// Rescoring needs full vectors that the index does not hold and no source gives.
        case missingVector
        /// An index file that is truncated, damaged or not an index file at all.
        case corrupt
        /// An index file of a format version this build does not read.
        case unsupportedVersion
        /// The file system refused a read or a write.
        case io
        /// The graph breaks one of its invariants (see `checkInvariants`).
        case invariant
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
