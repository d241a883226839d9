import Foundation

/// A JSON object from `tokenizer.json` together with where it came from, so that every typed
/// accessor can throw a `TokenizerError` naming the file and the JSON path of the bad field.
///
/// Parsing uses `JSONSerialization`; values are `[String: Any]`, `[Any]`, `String`, `NSNumber`
/// and `NSNull` as Foundation produces them.
struct TokenizerJSON {
    let fields: [String: Any]
    /// Dotted path of this object inside the file, e.g. `pre_tokenizer.pretokenizers[0]`.
    let path: String
    /// The file (or other origin) named in errors.
    let source: String

    /// Parses `data` as a JSON document whose top level is an object.
    static func parse(_ data: Data, source: String) throws -> TokenizerJSON {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw TokenizerError.malformedJSON(source: source, reason: Self.describe(error))
        }
        guard let fields = root as? [String: Any] else {
            throw TokenizerError.malformedJSON(source: source, reason: "the top level is not a JSON object")
        }
        return TokenizerJSON(fields: fields, path: "", source: source)
    }

    private static func describe(_ error: Error) -> String {
        let ns = error as NSError
        if let detail = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return detail }
        return ns.localizedDescription
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func invalid(_ key: String, _ expected: String) -> TokenizerError {
        .invalidField(source: source, path: childPath(key), expected: expected)
    }

    /// True when `key` is absent or JSON `null`.
    func isNull(_ key: String) -> Bool {
        guard let value = fields[key] else { return true }
        return value is NSNull
    }

    func string(_ key: String) throws -> String {
        guard let value = fields[key] as? String else { throw invalid(key, "a string") }
        return value
    }

    /// A string, or nil when the key is absent or null.
    func optionalString(_ key: String) throws -> String? {
        if isNull(key) { return nil }
        return try string(key)
    }

    func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        if isNull(key) { return defaultValue }
        guard let flag = fields[key] as? Bool else { throw invalid(key, "true or false") }
        return flag
    }

    func int(_ key: String) throws -> Int {
        guard let value = Self.integer(fields[key]) else { throw invalid(key, "an integer") }
        return value
    }

    func object(_ key: String) throws -> TokenizerJSON {
        guard let value = fields[key] as? [String: Any] else { throw invalid(key, "a JSON object") }
        return TokenizerJSON(fields: value, path: childPath(key), source: source)
    }

    /// An object, or nil when the key is absent or null.
    func optionalObject(_ key: String) throws -> TokenizerJSON? {
        if isNull(key) { return nil }
        return try object(key)
    }

    func array(_ key: String) throws -> [Any] {
        guard let value = fields[key] as? [Any] else { throw invalid(key, "a JSON array") }
        return value
    }

    /// The elements of an array of objects, each with its own path (`key[i]`).
    func objects(_ key: String) throws -> [TokenizerJSON] {
        let items = try array(key)
        return try items.enumerated().map { index, item in
            let itemPath = "\(childPath(key))[\(index)]"
            guard let fields = item as? [String: Any] else {
                throw TokenizerError.invalidField(source: source, path: itemPath, expected: "a JSON object")
            }
            return TokenizerJSON(fields: fields, path: itemPath, source: source)
        }
    }

    /// The `type` field of a pipeline component.
    func type() throws -> String { try string("type") }

    /// An integral JSON number as `Int` (nil for strings, fractional numbers, null, ...).
    @inline(__always)
    static func integer(_ value: Any?) -> Int? {
        if let int = value as? Int { return int }
        if let number = value as? NSNumber {
            let double = number.doubleValue
            if double.rounded() == double, abs(double) < 1e15 { return Int(double) }
        }
        return nil
    }
}
