import Foundation

/// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`), as the `tokenizer.json`
/// it was converted from: a byte-level BPE (`tokenizer.ggml.model` = `gpt2`) with its vocabulary,
/// merges, token types (control and user-defined tokens become added tokens), BOS/EOS and
/// `add_bos_token`, and the pre-tokenizer named by `tokenizer.ggml.pre`, mapped as llama.cpp maps
/// it (`llama-vocab.cpp`). Unknown pre-tokenizer names are refused rather than guessed.
public enum GGUFTokenizer {
    /// `tokenizer.ggml.pre` → the Hugging Face `pre_tokenizer` it stands for.
    static func preTokenizer(_ name: String) -> [String: Any]? {
        let byteLevel: [String: Any] = [
            "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true
        ]
        let byteLevelNoRegex: [String: Any] = [
            "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false
        ]
        func split(_ regex: String) -> [String: Any] {
            [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false],
                    byteLevelNoRegex
                ]
            ]
        }
        switch name {
        case "gpt2", "default", "gpt-2":
            return byteLevel
        case "smollm", "starcoder", "refact", "codeshell":
            // llama.cpp: "\\p{N}" then the GPT-2 pattern = HF: Digits(individual) + ByteLevel.
            return ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        case "llama-bpe", "llama3", "smaug-bpe":
            return split(
                #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            )
        case "qwen2":
            return split(
                #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            )
        default:
            return nil
        }
    }

    /// Builds the tokenizer from `file`'s metadata.
    public static func load(_ file: GGUFFile) throws -> Tokenizer {
        let m = file.metadata, source = file.path
        func fail(_ key: String, _ reason: String) -> SwitchyardError {
            .config(path: source, field: key, reason: reason)
        }
        guard let model = m["tokenizer.ggml.model"]?.string else {
            throw fail("tokenizer.ggml.model", "missing (no tokenizer in this GGUF)")
        }
        guard model == "gpt2" else {
            throw SwitchyardError.unsupported(
                path: source, what: "tokenizer.ggml.model '\(model)' (byte-level BPE 'gpt2' is supported)")
        }
        let preName = m["tokenizer.ggml.pre"]?.string ?? "default"
        guard let pre = preTokenizer(preName) else {
            throw SwitchyardError.unsupported(
                path: source,
                what:
                    "tokenizer.ggml.pre '\(preName)' (known: gpt2, default, smollm, starcoder, refact, codeshell, llama-bpe, qwen2)"
            )
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.array?.map({ $0.string }), !tokens.isEmpty,
            !tokens.contains(where: { $0 == nil })
        else {
            throw fail("tokenizer.ggml.tokens", "missing or not an array of strings")
        }
        let types = m["tokenizer.ggml.token_type"]?.array?.map { $0.int ?? 1 } ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw fail("tokenizer.ggml.token_type", "\(types.count) entries for \(tokens.count) tokens")
        }
        guard let merges = m["tokenizer.ggml.merges"]?.array?.map({ $0.string }), !merges.contains(where: { $0 == nil })
        else {
            throw fail("tokenizer.ggml.merges", "missing or not an array of strings")
        }
        var vocab: [String: Int] = [:]
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            let t = token!
            guard vocab[t] == nil else {
                throw fail(
                    "tokenizer.ggml.tokens", "token \(t.debugDescription) appears twice (ids \(vocab[t]!) and \(id))")
            }
            vocab[t] = id
            let type = types.isEmpty ? 1 : types[id]
            if type == 3 || type == 4 {  // CONTROL, USER_DEFINED
                added.append([
                    "id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": type == 4, "special": type == 3
                ])
            }
        }
        func tokenID(_ key: String) throws -> Int? {
            guard let v = m[key] else { return nil }
            guard let i = v.int, i >= 0, i < tokens.count else {
                throw fail(key, "token id \(v) outside the \(tokens.count) tokens")
            }
            return i
        }
        let bos = try tokenID("tokenizer.ggml.bos_token_id"), eos = try tokenID("tokenizer.ggml.eos_token_id")
        var root: [String: Any] = [
            "version": "1.0",
            "model": [
                "type": "BPE", "vocab": vocab, "merges": merges.map { $0! }, "ignore_merges": false,
                "byte_fallback": false
            ],
            "pre_tokenizer": pre,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "added_tokens": added
        ]
        if m["tokenizer.ggml.add_bos_token"]?.bool == true, let bos {
            let b = tokens[bos]!
            root["post_processor"] = [
                "type": "TemplateProcessing",
                "single": [["SpecialToken": ["id": b, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                "pair": [
                    ["SpecialToken": ["id": b, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                    ["SpecialToken": ["id": b, "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]
                ],
                "special_tokens": [b: ["id": b, "ids": [bos], "tokens": [b]]]
            ]
        }
        let data = try JSONSerialization.data(withJSONObject: root)
        return try Tokenizer(
            json: data, source: source, configuredBOS: bos.map { tokens[$0]! }, configuredEOS: eos.map { tokens[$0]! })
    }
}

extension Tokenizer {
    /// The tokenizer of a model: `tokenizer.json` in a Hugging Face directory, or a GGUF file's
    /// metadata.
    public static func load(model path: URL) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory), !isDirectory.boolValue,
            GGUFFile.isGGUF(path)
        {
            return try GGUFTokenizer.load(GGUFFile(url: path))
        }
        return try load(modelDirectory: path)
    }
}
