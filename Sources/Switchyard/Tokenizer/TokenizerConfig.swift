import Foundation

/// What Switchyard reads from a model directory's `tokenizer_config.json`: the BOS/EOS token
/// strings and the chat template. Read through `JSONFields`, so a malformed file or field is an
/// error naming the file and the JSON path (`bos_token.content`), never silently ignored.
struct TokenizerConfig {
    /// `bos_token`: either `"<s>"` or `{"content": "<s>", …}`.
    var bosToken: String?
    var eosToken: String?
    /// `chat_template`: a string, or a list of `{"name", "template"}` (the one named "default").
    var chatTemplate: String?

    /// The config in `directory`, nil when it has no tokenizer_config.json.
    static func load(directory: URL) throws -> TokenizerConfig? {
        let url = directory.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SwitchyardError.io(path: url.path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
        return try TokenizerConfig(JSONFields(data: data, path: url.path))
    }

    init(_ fields: JSONFields) throws {
        bosToken = try Self.token(fields, "bos_token")
        eosToken = try Self.token(fields, "eos_token")
        if fields.value("chat_template")?.arrayValue != nil {
            let templates = try fields.array("chat_template") ?? []
            for (i, item) in templates.enumerated() {
                guard let entries = item.objectEntries else {
                    throw fields.error("chat_template[\(i)]", "expected an object, found \(JSONFields.describe(item))")
                }
                let named = JSONFields(
                    entries: entries, path: fields.path, prefix: fields.field("chat_template[\(i)]") + ".")
                if try named.string("name") == "default" {
                    chatTemplate = try named.string("template")
                    break
                }
            }
        } else {
            chatTemplate = try fields.string("chat_template")
        }
    }

    /// A special token given as a string or as an AddedToken object's `content`.
    private static func token(_ fields: JSONFields, _ key: String) throws -> String? {
        if fields.value(key)?.objectEntries != nil { return try fields.object(key)?.string("content") }
        return try fields.string(key)
    }
}
