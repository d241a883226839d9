import Foundation
import Switchyard

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

    /// A JSON string literal (the library's escaping: quotes, backslashes, control characters).
    static func string(_ s: String) -> String { "\"" + EscapedText.json(s) + "\"" }
}

/// A JSON object key made at run time (reports whose keys carry a router name or a stream count).
struct JSONKey: CodingKey {
    let stringValue: String
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

extension Encodable {
    /// Prints the value as one line of JSON (JSONEncoder; keys as its CodingKeys name them, sorted).
    func printJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(self), as: UTF8.self))
    }
}
