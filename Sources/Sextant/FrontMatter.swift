import Store

/// The YAML front matter of a Markdown file (a `---` block at the very top) read as flat
/// metadata: `key: value` lines with strings, numbers, booleans, null, dates (kept as
/// strings), flow lists (`[a, b]`), block lists (`- a` lines) and `|`/`>` block strings.
/// Nested maps are skipped with a warning.
enum FrontMatter {
    /// The fields and the text with the block blanked out (same bytes and lines, so chunk
    /// offsets still point into the file). Nil when the text has no front matter; a block that
    /// cannot be read gives nil and a warning, and the file is indexed as it is.
    static func split(_ text: String, source: String, warn: (String) -> Void) -> (fields: [String: JSONValue], text: String)? {
        let bytes = Array(text.utf8)
        var lines: [(start: Int, end: Int)] = []   // byte ranges without the newline
        var i = 0
        while i <= bytes.count {
            var j = i
            while j < bytes.count, bytes[j] != 0x0A { j += 1 }
            lines.append((i, j))
            if j >= bytes.count { break }
            i = j + 1
        }
        func line(_ n: Int) -> String {
            var end = lines[n].end
            if end > lines[n].start, bytes[end - 1] == 0x0D { end -= 1 }
            return String(decoding: bytes[lines[n].start..<end], as: UTF8.self)
        }
        guard !lines.isEmpty, line(0).trimmingTrailingSpaces == "---" else { return nil }
        guard let close = (1..<lines.count).first(where: { ["---", "..."].contains(line($0).trimmingTrailingSpaces) }) else {
            warn("\(source): front matter opened with --- is never closed; indexed as text without fields")
            return nil
        }
        let body = (1..<close).map(line)
        var fields: [String: JSONValue]
        do {
            fields = try parse(body, warn: { warn("\(source): front matter: \($0)") })
        } catch let e as FrontMatterError {
            warn("\(source): front matter line \(e.line + 1): \(e.message); indexed as text without fields")
            return nil
        } catch {
            return nil
        }
        for key in fields.keys.sorted() where Metadata.builtInFields.contains(key) && key != "title" {
            warn("\(source): front matter field '\(key)' is built in (\(Metadata.builtInFields.joined(separator: ", "))); its value is ignored")
            fields[key] = nil
        }
        var blanked = bytes
        for k in 0..<lines[close].end where blanked[k] != 0x0A { blanked[k] = 0x20 }
        return (fields, String(decoding: blanked, as: UTF8.self))
    }

    struct FrontMatterError: Error {
        let line: Int
        let message: String
    }

    /// The fields of the block's lines (line numbers in errors count from the opening `---`).
    static func parse(_ lines: [String], warn: (String) -> Void) throws -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        var n = 0
        func indent(_ s: String) -> Int { s.prefix { $0 == " " }.count }
        while n < lines.count {
            let raw = lines[n]
            let trimmed = raw.trimmingSpaces
            if trimmed.isEmpty || trimmed.hasPrefix("#") { n += 1; continue }
            guard indent(raw) == 0 else {
                throw FrontMatterError(line: n + 1, message: "unexpected indentation")
            }
            guard let colon = keyColon(raw) else {
                throw FrontMatterError(line: n + 1, message: "expected 'key: value'")
            }
            var key = String(raw[..<colon]).trimmingSpaces
            if key.count >= 2, let q = key.first, q == "\"" || q == "'", key.last == q { key = String(key.dropFirst().dropLast()) }
            let rest = stripComment(String(raw[raw.index(after: colon)...])).trimmingSpaces
            n += 1
            // The indented lines that belong to this key.
            var block: [String] = []
            while n < lines.count, lines[n].trimmingSpaces.isEmpty || indent(lines[n]) > 0 || lines[n].hasPrefix("- ") || lines[n] == "-" {
                block.append(lines[n])
                n += 1
            }
            while let last = block.last, last.trimmingSpaces.isEmpty { block.removeLast() }
            guard !key.isEmpty, !key.hasPrefix("$") else {
                warn("field '\(key)' is not a usable name; skipped")
                continue
            }
            if rest == "|" || rest == ">" || rest.hasPrefix("|") || rest.hasPrefix(">") {
                let pad = block.map(indent).filter { $0 > 0 }.min() ?? 0
                let text = block.map { String($0.dropFirst(min(pad, indent($0)))) }
                fields[key] = .string(rest.hasPrefix("|") ? text.joined(separator: "\n") : text.joined(separator: " "))
            } else if rest.isEmpty && block.isEmpty {
                fields[key] = .null
            } else if rest.isEmpty {
                let items = block.map { $0.trimmingSpaces }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
                guard items.allSatisfy({ $0 == "-" || $0.hasPrefix("- ") }) else {
                    warn("field '\(key)' is a nested map, which fields cannot hold; skipped")
                    continue
                }
                let values = items.map { scalar(stripComment(String($0.dropFirst(1))).trimmingSpaces) }
                fields[key] = .array(values)
            } else {
                guard block.isEmpty else {
                    throw FrontMatterError(line: n - block.count, message: "'\(key)' has a value and also indented lines below it")
                }
                if rest.hasPrefix("{") {
                    warn("field '\(key)' is a map, which fields cannot hold; skipped")
                    continue
                }
                fields[key] = scalar(rest)
            }
            // Lists of lists, or names fields cannot have: skipped with a warning.
            do { try Metadata.validateField(key, fields[key]!, context: "front matter") } catch {
                warn("\(error); skipped")
                fields[key] = nil
            }
        }
        return fields
    }

    /// The colon that ends a key (outside quotes, followed by a space or the line's end).
    private static func keyColon(_ s: String) -> String.Index? {
        var quote: Character? = nil
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if let q = quote { if c == q { quote = nil } }
            else if c == "\"" || c == "'", i == s.startIndex { quote = c }
            else if c == ":" {
                let next = s.index(after: i)
                if next == s.endIndex || s[next] == " " || s[next] == "\t" { return i }
            }
            i = s.index(after: i)
        }
        return nil
    }

    /// The text before a ` #` comment that is outside quotes.
    private static func stripComment(_ s: String) -> String {
        var quote: Character? = nil
        var previous: Character = " "
        for (offset, c) in s.enumerated() {
            if let q = quote { if c == q { quote = nil } }
            else if c == "\"" || c == "'" { if previous == " " || previous == "[" || previous == "," { quote = c } }
            else if c == "#", previous == " " || previous == "\t" { return String(s.prefix(offset)) }
            previous = c
        }
        return s
    }

    /// One YAML scalar or flow list.
    static func scalar(_ s: String) -> JSONValue {
        if s.hasPrefix("{"), s.hasSuffix("}") { return .object([:]) }   // a flow map: refused by the caller
        if s.hasPrefix("["), s.hasSuffix("]") {
            return .array(splitFlow(String(s.dropFirst().dropLast())).map { scalar($0.trimmingSpaces) })
        }
        if s.count >= 2, let q = s.first, q == "\"" || q == "'", s.last == q {
            let inner = String(s.dropFirst().dropLast())
            if q == "'" { return .string(inner.replacingOccurrences(of: "''", with: "'")) }
            if let v = try? JSONValue.parse(s), case .string = v { return v }
            return .string(inner)
        }
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        let digits = s.hasPrefix("+") ? String(s.dropFirst()) : s
        if let i = Int64(digits), !digits.isEmpty { return .int(i) }
        if digits.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true,
           digits.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }), let d = Double(digits), d.isFinite {
            return .double(d)
        }
        return .string(s)
    }

    /// The items of a flow list, split at commas outside quotes and brackets.
    private static func splitFlow(_ s: String) -> [String] {
        var items: [String] = [], current = "", quote: Character? = nil, depth = 0
        for c in s {
            if let q = quote { if c == q { quote = nil }; current.append(c); continue }
            if c == "\"" || c == "'" { quote = c; current.append(c); continue }
            if c == "[" || c == "{" { depth += 1 }
            if c == "]" || c == "}" { depth -= 1 }
            if c == ",", depth == 0 { items.append(current); current = ""; continue }
            current.append(c)
        }
        if !current.trimmingSpaces.isEmpty || !items.isEmpty { items.append(current) }
        return items.filter { !$0.trimmingSpaces.isEmpty }
    }
}

private extension String {
    var trimmingSpaces: String {
        let scalars = unicodeScalars
        guard let a = scalars.firstIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" }) else { return "" }
        let b = scalars.lastIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" })!
        return String(scalars[a...b])
    }

    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
