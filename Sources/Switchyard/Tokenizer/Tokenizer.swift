import Foundation

/// A byte-level BPE tokenizer loaded from a Hugging Face `tokenizer.json` (the GPT-2, Llama-3,
/// SmolLM and Qwen2 family), producing the same ids as HF `tokenizers` 0.23.
///
/// Encoding runs HF's pipeline: added tokens are split out of the raw text (tokens marked
/// `normalized: false`, which includes special tokens), the rest is normalized and searched for
/// `normalized: true` added tokens, pre-tokenized into words, and each word is encoded by BPE.
/// With `addSpecialTokens`, the post-processor's template (e.g. BOS) is applied.
///
/// Immutable after loading and safe to share between threads; the per-word BPE cache inside is
/// lock-protected.
public final class Tokenizer: Sendable {
    /// Where the tokenizer came from (the file path), as used in error messages.
    public let source: String
    let model: BPEModel
    let normalizer: (any Normalizer)?
    let preTokenizer: (any PreTokenizer)?
    let postProcessor: PostProcessor?
    let decoder: (any TokenDecoder)?
    let addedVocabulary: AddedVocabulary

    /// The number of ids: the largest id in the vocabulary or the added tokens, plus one.
    public let vocabularySize: Int
    /// Ids of the added tokens marked `special` (BOS, EOS, PAD, chat markers...).
    public let specialTokenIDs: Set<Int>
    /// The beginning-of-sequence token, best effort: `tokenizer_config.json`'s `bos_token` when
    /// loaded with `load(modelDirectory:)`, else the special token the post-processor puts first,
    /// else a token with a common name (`<|begin_of_text|>`, `<s>`, `<|startoftext|>`, `<bos>`,
    /// `<|bos|>`). Nil if none is found.
    public let bosTokenID: Int?
    /// The end-of-sequence token, best effort: `tokenizer_config.json`'s `eos_token`, else the
    /// special token the post-processor puts last, else a token with a common name
    /// (`<|end_of_text|>`, `</s>`, `<|endoftext|>`, `<eos>`, `<|eos|>`). Nil if none is found.
    public let eosTokenID: Int?

    /// Loads a Hugging Face `tokenizer.json` (byte-level BPE family: GPT-2, Llama-3, SmolLM, Qwen2).
    /// Errors name the file's path.
    public convenience init(contentsOf url: URL) throws {
        try self.init(json: Self.read(url), source: url.path)
    }

    /// Parses the contents of a `tokenizer.json`; `source` (usually the path) is named in errors.
    public convenience init(json data: Data, source: String) throws {
        try self.init(json: data, source: source, configuredBOS: nil, configuredEOS: nil)
    }

    /// Loads `tokenizer.json` from a model directory. When the directory also has a
    /// `tokenizer_config.json`, its `bos_token` and `eos_token` decide `bosTokenID`/`eosTokenID`.
    public static func load(modelDirectory: URL) throws -> Tokenizer {
        let url = modelDirectory.appendingPathComponent("tokenizer.json")
        let data = try read(url)
        let config = try TokenizerConfig.load(directory: modelDirectory)
        return try Tokenizer(
            json: data, source: url.path, configuredBOS: config?.bosToken, configuredEOS: config?.eosToken)
    }

    private static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(source: url.path, reason: (error as NSError).localizedDescription)
        }
    }

    init(json data: Data, source: String, configuredBOS: String?, configuredEOS: String?) throws {
        let root = try TokenizerJSON.parse(data, source: source)
        self.source = source
        let model = try BPEModel(json: try root.object("model"))
        self.model = model
        let normalizer = try root.optionalObject("normalizer").map(makeNormalizer)
        self.normalizer = normalizer
        preTokenizer = try root.optionalObject("pre_tokenizer").map(makePreTokenizer)
        decoder = try root.optionalObject("decoder").map(makeDecoder)
        let postProcessor = try root.optionalObject("post_processor").map(makePostProcessor)
        self.postProcessor = postProcessor

        // Added tokens: ids are assigned the way HF does it (see `AddedVocabulary`).
        var entries: [AddedToken] = []
        for json in root.isNull("added_tokens") ? [] : try root.objects("added_tokens") {
            entries.append(try AddedToken.parse(json).token)
        }
        let added = AddedVocabulary(entries: entries, modelVocab: model.vocab, normalizer: normalizer)
        addedVocabulary = added
        specialTokenIDs = added.specialIDs
        let largestID = max(model.tokensByID.keys.max() ?? -1, added.tokenByID.keys.max() ?? -1)
        vocabularySize = largestID + 1
        // The post-processor's ids go straight into every prompt: each must be a token of this
        // tokenizer (an id of -1 or past the vocabulary would index outside the embeddings).
        if let postProcessor {
            for id in postProcessor.prefixIDs + postProcessor.suffixIDs
            where added.tokenByID[id] == nil && model.tokensByID[id] == nil {
                throw TokenizerError.invalidField(
                    source: source, path: "post_processor",
                    expected: "ids of tokens in the vocabulary or added_tokens (found id \(id))")
            }
        }

        // Best-effort BOS/EOS.
        func lookup(_ name: String) -> Int? { added.idByContent[TokenKey(name)] ?? model.vocab[TokenKey(name)] }
        bosTokenID =
            configuredBOS.flatMap(lookup)
            ?? postProcessor?.prefixIDs.first
            ?? ["<|begin_of_text|>", "<s>", "<|startoftext|>", "<bos>", "<|bos|>"].lazy.compactMap(lookup).first
        eosTokenID =
            configuredEOS.flatMap(lookup)
            ?? postProcessor?.suffixIDs.last
            ?? ["<|end_of_text|>", "</s>", "<|endoftext|>", "<eos>", "<|eos|>"].lazy.compactMap(lookup).first
    }

    // MARK: Encoding

    /// Encodes `text` to token ids. Added and special tokens written in the text (e.g.
    /// `"<|eot_id|>"`) are recognised and encoded as their single id, as HF does by default.
    /// With `addSpecialTokens`, the post-processor's template is applied (e.g. a BOS id is
    /// prepended); without a post-processor it changes nothing.
    ///
    /// A `Split` regex from the file runs with a step limit (`BoundedRegex`); should it exceed the
    /// limit on this text (catastrophic backtracking), `encode` stops splitting that piece and
    /// encodes the rest of it whole — valid ids, coarser pieces, bounded time. Use
    /// `encodeChecked`, which throws `TokenizerError.regexLimitExceeded` instead, wherever an
    /// error can be reported.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        // `.stopSplitting` never throws.
        (try? encode(text, addSpecialTokens: addSpecialTokens, policy: .stopSplitting)) ?? []
    }

    /// `encode`, but a `Split` regex that exceeds its step limit on this text is an error
    /// (`TokenizerError.regexLimitExceeded`, naming the file, the field and the pattern).
    public func encodeChecked(_ text: String, addSpecialTokens: Bool = false) throws -> [Int] {
        try encode(text, addSpecialTokens: addSpecialTokens, policy: .fail)
    }

    func encode(_ text: String, addSpecialTokens: Bool, policy: RegexLimitPolicy) throws -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        for segment in addedVocabulary.rawMatcher.split(Array(text.unicodeScalars)) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let rawText):
                let normalizedText = normalizer?.normalize(rawText) ?? rawText
                for inner in addedVocabulary.normalizedMatcher.split(normalizedText) {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let piece):
                        let words = try preTokenizer?.preTokenize([piece], policy: policy) ?? [piece]
                        for word in words { model.tokenize(word, into: &ids) }
                    }
                }
            }
        }
        if addSpecialTokens, let postProcessor { return postProcessor.process(ids) }
        return ids
    }

    // MARK: Decoding

    /// Decodes ids to text. Added and special tokens decode as their content; with
    /// `skipSpecialTokens`, special ones are left out. Ids that are neither in the vocabulary
    /// nor added tokens are skipped (as HF does). Invalid UTF-8 produced by byte tokens becomes
    /// U+FFFD. Without a decoder in the file, tokens are joined with spaces (HF's behaviour).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let tokens = ids.compactMap { tokenForDecoding($0, skipSpecialTokens: skipSpecialTokens) }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens)
    }

    /// The token string `decode` uses for `id`, or nil when it is unknown or skipped. Like HF,
    /// `skipSpecialTokens` drops any token spelled like a special token.
    func tokenForDecoding(_ id: Int, skipSpecialTokens: Bool) -> String? {
        guard let token = token(forID: id) else { return nil }
        if skipSpecialTokens, addedVocabulary.specialContents.contains(TokenKey(token)) { return nil }
        return token
    }

    // MARK: Vocabulary

    /// The id of an exact token string (an added token, else a vocabulary entry). Byte-level
    /// vocabulary entries are spelled in the byte alphabet: `"Ġthe"` for `" the"`.
    public func id(forToken token: String) -> Int? {
        let key = TokenKey(token)
        return addedVocabulary.idByContent[key] ?? model.vocab[key]
    }

    /// The token string of `id` (an added token's content, else the vocabulary entry), or nil.
    /// As in HF, an added token matched on normalized text is returned normalized.
    public func token(forID id: Int) -> String? {
        addedVocabulary.stringByID[id] ?? model.tokensByID[id]
    }
}
