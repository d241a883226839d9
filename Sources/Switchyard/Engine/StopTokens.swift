/// The end-of-sequence rule, in one place: which tokens end a generation, and which one is
/// appended after a completion when scoring or composing. Generate, eval, route, compose, the
/// demo and the server all use it.
public enum StopTokens {
    /// Every token that ends a generation: the config's end-of-sequence ids (a config or
    /// generation_config.json may list several) and the tokenizer's eos token.
    public static func of(model: LlamaModel, tokenizer: Tokenizer?) -> Set<Int> {
        var stops = Set(model.config.eosTokenIDs)
        if let eos = tokenizer?.eosTokenID { stops.insert(eos) }
        return stops
    }

    /// The one end-of-sequence token a completion ends with (a member of `of(model:tokenizer:)`):
    /// the tokenizer's eos token, else the config's first end-of-sequence id; nil when neither
    /// names one.
    public static func endOfCompletion(model: LlamaModel, tokenizer: Tokenizer?) -> Int? {
        tokenizer?.eosTokenID ?? model.config.eosTokenIDs.first
    }
}
