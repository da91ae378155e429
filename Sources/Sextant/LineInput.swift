import Foundation

/// An input line that cannot be read, with its 1-based line number.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }
}

/// Reads texts from lines of bytes: JSON objects `{"text": ...}` or plain text lines.
public enum LineInput {
    /// Decodes one line (without its newline). `lineNumber` is for error messages.
    /// - Parameter plain: the line is the text itself rather than a JSON object.
    public static func text(from bytes: ArraySlice<UInt8>, lineNumber: Int, plain: Bool) throws -> String {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard let line = String(validating: bytes, as: UTF8.self) else {
            throw InputError(line: lineNumber, message: "not valid UTF-8")
        }
        if plain { return line }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw InputError(line: lineNumber, message: "not valid JSON; expected an object like {\"text\": \"...\"} (use --lines for plain text)")
        }
        guard let dict = object as? [String: Any] else {
            throw InputError(line: lineNumber, message: "expected a JSON object like {\"text\": \"...\"}")
        }
        guard let text = dict["text"] as? String else {
            throw InputError(line: lineNumber, message: "the object has no string field \"text\"")
        }
        return text
    }

    /// Splits a buffer into lines, calling `body` with each complete line and its number; returns
    /// the bytes after the last newline (an incomplete line).
    public static func forEachLine(in buffer: [UInt8], startingAt firstLine: Int,
                                   _ body: (ArraySlice<UInt8>, Int) throws -> Void) rethrows -> (rest: ArraySlice<UInt8>, lines: Int) {
        var start = buffer.startIndex
        var count = 0
        while let nl = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
            try body(buffer[start..<nl], firstLine + count)
            count += 1
            start = nl + 1
        }
        return (buffer[start...], count)
    }

    /// The lines of a text, split at "\n" and at "\r\n" (one Character in Swift, so splitting
    /// at "\n" alone would not cut Windows line ends); empty lines are kept, so that the index
    /// plus one is the line number.
    public static func lines(of text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// The text of a JSON input line `{"text": ..., ...}` and the values of the fields to keep
    /// (`id` always when present, then `keep` in order, each once; missing ones are left out).
    /// Values are re-serialized: integers keep their exact value, object keys come sorted.
    /// Errors name the line.
    public static func record(from bytes: ArraySlice<UInt8>, lineNumber: Int, keep: [String]) throws -> (text: String, kept: [(String, JSONValue)]) {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard let line = String(validating: bytes, as: UTF8.self) else {
            throw InputError(line: lineNumber, message: "not valid UTF-8")
        }
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch {
            throw InputError(line: lineNumber, message: "not valid JSON (\(error)); expected an object like {\"text\": \"...\"} (use --lines for plain text)")
        }
        guard case .object(let object) = value else {
            throw InputError(line: lineNumber, message: "expected a JSON object like {\"text\": \"...\"}")
        }
        guard case .string(let text)? = object["text"] else {
            throw InputError(line: lineNumber, message: "the object has no string field \"text\"")
        }
        var kept: [(String, JSONValue)] = []
        var names = ["id"]
        for name in keep where !names.contains(name) { names.append(name) }
        for name in names {
            if let v = object[name] { kept.append((name, v)) }
        }
        return (text, kept)
    }

    /// One JSON line `{"embedding":[...]}` for a vector, after the `kept` fields when given.
    public static func embeddingLine(_ vector: [Float], kept: [(String, JSONValue)]) -> String {
        guard !kept.isEmpty else { return embeddingLine(vector) }
        var prefix = "{"
        for (name, value) in kept { prefix += JSONValue.string(name).serialized + ":" + value.serialized + "," }
        return prefix + embeddingLine(vector).dropFirst()
    }

    /// One JSON line `{"embedding":[...]}` for a vector.
    public static func embeddingLine(_ vector: [Float]) -> String {
        var s = "{\"embedding\":["
        s.reserveCapacity(vector.count * 12 + 20)
        for (i, v) in vector.enumerated() {
            if i > 0 { s += "," }
            s += v.isFinite ? v.description : "0"
        }
        s += "]}"
        return s
    }
}
