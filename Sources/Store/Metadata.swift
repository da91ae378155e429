import Foundation

/// Document metadata: a flat JSON object whose values are strings, numbers, booleans, null or
/// arrays of those. A document's fields are, in order of precedence: the built-in fields
/// (`id`, `path`, `ext`, `size`, `mtime`, `title`), the fields set later (`setFields`), and
/// the fields its source gave (front matter, a BEIR record's `metadata`, the API's `metadata`).
public enum Metadata {
    /// Fields every document gets from the collection itself; they cannot be set.
    public static let builtInFields: [String] = ["id", "path", "ext", "size", "mtime", "title"]

    /// Checks that `value` is an object of storable fields; the error names the field.
    public static func validate(_ value: JSONValue, context: String = "metadata") throws -> [String: JSONValue] {
        guard case .object(let fields) = value else {
            throw StoreError(.invalidArgument, "\(context) must be a JSON object of fields, not \(value.typeName)")
        }
        for (key, v) in fields {
            try validateField(key, v, context: context)
        }
        return fields
    }

    /// Checks one field: a name of 1 to 256 characters not starting with `$`, and a scalar or an
    /// array of scalars.
    public static func validateField(_ key: String, _ value: JSONValue, context: String = "metadata") throws {
        guard !key.isEmpty, key.count <= 256 else {
            throw StoreError(.invalidArgument, "\(context): field names must have 1 to 256 characters")
        }
        guard !key.hasPrefix("$") else {
            throw StoreError(.invalidArgument, "\(context): field '\(key)' starts with '$', which filters reserve for operators")
        }
        switch value {
        case .object:
            throw StoreError(.invalidArgument, "\(context): field '\(key)' is an object; values must be strings, numbers, booleans, null or arrays of those")
        case .array(let items):
            for item in items {
                if case .array = item { throw StoreError(.invalidArgument, "\(context): field '\(key)' holds an array inside an array; use a flat array") }
                if case .object = item { throw StoreError(.invalidArgument, "\(context): field '\(key)' holds an object in an array; arrays must hold strings, numbers, booleans or null") }
            }
        default: break
        }
    }

    /// The built-in fields of a document stored under `path`.
    static func builtIns(path: String, size: Int64, modifiedAt: Double, title: String) -> [String: JSONValue] {
        var fields: [String: JSONValue] = Dictionary(minimumCapacity: 8)
        fields["path"] = .string(path)
        fields["size"] = .int(size)
        fields["mtime"] = .string(isoDate(modifiedAt))
        if !title.isEmpty { fields["title"] = .string(title) }
        if path.hasPrefix("doc:") {
            fields["id"] = .string(String(path.dropFirst(4)))
        } else {
            // `corpus.jsonl#ID` is a record of a BEIR file; any other `#` is part of the name.
            var file = path
            if let hash = path.range(of: ".jsonl#") {
                file = String(path[..<hash.lowerBound]) + ".jsonl"
                fields["id"] = .string(String(path[hash.upperBound...]))
            }
            let name = file.lastIndex(of: "/").map { file[file.index(after: $0)...] } ?? file[...]
            if let dot = name.lastIndex(of: "."), dot != name.startIndex {
                fields["ext"] = .string(name[name.index(after: dot)...].lowercased())
            } else {
                fields["ext"] = .string("")
            }
        }
        return fields
    }

    /// A document's fields: its source's, overlaid by those set later (null there removes a
    /// field), overlaid by the built-in ones.
    static func effective(source: [String: JSONValue], set: [String: JSONValue], builtIns: [String: JSONValue]) -> [String: JSONValue] {
        // Fields stored before they were checked (objects, nested arrays) are left out, and so
        // are values for the built-in names (a document without a title has no "title" field).
        var fields = source.filter { (try? validateField($0.key, $0.value)) != nil && !builtInFields.contains($0.key) }
        for (k, v) in set where (try? validateField(k, v)) != nil && !builtInFields.contains(k) {
            if v == .null { fields[k] = nil } else { fields[k] = v }
        }
        for (k, v) in builtIns { fields[k] = v }
        return fields
    }

    /// Built-in fields read from the documents table itself rather than from `document_fields`
    /// rows (they would repeat long strings there): filters on them query that table.
    static let columnFields: Set<String> = ["path", "title", "size"]

    /// A document's fields as stored (`fields_json`: its own and those set later) with the
    /// built-in ones added.
    public static func documentFields(json: String, path: String, size: Int64, modifiedAt: Double, title: String) -> [String: JSONValue] {
        var fields = builtIns(path: path, size: size, modifiedAt: modifiedAt, title: title)
        guard json != "{}" else { return fields }
        for (k, v) in decodeObject(json) where fields[k] == nil { fields[k] = v }
        return fields
    }

    /// A stored metadata object (lenient: anything but an object reads as no fields).
    public static func decodeObject(_ json: String) -> [String: JSONValue] {
        if case .object(let o)? = try? JSONValue.parse(json) { return o }
        return [:]
    }

    // MARK: Index rows

    /// How a value is kept in the `fields` table (and compared by filters).
    enum Kind: Int {
        case null = 0, bool = 1, number = 2, string = 3, date = 4, emptyArray = 9
    }

    /// One row of the `fields` table: a value (or an array element) of one field.
    struct Row {
        var key: String
        var kind: Kind
        var value: SQLValue
        var inArray: Bool
    }

    /// A value as SQLite stores it.
    enum SQLValue {
        case null, int(Int64), double(Double), text(String)
    }

    /// The rows that index `fields`: one per scalar or array element, and one more (kind
    /// `date`, seconds since 1970) for each string that is an ISO 8601 date.
    static func rows(_ fields: [String: JSONValue]) -> [Row] {
        var rows: [Row] = []
        func add(_ key: String, _ v: JSONValue, inArray: Bool) {
            switch v {
            case .null: rows.append(Row(key: key, kind: .null, value: .null, inArray: inArray))
            case .bool(let b): rows.append(Row(key: key, kind: .bool, value: .int(b ? 1 : 0), inArray: inArray))
            case .int(let i): rows.append(Row(key: key, kind: .number, value: .int(i), inArray: inArray))
            case .double(let d): rows.append(Row(key: key, kind: .number, value: .double(d), inArray: inArray))
            case .string(let s):
                rows.append(Row(key: key, kind: .string, value: .text(s), inArray: inArray))
                if let t = parseISODate(s) { rows.append(Row(key: key, kind: .date, value: .double(t), inArray: inArray)) }
            case .array(let items):
                if items.isEmpty { rows.append(Row(key: key, kind: .emptyArray, value: .null, inArray: false)) }
                for item in items { add(key, item, inArray: true) }
            case .object: break   // rejected by `validate`
            }
        }
        for (key, v) in fields { add(key, v, inArray: false) }
        return rows
    }

    // MARK: Dates

    /// `seconds` since 1970 as ISO 8601 in UTC, to the second (`2026-11-30T08:15:00Z`).
    public static func isoDate(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 2.5e11 else { return "0000-01-01T00:00:00Z" }   // years 0-9999
        let t = Int64(seconds.rounded(.down))
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let rest = t - days * 86400
        let (y, m, d) = civil(fromDays: days)
        // Written byte by byte: this runs for every search hit.
        var out = [UInt8](repeating: 0, count: 20)
        func put(_ v: Int64, _ at: Int, _ width: Int) {
            var v = max(0, v)
            for i in stride(from: at + width - 1, through: at, by: -1) { out[i] = UInt8(48 + v % 10); v /= 10 }
        }
        put(y, 0, 4); out[4] = 0x2D; put(m, 5, 2); out[7] = 0x2D; put(d, 8, 2); out[10] = 0x54
        put(rest / 3600, 11, 2); out[13] = 0x3A; put(rest / 60 % 60, 14, 2); out[16] = 0x3A; put(rest % 60, 17, 2); out[19] = 0x5A
        return String(decoding: out, as: UTF8.self)
    }

    /// Seconds since 1970 of an ISO 8601 date (`2024-05-01`) or date and time
    /// (`2024-05-01T12:30`, `…:45`, `…:45.250`, with `Z` or `±HH:MM`, or a space instead of `T`);
    /// without a zone, UTC. Nil for anything else.
    public static func parseISODate(_ s: String) -> Double? {
        let b = Array(s.utf8)
        guard b.count >= 10, b.count <= 40 else { return nil }
        func num(_ from: Int, _ n: Int) -> Int64? {
            guard from + n <= b.count else { return nil }
            var v: Int64 = 0
            for j in from..<from + n {
                guard b[j] >= 48, b[j] <= 57 else { return nil }
                v = v * 10 + Int64(b[j] - 48)
            }
            return v
        }
        guard let y = num(0, 4), b[4] == UInt8(ascii: "-"), let mo = num(5, 2), b[7] == UInt8(ascii: "-"), let d = num(8, 2),
              (1...12).contains(mo), d >= 1, d <= daysIn(month: mo, year: y) else { return nil }
        var seconds = Double(days(fromCivil: y, mo, d) * 86400)
        var i = 10
        if i == b.count { return seconds }
        guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ") else { return nil }
        guard let h = num(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let mi = num(i + 4, 2), h < 24, mi < 60 else { return nil }
        seconds += Double(h * 3600 + mi * 60)
        i += 6
        if i < b.count, b[i] == UInt8(ascii: ":") {
            guard let sec = num(i + 1, 2), sec < 61 else { return nil }
            seconds += Double(sec)
            i += 3
            if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
                var j = i + 1, scale = 0.1, fraction = 0.0
                while j < b.count, b[j] >= 48, b[j] <= 57 { fraction += Double(b[j] - 48) * scale; scale /= 10; j += 1 }
                guard j > i + 1 else { return nil }
                seconds += fraction
                i = j
            }
        }
        if i == b.count { return seconds }
        if b[i] == UInt8(ascii: " ") { i += 1 }   // `2024-05-01 10:00:00 +0200` (YAML, Jekyll)
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") { return i + 1 == b.count ? seconds : nil }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") else { return nil }
        // ±H, ±HH, ±HHMM or ±HH:MM
        let zone = b[(i + 1)...].split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        func digits(_ part: ArraySlice<UInt8>) -> Int64? {
            guard !part.isEmpty, part.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return part.reduce(0) { $0 * 10 + Int64($1 - 48) }
        }
        var zh: Int64, zm: Int64 = 0
        if zone.count == 2, zone[0].count <= 2, zone[1].count == 2, let h = digits(zone[0]), let m = digits(zone[1]) {
            zh = h; zm = m
        } else if zone.count == 1, zone[0].count <= 2, let h = digits(zone[0]) {
            zh = h
        } else if zone.count == 1, zone[0].count == 4, let h = digits(zone[0].prefix(2)), let m = digits(zone[0].suffix(2)) {
            zh = h; zm = m
        } else {
            return nil
        }
        guard zh <= 23, zm <= 59 else { return nil }
        let offset = Double(zh * 3600 + zm * 60)
        return b[i] == UInt8(ascii: "+") ? seconds - offset : seconds + offset
    }

    private static func daysIn(month m: Int64, year y: Int64) -> Int64 {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    private static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
