import Foundation
import Switchyard

/// One log line per finished request on standard error: `text` for people, `json` (one object
/// per line) for log pipelines. Thread-safe.
final class RequestLog: @unchecked Sendable {
    let format: ServerOptions.LogFormat
    private let lock = NSLock()

    init(format: ServerOptions.LogFormat) { self.format = format }

    /// `fields` in order; values are strings or numbers.
    func write(_ fields: [(String, Any)]) {
        guard format != .off else { return }
        let line: String
        if format == .json {
            line = "{" + fields.map { "\(Self.quote($0.0)):\(Self.json($0.1))" }.joined(separator: ",") + "}"
        } else {
            line = fields.map { "\($0.0)=\(Self.text($0.1))" }.joined(separator: " ")
        }
        lock.withLock { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    /// A free-form message (start-up, shutdown).
    func note(_ message: String) {
        guard format != .off else { return }
        if format == .json {
            write([("event", message)])
        } else {
            lock.withLock { FileHandle.standardError.write(Data(("switchyard serve: " + message + "\n").utf8)) }
        }
    }

    static func json(_ v: Any) -> String {
        switch v {
        case let d as Double: return d.isFinite ? String(format: "%.3f", d) : "null"
        case let i as Int: return String(i)
        case let u as UInt64: return String(u)
        case let b as Bool: return b ? "true" : "false"
        default: return quote("\(v)")
        }
    }

    static func text(_ v: Any) -> String {
        switch v {
        case let d as Double: return String(format: "%.1f", d)
        case let s as String: return s.contains(" ") || s.isEmpty ? quote(s) : s
        default: return "\(v)"
        }
    }

    static func quote(_ s: String) -> String { "\"" + EscapedText.json(s) + "\"" }
}
