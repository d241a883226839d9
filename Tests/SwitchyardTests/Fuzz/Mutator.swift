import Foundation

@testable import Switchyard

/// Deterministic input mutations for the fuzz harness (`FuzzTests`): the same seed gives the same
/// inputs on every machine, so a failure is reproduced by re-running with the seed it printed.
///
/// Each mutation applies 1–4 edits, mixing byte-level ones (bit flips, interesting bytes,
/// inserted / deleted / duplicated ranges, truncation, little-endian integers that are edge
/// cases of every width) with token-level ones for text formats (a number replaced by an edge
/// number, a token from the format's dictionary spliced in). `focus` confines byte positions to a
/// prefix (a binary file's header) most of the time.
struct Mutator {
    var rng: SeededRandom

    init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    /// Tokens that break JSON parsers and validators: wrong types, edge numbers, deep nesting.
    static let jsonTokens: [String] = [
        "-1", "0", "1", "-1000", "true", "false", "null", "1e999", "-1e999", "1e-999", "4.5", "2.0e0",
        "99999999999999999999", "9223372036854775807", "-9223372036854775808", "2147483648", "\"\"",
        "\"x\"", "[]", "{}", "[[[[[[[[[[[[[[[[[[[[", "\"\\u0000\"", "\"\\ud800\"", "NaN", "\"(.*a){25}\"",
        "\"a{1000000}\"", "\"[\"", ",", ":", "\"", "\\"
    ]

    /// Integers at the edges of every width, little-endian.
    static let edgeIntegers: [UInt64] = [
        0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
        0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
        0xFFFF_FFFF_FFFF_FFFF
    ]

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(rng.next() % UInt64(n)) }

    /// A position in `bytes` (within `focus` bytes of the start 3 times in 4).
    mutating func position(_ count: Int, focus: Int?) -> Int {
        if let focus, focus > 0, below(4) != 0 { return below(min(focus, count)) }
        return below(count)
    }

    /// `input` with 1–4 edits. `text`: also splice JSON tokens and edge numbers.
    mutating func mutate(_ input: [UInt8], text: Bool, focus: Int? = nil, maxCount: Int = 1 << 20) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + below(4)) {
            if b.isEmpty { b = [UInt8(truncatingIfNeeded: rng.next())]; continue }
            let p = position(b.count, focus: focus)
            switch below(text ? 10 : 8) {
            case 0: b[p] ^= 1 << UInt8(below(8))
            case 1: b[p] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x22, 0x5C, 0x7B, 0x5B, 0x2D, 0x39, 0x0A][below(12)]
            case 2: b.insert(contentsOf: (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: p)
            case 3: b.removeSubrange(p..<min(b.count, p + 1 + below(16)))
            case 4:
                let end = min(b.count, p + 1 + below(64))
                if b.count + (end - p) <= maxCount {
                    b.insert(contentsOf: b[p..<end], at: position(b.count, focus: focus))
                }
            case 5: b.removeSubrange(p...)
            case 6, 7:
                let v = Self.edgeIntegers[below(Self.edgeIntegers.count)], width = [1, 2, 4, 8][below(4)]
                for i in 0..<width where p + i < b.count { b[p + i] = UInt8(truncatingIfNeeded: v >> UInt64(8 * i)) }
            case 8:
                let token = Array(Self.jsonTokens[below(Self.jsonTokens.count)].utf8)
                b.replaceSubrange(p..<min(b.count, p + below(4)), with: token)
            default:
                // A run of digits (a JSON number, a shape, an offset) becomes an edge number.
                guard let start = (p..<b.count).first(where: { (0x30...0x39).contains(b[$0]) }) else { continue }
                var end = start
                while end < b.count, (0x30...0x39).contains(b[end]) || b[end] == 0x2E || b[end] == 0x2D { end += 1 }
                let number = [
                    "-1", "0", "-1000", "1e999", "4.5", "true", "99999999999999999999", "65536", "2147483647"
                ][below(9)]
                b.replaceSubrange(start..<end, with: Array(number.utf8))
            }
        }
        return b.count > maxCount ? Array(b.prefix(maxCount)) : b
    }

    /// Random protobuf wire data: fields 1–20 of every wire type, nested messages, bad lengths.
    mutating func protobuf(depth: Int = 0) -> [UInt8] {
        var out: [UInt8] = []
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        for _ in 0..<below(8) {
            let field = UInt64(1 + below(20)), wire = [0, 1, 2, 5, 2, 0][below(6)]
            varint(field << 3 | UInt64(wire))
            switch wire {
            case 0: varint(Self.edgeIntegers[below(Self.edgeIntegers.count)])
            case 1: out += (0..<8).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 5: out += (0..<4).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            default:
                let payload: [UInt8] =
                    depth < 3 && below(2) == 0
                    ? protobuf(depth: depth + 1) : Array("héllo\u{0}\n\(below(100))".utf8)
                varint(below(10) == 0 ? Self.edgeIntegers[below(Self.edgeIntegers.count)] : UInt64(payload.count))
                out += payload
            }
        }
        return out
    }
}
