/// The `pre_tokenizer` stage: cuts normalized text into pieces ("words") that the model encodes
/// independently, and for byte-level tokenizers maps each piece's bytes to the byte alphabet.
///
/// Like HF's `PreTokenizedString`, a pre-tokenizer works on the list of current pieces; empty
/// pieces are dropped after every step.
protocol PreTokenizer: Sendable {
    func preTokenize(_ pieces: [[Unicode.Scalar]], policy: RegexLimitPolicy) throws -> [[Unicode.Scalar]]
}

extension PreTokenizer {
    /// Pre-tokenizes, throwing when a split regex exceeds its step limit.
    func preTokenize(_ pieces: [[Unicode.Scalar]]) throws -> [[Unicode.Scalar]] {
        try preTokenize(pieces, policy: .fail)
    }
}

/// Builds the pre-tokenizer described by a `pre_tokenizer` JSON object.
///
/// Supported types: `ByteLevel`, `Split`, `Digits`, `Sequence`.
func makePreTokenizer(_ json: TokenizerJSON) throws -> any PreTokenizer {
    let type = try json.type()
    switch type {
    case "ByteLevel":
        return ByteLevelPreTokenizer(
            addPrefixSpace: try json.bool("add_prefix_space", default: true),
            useRegex: try json.bool("use_regex", default: true))
    case "Split":
        let patternJSON = try json.object("pattern")
        let patternPath = patternJSON.path
        let pattern: any SplitPattern
        if let regex = patternJSON.fields["Regex"] as? String {
            pattern = try makeSplitPattern(regex: regex, path: patternPath, source: json.source)
        } else if let literal = patternJSON.fields["String"] as? String {
            pattern = try makeSplitPattern(literal: literal, path: patternPath, source: json.source)
        } else {
            throw json.invalid("pattern", #"{"Regex": "…"} or {"String": "…"}"#)
        }
        let behaviorName = try json.string("behavior")
        guard let behavior = SplitBehavior(name: behaviorName) else {
            throw TokenizerError.unsupportedOption(
                source: json.source, path: json.childPath("behavior"),
                detail: "unknown split behavior \"\(behaviorName)\" (expected Isolated, Removed, "
                    + "MergedWithPrevious, MergedWithNext or Contiguous)")
        }
        return SplitPreTokenizer(pattern: pattern, behavior: behavior, invert: try json.bool("invert", default: false))
    case "Digits":
        return DigitsPreTokenizer(individualDigits: try json.bool("individual_digits", default: false))
    case "Sequence":
        return PreTokenizerSequence(steps: try json.objects("pretokenizers").map(makePreTokenizer))
    default:
        throw TokenizerError.unsupportedComponent(source: json.source, path: json.path, type: type)
    }
}

/// What `Split` does with the matched delimiters (HF's `SplitDelimiterBehavior`).
enum SplitBehavior: Sendable {
    case isolated, removed, mergedWithPrevious, mergedWithNext, contiguous

    /// Accepts the JSON spelling (`MergedWithPrevious`) and the Python one (`merged_with_previous`).
    init?(name: String) {
        switch name.lowercased().replacingOccurrences(of: "_", with: "") {
        case "isolated": self = .isolated
        case "removed": self = .removed
        case "mergedwithprevious": self = .mergedWithPrevious
        case "mergedwithnext": self = .mergedWithNext
        case "contiguous": self = .contiguous
        default: return nil
        }
    }

    /// HF's `NormalizedString::split`: turns match/non-match segments into the pieces to keep.
    func apply(_ segments: [(range: Range<Int>, isMatch: Bool)]) -> [Range<Int>] {
        switch self {
        case .isolated:
            return segments.map(\.range)
        case .removed:
            return segments.filter { !$0.isMatch }.map(\.range)
        case .contiguous:
            var out: [Range<Int>] = []
            var previousMatch = false
            for segment in segments {
                if segment.isMatch == previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<segment.range.upperBound
                } else {
                    out.append(segment.range)
                }
                previousMatch = segment.isMatch
            }
            return out
        case .mergedWithPrevious:
            var out: [Range<Int>] = []
            var previousMatch = false
            for segment in segments {
                if segment.isMatch, !previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<segment.range.upperBound
                } else {
                    out.append(segment.range)
                }
                previousMatch = segment.isMatch
            }
            return out
        case .mergedWithNext:
            var reversed: [Range<Int>] = []
            var previousMatch = false
            for segment in segments.reversed() {
                if segment.isMatch, !previousMatch, let last = reversed.last {
                    reversed[reversed.count - 1] = segment.range.lowerBound..<last.upperBound
                } else {
                    reversed.append(segment.range)
                }
                previousMatch = segment.isMatch
            }
            return reversed.reversed()
        }
    }
}

/// Cuts every piece with `behavior`, dropping empty results.
private func split(
    _ pieces: [[Unicode.Scalar]], behavior: SplitBehavior,
    segments: ([Unicode.Scalar]) throws -> [(range: Range<Int>, isMatch: Bool)]
) rethrows -> [[Unicode.Scalar]] {
    var out: [[Unicode.Scalar]] = []
    out.reserveCapacity(pieces.count)
    for piece in pieces {
        for range in behavior.apply(try segments(piece)) where !range.isEmpty {
            out.append(Array(piece[range]))
        }
    }
    return out
}

/// `ByteLevel`: optionally prefixes each piece with a space, optionally splits it with the GPT-2
/// regex, then replaces every UTF-8 byte with its byte-alphabet character.
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool
    private static let gpt2 = ScannedPattern(flavor: .gpt2)

    func preTokenize(_ pieces: [[Unicode.Scalar]], policy: RegexLimitPolicy) throws -> [[Unicode.Scalar]] {
        var current = pieces
        if addPrefixSpace {
            // Applied to each piece, as HF does, unless it already starts with a space.
            current = current.map { piece in
                piece.isEmpty || piece[0] == " " ? piece : [" "] + piece
            }
        }
        if useRegex {
            current = try split(current, behavior: .isolated) { try Self.gpt2.segments(of: $0) }
        }
        return current.compactMap { piece in piece.isEmpty ? nil : ByteLevelAlphabet.encode(piece) }
    }
}

/// `Split`: cuts pieces at the matches of a regex or literal (or, with `invert`, at the text
/// between matches), keeping the delimiters as `behavior` says.
struct SplitPreTokenizer: PreTokenizer {
    let pattern: any SplitPattern
    let behavior: SplitBehavior
    let invert: Bool

    func preTokenize(_ pieces: [[Unicode.Scalar]], policy: RegexLimitPolicy) throws -> [[Unicode.Scalar]] {
        try split(pieces, behavior: behavior) { piece in
            let segments = try pattern.segments(of: piece, policy: policy)
            return invert ? segments.map { ($0.range, !$0.isMatch) } : segments
        }
    }
}

/// `Digits`: isolates numeric characters (`\p{N}`, Rust's `char::is_numeric`), each on its own
/// (`individual_digits`) or as runs.
struct DigitsPreTokenizer: PreTokenizer {
    let individualDigits: Bool

    func preTokenize(_ pieces: [[Unicode.Scalar]], policy: RegexLimitPolicy) -> [[Unicode.Scalar]] {
        split(pieces, behavior: individualDigits ? .isolated : .contiguous) { piece in
            // HF's char-predicate pattern: every numeric scalar is its own match.
            if piece.isEmpty { return [(0..<0, false)] }
            var out: [(range: Range<Int>, isMatch: Bool)] = []
            var last = 0
            for (index, scalar) in piece.enumerated() where ScalarClass(scalar) == .number {
                if last < index { out.append((last..<index, false)) }
                out.append((index..<index + 1, true))
                last = index + 1
            }
            if last < piece.count { out.append((last..<piece.count, false)) }
            return out
        }
    }
}

/// Applies several pre-tokenizers in order, each to all pieces produced by the previous one.
struct PreTokenizerSequence: PreTokenizer {
    let steps: [any PreTokenizer]

    func preTokenize(_ pieces: [[Unicode.Scalar]], policy: RegexLimitPolicy) throws -> [[Unicode.Scalar]] {
        try steps.reduce(pieces) { try $1.preTokenize($0, policy: policy) }
    }
}
