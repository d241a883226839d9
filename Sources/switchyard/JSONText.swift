/// Compact JSON text for numeric arrays (faster and more exact than JSONSerialization for large
/// logits: Swift's `Float.description` is the shortest representation that round-trips).
enum JSONText {
    static func number(_ x: Float) -> String {
        if x.isNaN { return "null" }
        if x.isInfinite { return x > 0 ? "1e39" : "-1e39" }
        return x.description
    }

    static func array(_ xs: [Int]) -> String { "[" + xs.map(String.init).joined(separator: ",") + "]" }

    static func array(_ xs: [Float]) -> String { "[" + xs.map(number).joined(separator: ",") + "]" }

    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

import Foundation
