/// An engine-level error: a code and a message that says what to do.
public struct SextantError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case notFound, modelMismatch, invalidArgument, io, corrupt
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
