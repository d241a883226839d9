/// Incremental detokenizer for generation: feed ids one at a time and get back the text they
/// complete.
///
/// The concatenation of everything returned by `append` and a final `flush` equals
/// `tokenizer.decode(allIDs, skipSpecialTokens:)`. Text is never returned in the middle of a
/// UTF-8 sequence: when a byte token leaves a character incomplete (an emoji spread over several
/// byte tokens), its bytes are held back until the sequence is completed, or broken, in which case
/// U+FFFD is emitted exactly where `decode` would put it.
///
/// For byte-level decoders this is O(1) per token. For other decoders it re-decodes the ids seen
/// so far at every step (correct, but quadratic in the length of the stream).
public struct StreamingDecoder: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private let byteLevel: Bool
    /// Byte-level path: bytes of a not yet complete UTF-8 sequence.
    private var pendingBytes: [UInt8] = []
    /// Generic path: every id so far and how many UTF-8 bytes of their decoding were returned.
    private var ids: [Int] = []
    private var emittedByteCount = 0

    /// A decoder for `tokenizer`; with `skipSpecialTokens`, special tokens produce no text.
    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        self.byteLevel = tokenizer.decoder?.isPureByteLevel ?? false
    }

    /// Adds one id; returns the text that is now complete (possibly empty).
    public mutating func append(_ id: Int) -> String {
        guard byteLevel else { return appendGeneric(id) }
        guard let token = tokenizer.tokenForDecoding(id, skipSpecialTokens: skipSpecialTokens) else { return "" }
        ByteLevelAlphabet.decodeBytes(of: token, into: &pendingBytes)
        let complete = Self.completePrefixLength(pendingBytes)
        if complete == 0 { return "" }
        let text = String(decoding: pendingBytes[..<complete], as: UTF8.self)
        pendingBytes.removeSubrange(..<complete)
        return text
    }

    /// Returns whatever is still held back (an incomplete sequence decodes to U+FFFD, as in
    /// `decode`) and resets the decoder for a new stream.
    public mutating func flush() -> String {
        if byteLevel {
            let text = String(decoding: pendingBytes, as: UTF8.self)
            pendingBytes.removeAll()
            return text
        }
        let full = Array(tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens).utf8)
        let rest = full.count > emittedByteCount ? String(decoding: full[emittedByteCount...], as: UTF8.self) : ""
        ids.removeAll()
        emittedByteCount = 0
        return rest
    }

    private mutating func appendGeneric(_ id: Int) -> String {
        ids.append(id)
        let full = Array(tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens).utf8)
        // Wait while the text ends in U+FFFD (EF BF BD): it may be an incomplete character.
        guard full.count > emittedByteCount, !full.ends(with: [0xEF, 0xBF, 0xBD]) else { return "" }
        let text = String(decoding: full[emittedByteCount...], as: UTF8.self)
        emittedByteCount = full.count
        return text
    }

    /// The length of the longest prefix of `bytes` after which nothing can change any more:
    /// everything except a trailing valid-but-unfinished UTF-8 sequence (a lead byte followed by
    /// fewer continuation bytes than it announces, all of them acceptable). A lead byte can never
    /// continue an earlier sequence, so decoding the prefix on its own gives exactly the text the
    /// whole stream gives there.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        var start = count - 1
        // Walk back over at most three continuation bytes to the candidate lead byte.
        while start >= 0, count - start <= 4 {
            let byte = bytes[start]
            if byte & 0xC0 == 0x80 {  // continuation byte
                start -= 1
                continue
            }
            guard let needed = sequenceLength(lead: byte), count - start < needed else { return count }
            // Check the continuation bytes seen so far are allowed after this lead.
            for offset in 1..<(count - start) {
                let (low, high) = continuationRange(lead: byte, offset: offset)
                if !(low...high).contains(bytes[start + offset]) { return count }
            }
            return start
        }
        return count
    }

    /// Bytes in the sequence a lead byte starts, or nil for a byte that cannot start one.
    private static func sequenceLength(lead: UInt8) -> Int? {
        switch lead {
        case 0xC2...0xDF: return 2
        case 0xE0...0xEF: return 3
        case 0xF0...0xF4: return 4
        default: return nil
        }
    }

    /// Allowed range of the continuation byte at `offset` (1-based) after `lead` (Unicode
    /// Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
    private static func continuationRange(lead: UInt8, offset: Int) -> (UInt8, UInt8) {
        guard offset == 1 else { return (0x80, 0xBF) }
        switch lead {
        case 0xE0: return (0xA0, 0xBF)
        case 0xED: return (0x80, 0x9F)
        case 0xF0: return (0x90, 0xBF)
        case 0xF4: return (0x80, 0x8F)
        default: return (0x80, 0xBF)
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
