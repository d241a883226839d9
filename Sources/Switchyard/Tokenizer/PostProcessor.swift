/// The `post_processor` stage for a single sequence: fixed special-token ids put before and after
/// the encoded text when `encode(_:addSpecialTokens: true)` is asked for (pairs are not supported).
struct PostProcessor: Sendable {
    /// Ids put before the sequence (e.g. BOS).
    let prefixIDs: [Int]
    /// Ids put after the sequence (e.g. EOS or SEP).
    let suffixIDs: [Int]

    func process(_ ids: [Int]) -> [Int] { prefixIDs + ids + suffixIDs }
}

/// Builds the post-processor described by a `post_processor` JSON object.
///
/// Supported types: `TemplateProcessing` (its `single` template), `ByteLevel` (changes only
/// offsets, so nothing here), `RobertaProcessing` and `BertProcessing` (`cls` + sequence + `sep`),
/// and `Sequence` of these.
func makePostProcessor(_ json: TokenizerJSON) throws -> PostProcessor {
    let type = try json.type()
    switch type {
    case "ByteLevel":
        return PostProcessor(prefixIDs: [], suffixIDs: [])
    case "TemplateProcessing":
        return try templateProcessor(json)
    case "RobertaProcessing", "BertProcessing":
        func token(_ key: String) throws -> Int {
            // Serialized as ["<s>", 0]: the token string and its id.
            guard let pair = json.fields[key] as? [Any], pair.count == 2,
                let id = TokenizerJSON.integer(pair[1])
            else {
                throw json.invalid(key, #"a [token, id] pair such as ["<s>", 0]"#)
            }
            return id
        }
        return PostProcessor(prefixIDs: [try token("cls")], suffixIDs: [try token("sep")])
    case "Sequence":
        let steps = try json.objects("processors").map { try makePostProcessor($0) }
        // Each step wraps the previous result, so prefixes nest outside-in.
        let prefix = steps.reversed().flatMap(\.prefixIDs)
        let suffix = steps.flatMap(\.suffixIDs)
        return PostProcessor(prefixIDs: prefix, suffixIDs: suffix)
    default:
        throw TokenizerError.unsupportedComponent(source: json.source, path: json.path, type: type)
    }
}

/// `TemplateProcessing`'s `single` template, e.g. `[SpecialToken <|begin_of_text|>, Sequence A]`.
/// Each special token expands to the `ids` listed for it in `special_tokens`.
private func templateProcessor(_ json: TokenizerJSON) throws -> PostProcessor {
    let specialTokens = try json.optionalObject("special_tokens")
    func ids(ofSpecial name: String, path: String) throws -> [Int] {
        guard let entry = try specialTokens?.optionalObject(name),
            let rawIDs = entry.fields["ids"] as? [Any]
        else {
            throw TokenizerError.unknownToken(source: json.source, path: path, token: name)
        }
        return try rawIDs.map { raw in
            guard let id = TokenizerJSON.integer(raw) else {
                throw TokenizerError.invalidField(
                    source: json.source, path: "\(json.childPath("special_tokens")).\(name).ids",
                    expected: "an array of integer ids")
            }
            return id
        }
    }
    var prefix: [Int] = []
    var suffix: [Int] = []
    var seenSequence = false
    for (index, piece) in try json.objects("single").enumerated() {
        let path = "\(json.childPath("single"))[\(index)]"
        if let special = try piece.optionalObject("SpecialToken") {
            let tokenIDs = try ids(ofSpecial: try special.string("id"), path: path)
            if seenSequence { suffix += tokenIDs } else { prefix += tokenIDs }
        } else if piece.fields["Sequence"] != nil {
            if seenSequence {
                throw TokenizerError.unsupportedOption(
                    source: json.source, path: path, detail: "a single-sequence template with the sequence twice")
            }
            seenSequence = true
        } else {
            throw TokenizerError.invalidField(
                source: json.source, path: path, expected: #"{"SpecialToken": …} or {"Sequence": …}"#)
        }
    }
    return PostProcessor(prefixIDs: prefix, suffixIDs: suffix)
}
