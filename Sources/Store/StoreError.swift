import GRDB

/// A collection database that cannot be opened or used.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case cannotOpen, modelMismatch, corrupt, notFound, invalidArgument, database, readOnly, diskFull
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Wraps a GRDB error, keeping its SQL and result code in the message.
    static func database(_ error: Error, _ context: String) -> StoreError {
        if let e = error as? StoreError { return e }
        return StoreError(.database, "\(context): \(error)")
    }
}
