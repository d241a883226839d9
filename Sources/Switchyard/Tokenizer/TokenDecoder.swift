/// The `decoder` stage: turns token strings back into text. Like HF's `Decoder::decode_chain`,
/// each step maps a list of token strings to a new list; the results are joined with no
/// separator at the end.
protocol TokenDecoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
}

/// Builds the decoder described by a `decoder` JSON object.
///
/// Supported types: `ByteLevel`, `Sequence`.
func makeDecoder(_ json: TokenizerJSON) throws -> any TokenDecoder {
    let type = try json.type()
    switch type {
    case "ByteLevel":
        return ByteLevelDecoder()
    case "Sequence":
        return DecoderSequence(steps: try json.objects("decoders").map(makeDecoder))
    default:
        throw TokenizerError.unsupportedComponent(source: json.source, path: json.path, type: type)
    }
}

extension TokenDecoder {
    /// The final text: the chain's outputs joined.
    func decode(_ tokens: [String]) -> String { decodeChain(tokens).joined() }

    /// True when this decoder is exactly one byte-level step, so the text is the UTF-8 decoding
    /// of the concatenated token bytes (what `StreamingDecoder` relies on for its fast path).
    var isPureByteLevel: Bool {
        if self is ByteLevelDecoder { return true }
        if let sequence = self as? DecoderSequence {
            return sequence.steps.count == 1 && sequence.steps[0].isPureByteLevel
        }
        return false
    }
}

/// `ByteLevel`: maps each token's characters back to bytes through the GPT-2 byte alphabet
/// (a token with a character outside the alphabet contributes its own UTF-8 bytes), concatenates
/// all bytes and decodes them as UTF-8, replacing each maximal invalid subsequence by U+FFFD
/// like Rust's `String::from_utf8_lossy`.
struct ByteLevelDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for token in tokens { ByteLevelAlphabet.decodeBytes(of: token, into: &bytes) }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

/// Applies several decoders in order.
struct DecoderSequence: TokenDecoder {
    let steps: [any TokenDecoder]

    func decodeChain(_ tokens: [String]) -> [String] {
        steps.reduce(tokens) { $1.decodeChain($0) }
    }
}
