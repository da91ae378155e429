/// A model file that cannot be used: unreadable, damaged, or of a kind Sextant does not run.
public struct InferenceError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case unreadable, corrupt, missingTensor, wrongShape, unsupportedDType, unsupportedArchitecture, badConfig
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
