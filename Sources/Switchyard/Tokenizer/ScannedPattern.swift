/// Hand-written scanners for the three split regexes that byte-level BPE tokenizers use, exact
/// equivalents of running the regex with a backtracking engine (Oniguruma, ICU):
///
/// - GPT-2 (also the `ByteLevel` pre-tokenizer's built-in regex):
///   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - Llama-3 (`\p{N}{1,3}`) and Qwen2 / SmolLM2-style (`\p{N}`):
///   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
///
/// Each scanner tries the alternatives in order at the current position, like the regex engine,
/// and every position is covered by some alternative, so the matches tile the text.
/// `\s` is the Unicode White_Space property, `\p{L}` the L* categories, `\p{N}` Nd/Nl/No.
struct ScannedPattern: SplitPattern {
    enum Flavor: Sendable {
        case gpt2
        /// Llama-3 family; `maxDigits` is 3 for Llama-3, 1 for Qwen2.
        case llama3(maxDigits: Int)
    }
    let flavor: Flavor

    static let gpt2Pattern =
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The scanner for `pattern`, or nil when the pattern is not one of the known ones.
    init?(pattern: String) {
        switch pattern {
        case Self.gpt2Pattern: flavor = .gpt2
        case Self.llama3Pattern: flavor = .llama3(maxDigits: 3)
        case Self.qwen2Pattern: flavor = .llama3(maxDigits: 1)
        default: return nil
        }
    }

    init(flavor: Flavor) { self.flavor = flavor }

    /// Linear time whatever the text: the policy never comes into play.
    func matches(in text: [Unicode.Scalar], policy: RegexLimitPolicy) -> [Range<Int>] {
        let classes = text.map(ScalarClass.init)
        var out: [Range<Int>] = []
        out.reserveCapacity(text.count / 3 + 1)
        var position = 0
        while position < text.count {
            let end: Int
            switch flavor {
            case .gpt2: end = gpt2Match(text, classes, at: position)
            case .llama3(let maxDigits): end = llama3Match(text, classes, at: position, maxDigits: maxDigits)
            }
            out.append(position..<end)
            position = end
        }
        return out
    }

    // MARK: GPT-2

    private func gpt2Match(_ text: [Unicode.Scalar], _ classes: [ScalarClass], at i: Int) -> Int {
        let n = text.count
        let c = text[i]
        // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
        if c == "'", i + 1 < n {
            switch text[i + 1] {
            case "s", "t", "m", "d": return i + 2
            case "r" where i + 2 < n && text[i + 2] == "e": return i + 3
            case "v" where i + 2 < n && text[i + 2] == "e": return i + 3
            case "l" where i + 2 < n && text[i + 2] == "l": return i + 3
            default: break
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
        for wanted in [ScalarClass.letter, .number, .other] {
            var j = i
            if c == " ", i + 1 < n, classes[i + 1] == wanted { j = i + 1 }
            if classes[j] == wanted {
                return run(of: wanted, in: classes, from: j)
            }
        }
        // Only whitespace is left: `\s+(?!\S)|\s+`.
        return whitespaceMatch(classes, at: i)
    }

    // MARK: Llama-3 / Qwen2

    private func llama3Match(
        _ text: [Unicode.Scalar], _ classes: [ScalarClass], at i: Int, maxDigits: Int
    ) -> Int {
        let n = text.count
        let c = text[i]
        // (?i:'s|'t|'re|'ve|'m|'ll|'d): ASCII letters either case; `ſ` (U+017F) case-folds to `s`.
        if c == "'", i + 1 < n {
            let next = text[i + 1]
            switch foldedASCII(next) {
            case "s", "t", "m", "d": return i + 2
            case "r" where i + 2 < n && foldedASCII(text[i + 2]) == "e": return i + 3
            case "v" where i + 2 < n && foldedASCII(text[i + 2]) == "e": return i + 3
            case "l" where i + 2 < n && foldedASCII(text[i + 2]) == "l": return i + 3
            default: break
            }
        }
        let cls = classes[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if cls == .letter { return run(of: .letter, in: classes, from: i) }
        if cls != .number, !isLineBreak(c), i + 1 < n, classes[i + 1] == .letter {
            return run(of: .letter, in: classes, from: i + 1)
        }
        // \p{N}{1,maxDigits}
        if cls == .number {
            var j = i + 1
            while j < n, j - i < maxDigits, classes[j] == .number { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var j = i
        if c == " ", i + 1 < n, classes[i + 1] == .other { j = i + 1 }
        if classes[j] == .other {
            j = run(of: .other, in: classes, from: j)
            while j < n, isLineBreak(text[j]) { j += 1 }
            return j
        }
        // Only whitespace is left. `\s*[\r\n]+`: the run of whitespace up to and including its
        // last line break (greedy `\s*` backs off to the last `\r`/`\n`).
        let wsEnd = run(of: .space, in: classes, from: i)
        var k = wsEnd
        while k > i {
            if isLineBreak(text[k - 1]) { return k }
            k -= 1
        }
        return whitespaceMatch(classes, at: i)
    }

    // MARK: Shared pieces

    /// `\s+(?!\S)|\s+` at a whitespace position: the whole run if it ends the text; otherwise
    /// the run less its last character (which then prefixes the next word), or a single
    /// character when the run is one long.
    private func whitespaceMatch(_ classes: [ScalarClass], at i: Int) -> Int {
        let end = run(of: .space, in: classes, from: i)
        if end == classes.count { return end }
        return end - i >= 2 ? end - 1 : end
    }

    @inline(__always)
    private func run(of wanted: ScalarClass, in classes: [ScalarClass], from start: Int) -> Int {
        var j = start
        while j < classes.count, classes[j] == wanted { j += 1 }
        return j
    }

    @inline(__always)
    private func isLineBreak(_ scalar: Unicode.Scalar) -> Bool { scalar == "\r" || scalar == "\n" }

    /// Lowercase ASCII letter for case-insensitive comparison; `ſ` folds to `s`.
    @inline(__always)
    private func foldedASCII(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if (0x41...0x5A).contains(scalar.value) { return Unicode.Scalar(scalar.value + 32)! }
        if scalar.value == 0x17F { return "s" }
        return scalar
    }
}

/// The four classes the split regexes distinguish.
enum ScalarClass: UInt8, Sendable {
    /// `\p{L}`: general categories Lu, Ll, Lt, Lm, Lo.
    case letter
    /// `\p{N}`: general categories Nd, Nl, No.
    case number
    /// `\s`: the White_Space property.
    case space
    /// Everything else: `[^\s\p{L}\p{N}]`.
    case other

    private static let asciiTable: [ScalarClass] = (0..<128).map { value in
        switch value {
        case 0x41...0x5A, 0x61...0x7A: return .letter
        case 0x30...0x39: return .number
        case 0x09...0x0D, 0x20: return .space
        default: return .other
        }
    }

    @inline(__always)
    init(_ scalar: Unicode.Scalar) {
        if scalar.value < 128 {
            self = Self.asciiTable[Int(scalar.value)]
            return
        }
        let properties = scalar.properties
        if properties.isWhitespace {
            self = .space
            return
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = .other
        }
    }
}
