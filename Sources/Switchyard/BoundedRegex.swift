import Foundation

#if canImport(_FoundationICU)
    import _FoundationICU
#endif

/// A regular expression from a file Switchyard does not control (a tokenizer's `Split` pattern,
/// an adapter's `target_modules`, `rank_pattern` and `alpha_pattern` keys), compiled once and
/// matched with a bounded amount of work.
///
/// Backtracking engines (ICU, Oniguruma, Python's `re`) take exponential time on patterns such as
/// `(.*a){25}`. Matching here runs on ICU directly with `uregex_setTimeLimit`: ICU counts its work
/// in steps of 10,000 backtracking state saves and stops the match when the limit is reached,
/// which surfaces as `BoundedRegex.Failure.limitExceeded` instead of a hang. Steps are
/// deterministic (the same pattern and text always take the same number), so the limit behaves
/// the same on every machine and in tests.
///
/// The limit covers one whole scan (every match in the text), and callers scale it with the
/// text's length (`stepLimit(base:textLength:)`): ordinary patterns use about one step per 2,000
/// characters of text, the limit allows one per 32 characters on top of the base.
///
/// Where Foundation's ICU module is not available (Darwin), matching falls back to
/// `NSRegularExpression` without a limit.
public final class BoundedRegex: @unchecked Sendable {
    /// Why a pattern could not be compiled or matched.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The pattern does not compile: ICU's error name and the offset in the pattern.
        case invalid(reason: String)
        /// Matching needed more than `steps` units of work (10,000 backtracking states each).
        case limitExceeded(steps: Int)
        /// ICU stopped for another reason (backtrack stack exhausted, out of memory).
        case matchFailed(reason: String)

        /// One line saying why the pattern or the match failed.
        public var description: String {
            switch self {
            case let .invalid(reason): return "not a valid regular expression: \(reason)"
            case let .limitExceeded(steps):
                return
                    "matching takes too long (over \(steps) steps of 10,000 backtracking states; the pattern backtracks catastrophically on this text)"
            case let .matchFailed(reason): return "matching failed: \(reason)"
            }
        }
    }

    /// The ICU regular expression, as given.
    public let pattern: String

    #if canImport(_FoundationICU)
        /// The compiled pattern; never matched directly (matching state lives in per-call clones).
        private let compiled: OpaquePointer
    #else
        private let compiled: NSRegularExpression
    #endif

    /// Compiles `pattern` (ICU syntax, no flags).
    public init(_ pattern: String) throws {
        self.pattern = pattern
        #if canImport(_FoundationICU)
            var status = U_ZERO_ERROR
            var parseError = UParseError()
            let units = Array(pattern.utf16)
            let re = units.withUnsafeBufferPointer { p in
                swift_uregex_open(p.baseAddress, Int32(p.count), 0, &parseError, &status)
            }
            guard status.rawValue <= U_ZERO_ERROR.rawValue, let re else {
                if let re { swift_uregex_close(re) }
                let name = String(cString: swift_u_errorName(status))
                throw Failure.invalid(reason: "\(name) at offset \(parseError.offset)")
            }
            compiled = re
        #else
            do { compiled = try NSRegularExpression(pattern: pattern) } catch {
                throw Failure.invalid(reason: "\(error)")
            }
        #endif
    }

    deinit {
        #if canImport(_FoundationICU)
            swift_uregex_close(compiled)
        #endif
    }

    /// The step limit for a scan of `textLength` UTF-16 units: `base` plus one step per 32 units.
    public static func stepLimit(base: Int, textLength: Int) -> Int {
        min(Int(Int32.max), base + textLength / 32)
    }

    /// The non-overlapping matches in `text` (UTF-16 code units), left to right, as offset
    /// ranges — the same matches `NSRegularExpression.matches(in:)` reports.
    public func matches(utf16 text: UnsafeBufferPointer<UInt16>, stepLimit: Int) throws -> [Range<Int>] {
        let (ranges, failure) = scan(utf16: text, stepLimit: stepLimit)
        if let failure { throw failure }
        return ranges
    }

    /// The matches found before the scan stopped, and why it stopped early (nil: it did not).
    func scan(utf16 text: UnsafeBufferPointer<UInt16>, stepLimit: Int) -> (matches: [Range<Int>], failure: Failure?) {
        #if canImport(_FoundationICU)
            guard text.count < Int(Int32.max) else {
                return ([], .matchFailed(reason: "text longer than 2^31 UTF-16 units"))
            }
            guard let base = text.baseAddress else {
                // ICU wants a valid pointer even for an empty text.
                return [UInt16(0)].withUnsafeBufferPointer { one in
                    scan(utf16: UnsafeBufferPointer(rebasing: one[0..<0]), stepLimit: stepLimit)
                }
            }
            func failed(_ status: UErrorCode) -> Failure {
                .matchFailed(reason: String(cString: swift_u_errorName(status)))
            }
            var status = U_ZERO_ERROR
            // A clone per scan: the compiled pattern is shared, the matcher state is not.
            guard let re = swift_uregex_clone(compiled, &status), status.rawValue <= U_ZERO_ERROR.rawValue else {
                return ([], failed(status))
            }
            defer { swift_uregex_close(re) }
            let limit = Int32(clamping: max(1, stepLimit))
            swift_uregex_setTimeLimit(re, limit, &status)
            swift_uregex_setText(re, base, Int32(text.count), &status)
            guard status.rawValue <= U_ZERO_ERROR.rawValue else { return ([], failed(status)) }
            var out: [Range<Int>] = []
            while swift_uregex_findNext(re, &status) != 0 {
                let start = Int(swift_uregex_start(re, 0, &status)), end = Int(swift_uregex_end(re, 0, &status))
                guard status.rawValue <= U_ZERO_ERROR.rawValue else { break }
                out.append(start..<max(start, end))
            }
            if status == U_REGEX_TIME_OUT { return (out, .limitExceeded(steps: Int(limit))) }
            guard status.rawValue <= U_ZERO_ERROR.rawValue else { return (out, failed(status)) }
            return (out, nil)
        #else
            let string = String(decoding: text, as: UTF16.self)
            let ranges = compiled.matches(in: string, range: NSRange(location: 0, length: text.count)).compactMap { r in
                r.range.location == NSNotFound ? nil : r.range.location..<(r.range.location + r.range.length)
            }
            return (ranges, nil)
        #endif
    }

    /// The matches in `text`, as UTF-16 offset ranges.
    public func matches(in text: String, stepLimit: Int) throws -> [Range<Int>] {
        let units = Array(text.utf16)
        return try units.withUnsafeBufferPointer { try matches(utf16: $0, stepLimit: stepLimit) }
    }

    /// Whether the pattern matches somewhere in `text` (compile it with anchors for a whole match).
    public func firstMatch(in text: String, stepLimit: Int) throws -> Range<Int>? {
        // Short strings only (module names): scanning all matches costs no more than the first.
        try matches(in: text, stepLimit: stepLimit).first
    }
}

/// Compiled patterns by source text, shared by every adapter config that uses them (so a config
/// stays a plain value and each pattern compiles once). Bounded: cleared when it grows past
/// `capacity`, which only a process juggling thousands of distinct patterns reaches.
enum RegexCache {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var compiled: [String: BoundedRegex] = [:]
    static let capacity = 4096

    static func regex(_ pattern: String) throws -> BoundedRegex {
        if let hit = lock.withLock({ compiled[pattern] }) { return hit }
        let fresh = try BoundedRegex(pattern)
        return lock.withLock {
            if compiled.count >= capacity { compiled.removeAll(keepingCapacity: true) }
            if let raced = compiled[pattern] { return raced }
            compiled[pattern] = fresh
            return fresh
        }
    }
}
