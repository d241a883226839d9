import Foundation

/// A pattern that finds where to split text: the `Split` pre-tokenizer's regex or string, and
/// the GPT-2 regex inside the `ByteLevel` pre-tokenizer.
///
/// Matching is on Unicode scalars (like the Oniguruma engine HF uses), never on grapheme
/// clusters: `"e\u{301}"` is two scalars and `\p{L}` matches only the first.
protocol SplitPattern: Sendable {
    /// The non-overlapping matches in `text`, left to right, as scalar-offset ranges.
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>]
}

extension SplitPattern {
    /// HF's `Pattern::find_matches`: the whole of `text` cut into consecutive segments, each
    /// flagged as a match or not. An empty text gives one empty non-match.
    func segments(of text: [Unicode.Scalar]) -> [(range: Range<Int>, isMatch: Bool)] {
        if text.isEmpty { return [(0..<0, false)] }
        var out: [(range: Range<Int>, isMatch: Bool)] = []
        var previous = 0
        for match in matches(in: text) {
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

/// A regex run by ICU. ICU and Oniguruma agree on the syntax that tokenizer files use (`\p{L}`,
/// `\s`, `(?i:…)`, lookahead, possessive and lazy quantifiers); `\s` is the Unicode White_Space
/// property in both.
struct ICURegexPattern: SplitPattern, @unchecked Sendable {
    // NSRegularExpression is immutable after creation and documented as safe to share.
    let regex: NSRegularExpression

    init(pattern: String, path: String, source: String) throws {
        do {
            regex = try NSRegularExpression(pattern: pattern, options: [])
        } catch {
            throw TokenizerError.invalidRegex(
                source: source, path: path, pattern: pattern, reason: "\(error)")
        }
    }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        if text.isEmpty { return [] }
        // NSRegularExpression reports UTF-16 offsets; map them back to scalar offsets.
        var string = String()
        string.unicodeScalars.append(contentsOf: text)
        var scalarIndexAtUTF16: [Int] = []
        scalarIndexAtUTF16.reserveCapacity(text.count + 1)
        for (index, scalar) in text.enumerated() {
            scalarIndexAtUTF16.append(index)
            if scalar.value > 0xFFFF { scalarIndexAtUTF16.append(index + 1) }  // low surrogate
        }
        scalarIndexAtUTF16.append(text.count)
        let whole = NSRange(location: 0, length: scalarIndexAtUTF16.count - 1)
        var out: [Range<Int>] = []
        for result in regex.matches(in: string, options: [], range: whole) {
            let range = result.range
            guard range.location != NSNotFound else { continue }
            let lower = scalarIndexAtUTF16[range.location]
            let upper = scalarIndexAtUTF16[range.location + range.length]
            if let last = out.last, lower < last.upperBound { continue }
            out.append(lower..<max(lower, upper))
        }
        return out
    }
}
