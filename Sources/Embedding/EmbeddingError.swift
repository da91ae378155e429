/// A model folder or input that the embedder cannot use.
public struct EmbeddingError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case modelNotFound, badConfig, unsupportedModel, badInput
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
