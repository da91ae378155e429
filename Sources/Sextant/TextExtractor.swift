import Foundation
import Store

/// One indexable unit of text from a file: usually the whole file; one per record for
/// BEIR-style `.jsonl` corpora (`path#id`).
public struct ExtractedDocument: Sendable {
    public var key: String
    public var title: String
    public var text: String
    /// Markdown-style headings (`#` lines) structure the text.
    public var markdown: Bool
    /// Fields from the source: Markdown front matter, a BEIR record's `metadata`.
    public var metadata: [String: JSONValue] = [:]
}

/// Why a file gave no text.
public struct SkipReason: Error, CustomStringConvertible {
    public let description: String
}

/// Text from .txt, .md, .rst, .html, source code, BEIR .jsonl and (with `pdftotext`) PDF.
public enum TextExtractor {
    public enum Kind: Sendable { case plain, markdown, html, jsonl, pdf }

    static let plainExtensions: Set<String> = [
        "txt", "text", "rst", "adoc", "org", "tex", "csv", "tsv", "log",
        "swift", "py", "js", "mjs", "ts", "tsx", "jsx", "c", "h", "cc", "cpp", "hpp", "m", "mm", "java", "kt", "go",
        "rs", "rb", "php", "cs", "scala", "sh", "bash", "zsh", "fish", "sql", "r", "jl", "lua", "pl", "hs", "ml",
        "ex", "exs", "erl", "clj", "dart", "vue", "svelte", "css", "scss", "json", "yaml", "yml", "toml", "ini", "cfg",
        "xml", "proto", "gradle", "cmake", "make", "mk", "dockerfile"]

    /// The kind of a file by its name, or nil if it is not indexed.
    public static func kind(of url: URL) -> Kind? {
        let ext = url.pathExtension.lowercased()
        switch ext {
        case "md", "markdown", "mdx": return .markdown
        case "html", "htm", "xhtml": return .html
        case "jsonl": return .jsonl
        case "pdf": return .pdf
        case "": return ["makefile", "dockerfile", "readme", "license"].contains(url.lastPathComponent.lowercased()) ? .plain : nil
        default: return plainExtensions.contains(ext) ? .plain : nil
        }
    }

    /// Extracts the documents of a file. Throws `SkipReason` for binary, empty or unreadable
    /// files; `warn` hears about lossy decoding.
    public static func extract(_ url: URL, maxBytes: Int, warn: (String) -> Void) throws -> [ExtractedDocument] {
        guard let kind = kind(of: url) else { throw SkipReason(description: "not a text format Sextant reads") }
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        if size > maxBytes {
            throw SkipReason(description: "\(size / 1_000_000) MB is over the limit of \(maxBytes / 1_000_000) MB (--max-file-mb)")
        }
        if kind == .pdf { return [try pdf(url)] }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SkipReason(description: "cannot read (\(error.localizedDescription))")
        }
        if data.isEmpty { throw SkipReason(description: "empty file") }
        if data.prefix(8192).contains(0) { throw SkipReason(description: "binary content") }
        var text: String
        if let valid = String(validating: data, as: UTF8.self) {
            text = valid
        } else {
            text = String(decoding: data, as: UTF8.self)
            warn("\(url.path): not valid UTF-8; invalid bytes replaced with U+FFFD")
        }
        let name = url.lastPathComponent
        switch kind {
        case .plain:
            return [ExtractedDocument(key: url.path, title: name, text: text, markdown: false)]
        case .markdown:
            var fields: [String: JSONValue] = [:]
            if let front = FrontMatter.split(text, source: url.path, warn: warn) {
                fields = front.fields
                text = front.text
            }
            var title = LineInput.lines(of: text).first { $0.hasPrefix("# ") }.map { String($0.dropFirst(2)) } ?? name
            if case .string(let t)? = fields["title"], !t.isEmpty { title = t }
            return [ExtractedDocument(key: url.path, title: title, text: text, markdown: true, metadata: fields)]
        case .html:
            let (title, body) = HTMLText.extract(text)
            return [ExtractedDocument(key: url.path, title: title ?? name, text: body, markdown: true)]
        case .jsonl:
            return try beir(text, path: url.path, warn: warn)
        case .pdf:
            fatalError("handled above")
        }
    }

    /// One document per line of a BEIR corpus: `{"_id", "title", "text"}` → title + ". " + text.
    static func beir(_ text: String, path: String, warn: (String) -> Void) throws -> [ExtractedDocument] {
        var docs: [ExtractedDocument] = []
        var bad = 0, badFields = 0
        for (i, line) in LineInput.lines(of: text).enumerated() where !line.isEmpty {
            guard let record = beirRecord(Data(line.utf8), position: i + 1) else {
                bad += 1
                if bad <= 3 { warn("\(path): line \(i + 1) is not a BEIR record {\"_id\", \"title\", \"text\"}; skipped") }
                continue
            }
            var fields: [String: JSONValue] = [:]
            for (key, value) in record.metadata.sorted(by: { $0.key < $1.key }) {
                do {
                    try Metadata.validateField(key, value, context: "metadata")
                    fields[key] = value
                } catch {
                    badFields += 1
                    if badFields <= 3 { warn("\(path): line \(i + 1): \(error); that field is skipped") }
                }
            }
            docs.append(ExtractedDocument(key: path + "#" + record.id, title: record.title, text: record.text, markdown: false,
                                          metadata: fields))
        }
        if docs.isEmpty { throw SkipReason(description: "no BEIR records ({\"_id\", \"title\", \"text\"} per line)") }
        return docs
    }

    /// One BEIR record: its id (`_id`, else the line number), title, indexed text (title +
    /// ". " + text, or the text alone without a title) and `metadata` object; nil when the line
    /// is not a record.
    public static func beirRecord(_ line: Data, position: Int) -> (id: String, title: String, text: String, metadata: [String: JSONValue])? {
        guard case .object(let obj)? = try? JSONValue.parse(String(decoding: line, as: UTF8.self)),
              case .string(let body)? = obj["text"] else { return nil }
        var id = String(position)
        switch obj["_id"] {
        case .string(let s)?: id = s
        case .int(let i)?: id = String(i)
        default: break
        }
        var title = ""
        if case .string(let t)? = obj["title"] { title = t }
        var metadata: [String: JSONValue] = [:]
        if case .object(let m)? = obj["metadata"] { metadata = m }
        return (id, title, title.isEmpty ? body : title + ". " + body, metadata)
    }

    static func pdf(_ url: URL) throws -> ExtractedDocument {
        let candidates = ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"]
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw SkipReason(description: "PDF needs pdftotext (apt-get install poppler-utils)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["-enc", "UTF-8", url.path, "-"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw SkipReason(description: "pdftotext failed (status \(p.terminationStatus))") }
        let text = String(decoding: data, as: UTF8.self)
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw SkipReason(description: "the PDF has no text layer") }
        return ExtractedDocument(key: url.path, title: url.lastPathComponent, text: text, markdown: false)
    }
}

/// Visible text of an HTML page: tags stripped, script and style dropped, entities decoded,
/// headings turned into markdown `#` lines so the chunker sees the structure.
enum HTMLText {
    static func extract(_ html: String) -> (title: String?, text: String) {
        var title: String? = nil
        if let t = html.range(of: "<title[^>]*>", options: [.regularExpression, .caseInsensitive]),
           let end = html.range(of: "</title>", options: .caseInsensitive, range: t.upperBound..<html.endIndex) {
            title = decodeEntities(String(html[t.upperBound..<end.lowerBound])).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var s = html
        for tag in ["script", "style", "head", "noscript"] {
            s = s.replacingOccurrences(of: "<\(tag)[^>]*>[\\s\\S]*?</\(tag)>", with: " ", options: [.regularExpression, .caseInsensitive])
        }
        s = s.replacingOccurrences(of: "<!--[\\s\\S]*?-->", with: " ", options: .regularExpression)
        for level in 1...6 {
            s = s.replacingOccurrences(of: "<h\(level)[^>]*>", with: "\n\n" + String(repeating: "#", count: level) + " ",
                                       options: [.regularExpression, .caseInsensitive])
        }
        s = s.replacingOccurrences(of: "</?(p|div|br|li|tr|section|article|h[1-6]|ul|ol|table|blockquote|pre)[^>]*>", with: "\n\n",
                                   options: [.regularExpression, .caseInsensitive])
        s = s.replacingOccurrences(of: "<[^>]+>", with: " ", options: .regularExpression)
        s = decodeEntities(s)
        s = s.replacingOccurrences(of: "[ \\t]+", with: " ", options: .regularExpression)
        s = s.replacingOccurrences(of: "\\n\\s*\\n[\\s\\n]*", with: "\n\n", options: .regularExpression)
        return (title, s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = s
        for (entity, value) in [("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&apos;", "'")] {
            out = out.replacingOccurrences(of: entity, with: value)
        }
        // Numeric entities.
        while let r = out.range(of: "&#(x[0-9a-fA-F]+|[0-9]+);", options: .regularExpression) {
            let body = out[r].dropFirst(2).dropLast()
            let value = body.hasPrefix("x") ? UInt32(body.dropFirst(), radix: 16) : UInt32(body)
            out.replaceSubrange(r, with: value.flatMap(Unicode.Scalar.init).map { String(Character($0)) } ?? "")
        }
        return out.replacingOccurrences(of: "&amp;", with: "&")
    }
}
