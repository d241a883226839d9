import Foundation

/// A JSON object from a configuration file, read with strict types: `true` is not the integer 1,
/// `16.5` is not the integer 16, a string is not a number. Every error names the file and the
/// field's JSON path (`rope_scaling.factor`).
///
/// Built on `StrictJSON` (duplicate keys refused, nesting bounded, key order kept).
struct JSONFields {
    /// The object's members in file order.
    let entries: [(String, StrictJSON.Value)]
    /// The file, for errors.
    let path: String
    /// The JSON path of this object followed by a dot ("" at the root).
    let prefix: String

    init(entries: [(String, StrictJSON.Value)], path: String, prefix: String = "") {
        self.entries = entries
        self.path = path
        self.prefix = prefix
    }

    /// Parses `data` as a JSON object (the root of a configuration file).
    init(data: Data, path: String) throws {
        let value: StrictJSON.Value
        do { value = try StrictJSON.parse(Array(data)) } catch {
            throw SwitchyardError.config(path: path, field: "(root)", reason: "\(error)")
        }
        guard let entries = value.objectEntries else {
            throw SwitchyardError.config(path: path, field: "(root)", reason: "not a JSON object")
        }
        self.init(entries: entries, path: path)
    }

    var keys: [String] { entries.map(\.0) }

    /// The full JSON path of `key`, for errors.
    func field(_ key: String) -> String { prefix + key }

    func error(_ key: String, _ reason: String) -> SwitchyardError {
        .config(path: path, field: field(key), reason: reason)
    }

    /// The raw value, nil when absent.
    func raw(_ key: String) -> StrictJSON.Value? { entries.first { $0.0 == key }?.1 }

    /// The value, nil when absent or `null`.
    func value(_ key: String) -> StrictJSON.Value? {
        guard let v = raw(key), v != .null else { return nil }
        return v
    }

    func contains(_ key: String) -> Bool { value(key) != nil }

    /// An exact integer (no fraction, no exponent), nil when absent or null.
    func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = Self.integer(v) else { throw error(key, "expected an integer, found \(Self.describe(v))") }
        return i
    }

    func requiredInt(_ key: String) throws -> Int {
        guard let v = try int(key) else { throw error(key, "missing") }
        return v
    }

    /// A finite number, nil when absent or null.
    func double(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard case let .number(d, _, _) = v else { throw error(key, "expected a number, found \(Self.describe(v))") }
        guard d.isFinite else { throw error(key, "expected a finite number, found \(Self.describe(v))") }
        return d
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case let .bool(b) = v else { throw error(key, "expected true or false, found \(Self.describe(v))") }
        return b
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case let .string(s) = v else { throw error(key, "expected a string, found \(Self.describe(v))") }
        return s
    }

    func object(_ key: String) throws -> JSONFields? {
        guard let v = value(key) else { return nil }
        guard let o = v.objectEntries else { throw error(key, "expected an object, found \(Self.describe(v))") }
        return JSONFields(entries: o, path: path, prefix: field(key) + ".")
    }

    func array(_ key: String) throws -> [StrictJSON.Value]? {
        guard let v = value(key) else { return nil }
        guard let a = v.arrayValue else { throw error(key, "expected a list, found \(Self.describe(v))") }
        return a
    }

    /// An integer value, or nil for anything else (booleans, fractions, out-of-range numbers).
    static func integer(_ v: StrictJSON.Value) -> Int? {
        guard case let .number(_, true, i?) = v else { return nil }
        return Int(exactly: i)
    }

    /// Compact JSON for an error message, cut after a few dozen characters (control characters
    /// and quotes escaped, so the message stays on one line).
    static func describe(_ v: StrictJSON.Value, limit: Int = 60) -> String {
        let s = render(v)
        return s.count > limit ? String(s.prefix(limit)) + "…" : s
    }

    static func render(_ v: StrictJSON.Value) -> String {
        switch v {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(d, isInteger, i):
            if isInteger, let i { return String(i) }
            return String(d)
        case let .string(s): return "\"" + EscapedText.json(s) + "\""
        case let .array(a): return "[" + a.map(render).joined(separator: ", ") + "]"
        case let .object(o):
            return "{" + o.map { "\"\(EscapedText.json($0.0))\": \(render($0.1))" }.joined(separator: ", ") + "}"
        }
    }
}
