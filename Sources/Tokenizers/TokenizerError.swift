/// A tokenizer file that cannot be read or uses a component Sextant does not implement.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case unreadable, malformed, unsupported
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
