/// A condition on document metadata, written as JSON in the shape Chroma and MongoDB use:
///
/// ```json
/// {"lang": "en"}                                  equality (also matches an array element)
/// {"year": {"$gte": 2020, "$lt": 2024}}           ranges: numbers, or ISO 8601 dates as strings
/// {"tags": {"$contains": "physics"}}              an array holding a value
/// {"status": {"$in": ["draft", "review"]}}        one of ($nin: none of)
/// {"$or": [{"lang": "de"}, {"path": {"$glob": "*/notes/*"}}]}
/// {"$not": {"draft": true}}     {"reviewed": {"$exists": false}}     {"lang": {"$ne": "en"}}
/// ```
///
/// Several fields, or several operators on one field, must all hold. `$ne`, `$nin`, `$not` and
/// `$exists: false` also match documents that lack the field.
public indirect enum MetadataFilter: Sendable, Equatable {
    case and([MetadataFilter])
    case or([MetadataFilter])
    case not(MetadataFilter)
    case field(String, Condition)

    /// A test on one field's value.
    public enum Condition: Sendable, Equatable {
        /// Equal to a scalar (or an element of an array field equal to it).
        case equals(JSONValue)
        /// Compared with a number or an ISO 8601 date.
        case greater(Bound, orEqual: Bool)
        case less(Bound, orEqual: Bool)
        /// The field is present (with any value, null included).
        case exists
        /// An array field holding the scalar.
        case contains(JSONValue)
        /// A string matching a GLOB pattern (`*`, `?`, `[...]`; case-sensitive).
        case glob(String)
    }

    /// A range bound: numbers compare with numbers, dates with dates.
    public enum Bound: Sendable, Equatable {
        case number(JSONValue)
        /// Seconds since 1970.
        case date(Double)
    }

    /// The operators a field accepts, for error messages.
    static let fieldOperators = ["$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$contains", "$glob", "$not"]

    /// Parses a filter from JSON text.
    public init(json: String) throws {
        let value: JSONValue
        do { value = try JSONValue.parse(json) } catch let e as JSONSyntaxError {
            throw Self.error("is not valid JSON (\(e)); write an object such as {\"lang\": \"en\"}")
        }
        try self.init(value)
    }

    /// Parses a filter from a parsed JSON value (an object).
    public init(_ value: JSONValue) throws {
        self = try Self.parseObject(value, context: "the filter")
    }

    /// Documents whose path matches a GLOB pattern (what `--path` means).
    public static func pathGlob(_ pattern: String) -> MetadataFilter { .field("path", .glob(pattern)) }

    /// Both filters (nil stands for no condition).
    public static func both(_ a: MetadataFilter?, _ b: MetadataFilter?) -> MetadataFilter? {
        switch (a, b) {
        case let (a?, b?): return .and([a, b])
        case let (a?, nil): return a
        case let (nil, b?): return b
        case (nil, nil): return nil
        }
    }

    static func error(_ message: String) -> StoreError { StoreError(.invalidArgument, "filter: " + message) }

    private static func parseObject(_ value: JSONValue, context: String) throws -> MetadataFilter {
        guard case .object(let o) = value else {
            throw error("\(context) must be a JSON object such as {\"lang\": \"en\"}, not \(value.typeName)")
        }
        var parts: [MetadataFilter] = []
        for key in o.keys.sorted() {
            let v = o[key]!
            switch key {
            case "$and", "$or":
                guard case .array(let items) = v, !items.isEmpty else {
                    throw error("\(key) needs a non-empty array of filters, not \(v.typeName)")
                }
                let subs = try items.enumerated().map { try parseObject($1, context: "\(key)[\($0)]") }
                parts.append(key == "$and" ? .and(subs) : .or(subs))
            case "$not":
                parts.append(.not(try parseObject(v, context: "$not")))
            default:
                if key.hasPrefix("$") {
                    throw error("unknown operator '\(key)' in \(context): at this level use $and, $or, $not or a field name")
                }
                parts.append(try parseField(key, v))
            }
        }
        guard !parts.isEmpty else { throw error("\(context) is empty: give at least one condition") }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    private static func parseField(_ field: String, _ value: JSONValue) throws -> MetadataFilter {
        switch value {
        case .array:
            throw error("field '\(field)': an array is not a value to compare with; use {\"$in\": [...]} or {\"$contains\": value}")
        case .object(let ops):
            guard !ops.isEmpty else { throw error("field '\(field)': empty operator object; use e.g. {\"$eq\": value}") }
            var parts: [MetadataFilter] = []
            for op in ops.keys.sorted() {
                parts.append(try parseOperator(field, op, ops[op]!))
            }
            return parts.count == 1 ? parts[0] : .and(parts)
        default:
            return .field(field, .equals(value))
        }
    }

    private static func parseOperator(_ field: String, _ op: String, _ v: JSONValue) throws -> MetadataFilter {
        func scalar() throws -> JSONValue {
            switch v {
            case .array, .object: throw error("field '\(field)', operator '\(op)': needs a string, number, boolean or null, not \(v.typeName)")
            default: return v
            }
        }
        func bound() throws -> Bound {
            switch v {
            case .int, .double: return .number(v)
            case .string(let s):
                if let t = Metadata.parseISODate(s) { return .date(t) }
                throw error("field '\(field)', operator '\(op)': \"\(s)\" is neither a number nor an ISO 8601 date (2024-05-01 or 2024-05-01T12:00:00Z)")
            default:
                throw error("field '\(field)', operator '\(op)': needs a number or an ISO 8601 date string, not \(v.typeName)")
            }
        }
        func list() throws -> [JSONValue] {
            guard case .array(let items) = v else {
                throw error("field '\(field)', operator '\(op)': needs an array of values, not \(v.typeName)")
            }
            for item in items {
                if case .array = item { throw error("field '\(field)', operator '\(op)': the array must hold strings, numbers, booleans or null") }
                if case .object = item { throw error("field '\(field)', operator '\(op)': the array must hold strings, numbers, booleans or null") }
            }
            return items
        }
        switch op {
        case "$eq": return .field(field, .equals(try scalar()))
        case "$ne": return .not(.field(field, .equals(try scalar())))
        case "$in": return .or(try list().map { .field(field, .equals($0)) })
        case "$nin": return .not(.or(try list().map { .field(field, .equals($0)) }))
        case "$gt": return .field(field, .greater(try bound(), orEqual: false))
        case "$gte": return .field(field, .greater(try bound(), orEqual: true))
        case "$lt": return .field(field, .less(try bound(), orEqual: false))
        case "$lte": return .field(field, .less(try bound(), orEqual: true))
        case "$exists":
            guard case .bool(let b) = v else { throw error("field '\(field)', operator '$exists': needs true or false, not \(v.typeName)") }
            return b ? .field(field, .exists) : .not(.field(field, .exists))
        case "$contains": return .field(field, .contains(try scalar()))
        case "$glob":
            guard case .string(let s) = v else { throw error("field '\(field)', operator '$glob': needs a pattern string, not \(v.typeName)") }
            return .field(field, .glob(s))
        case "$not":
            guard case .object = v else {
                throw error("field '\(field)', operator '$not': needs an operator object such as {\"$gt\": 5}, not \(v.typeName)")
            }
            return .not(try parseField(field, v))
        default:
            let hint = op.hasPrefix("$") ? "unknown operator '\(op)'" : "'\(op)' is not an operator (nested fields are not supported)"
            throw error("field '\(field)': \(hint); use one of \(fieldOperators.joined(separator: ", "))")
        }
    }
}
