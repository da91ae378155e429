/// An engine-level error: a code and a message that says what to do.
public struct SextantError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case notFound, modelMismatch, invalidArgument, io, corrupt, readOnly, diskFull, database
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

import Store

extension SextantError {
    /// An error from the store below the engine as an engine error (others are returned as they are).
    public static func lifted(_ error: Error) -> Error {
        guard let e = error as? StoreError else { return error }
        switch e.code {
        case .invalidArgument: return SextantError(.invalidArgument, e.message)
        case .notFound: return SextantError(.notFound, e.message)
        case .modelMismatch: return SextantError(.modelMismatch, e.message)
        case .readOnly: return SextantError(.readOnly, e.message)
        case .diskFull: return SextantError(.diskFull, e.message)
        case .corrupt: return SextantError(.corrupt, e.message)
        case .cannotOpen, .database: return SextantError(.database, e.message)
        }
    }
}
