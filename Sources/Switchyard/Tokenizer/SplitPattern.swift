import Foundation

/// What a split does when its regular expression exceeds the step limit (`BoundedRegex`).
enum RegexLimitPolicy: Sendable {
    /// Throw `TokenizerError.regexLimitExceeded` (`Tokenizer.encodeChecked`).
    case fail
    /// Keep the matches found so far and leave the rest of the piece unsplit (`Tokenizer.encode`,
    /// which cannot throw: valid ids, coarser pieces, bounded time).
    case stopSplitting
}

/// A pattern that finds where to split text: the `Split` pre-tokenizer's regex or string, and
/// the GPT-2 regex inside the `ByteLevel` pre-tokenizer.
///
/// Matching is on Unicode scalars (like the Oniguruma engine HF uses), never on grapheme
/// clusters: `"e\u{301}"` is two scalars and `\p{L}` matches only the first.
protocol SplitPattern: Sendable {
    /// The non-overlapping matches in `text`, left to right, as scalar-offset ranges.
    func matches(in text: [Unicode.Scalar], policy: RegexLimitPolicy) throws -> [Range<Int>]
}

extension SplitPattern {
    /// The matches, throwing when a regex exceeds its step limit.
    func matches(in text: [Unicode.Scalar]) throws -> [Range<Int>] { try matches(in: text, policy: .fail) }

    /// HF's `Pattern::find_matches`: the whole of `text` cut into consecutive segments, each
    /// flagged as a match or not. An empty text gives one empty non-match.
    func segments(of text: [Unicode.Scalar], policy: RegexLimitPolicy = .fail) throws -> [(
        range: Range<Int>, isMatch: Bool
    )] {
        if text.isEmpty { return [(0..<0, false)] }
        var out: [(range: Range<Int>, isMatch: Bool)] = []
        var previous = 0
        for match in try matches(in: text, policy: policy) {
            if previous != match.lowerBound { out.append((previous..<match.lowerBound, false)) }
            out.append((match, true))
            previous = match.upperBound
        }
        if previous != text.count { out.append((previous..<text.count, false)) }
        return out
    }
}

/// Compiles a pattern from `tokenizer.json`. The GPT-2, Llama-3 and Qwen2 split regexes are
/// recognised and run by hand-written scanners (`ScannedPattern`, several times faster and
/// checked against ICU in the tests); any other regex runs on ICU through
/// `NSRegularExpression`.
func makeSplitPattern(regex pattern: String, path: String, source: String) throws -> any SplitPattern {
    if let scanned = ScannedPattern(pattern: pattern) { return scanned }
    return try ICURegexPattern(pattern: pattern, path: path, source: source)
}

/// A literal string pattern (`{"String": …}`), matched as an escaped regex like HF does.
func makeSplitPattern(literal: String, path: String, source: String) throws -> any SplitPattern {
    try ICURegexPattern(pattern: NSRegularExpression.escapedPattern(for: literal), path: path, source: source)
}

/// A regex run by ICU (`BoundedRegex`: bounded work per scan). ICU and Oniguruma agree on the
/// syntax that tokenizer files use (`\p{L}`, `\s`, `(?i:…)`, lookahead, possessive and lazy
/// quantifiers); `\s` is the Unicode White_Space property in both.
struct ICURegexPattern: SplitPattern {
    let regex: BoundedRegex
    let path: String
    let source: String

    /// Steps allowed for a piece on top of one per 32 UTF-16 units: about 0.1–0.3 s of
    /// backtracking, several hundred times what the usual split patterns need for a whole prompt.
    static let baseSteps = 1000

    init(pattern: String, path: String, source: String) throws {
        do {
            regex = try BoundedRegex(pattern)
        } catch {
            throw TokenizerError.invalidRegex(source: source, path: path, pattern: pattern, reason: "\(error)")
        }
        self.path = path
        self.source = source
    }

    func matches(in text: [Unicode.Scalar], policy: RegexLimitPolicy) throws -> [Range<Int>] {
        if text.isEmpty { return [] }
        // ICU works on UTF-16; map its offsets back to scalar offsets.
        var units: [UInt16] = []
        units.reserveCapacity(text.count + 8)
        var scalarIndexAtUTF16: [Int] = []
        scalarIndexAtUTF16.reserveCapacity(text.count + 1)
        for (index, scalar) in text.enumerated() {
            units.append(contentsOf: scalar.utf16)
            scalarIndexAtUTF16.append(index)
            if scalar.value > 0xFFFF { scalarIndexAtUTF16.append(index + 1) }  // low surrogate
        }
        scalarIndexAtUTF16.append(text.count)
        let limit = BoundedRegex.stepLimit(base: Self.baseSteps, textLength: units.count)
        let (found, failure) = units.withUnsafeBufferPointer { regex.scan(utf16: $0, stepLimit: limit) }
        if let failure, policy == .fail {
            throw TokenizerError.regexLimitExceeded(
                source: source, path: path, pattern: regex.pattern, reason: "\(failure)")
        }
        var out: [Range<Int>] = []
        for range in found {
            let lower = scalarIndexAtUTF16[range.lowerBound]
            let upper = scalarIndexAtUTF16[range.upperBound]
            if let last = out.last, lower < last.upperBound { continue }
            out.append(lower..<max(lower, upper))
        }
        return out
    }
}
