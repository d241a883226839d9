/// Untrusted text (tensor names, expert names, JSON keys, CLI values, file paths) made safe to
/// print inside a one-line error message: control characters, line and paragraph separators and
/// bidirectional overrides become visible escapes, so a hostile name can neither split the line
/// nor disguise what follows it. Printable text, non-ASCII letters included, is kept as it is.
public enum EscapedText {
    /// `s` with every character that could break or disguise a line escaped (`\n`, `\t`,
    /// `\u{1B}`…) and a backslash doubled; at most `limit` characters, then `…`.
    public static func escaped(_ s: some StringProtocol, limit: Int = 200) -> String {
        var out = ""
        var count = 0
        for scalar in s.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            count += 1
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if needsEscape(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A whole message made one safe line: control characters, separators and bidi controls
    /// escaped as in `escaped`, everything else (backslashes included) kept. Idempotent, so every
    /// error type applies it to its description, and the CLI again to whatever it prints.
    public static func oneLine(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: needsEscape) else { return s }
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if needsEscape(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// `'s'`, escaped: the form error messages use to quote a name.
    public static func quoted(_ s: some StringProtocol, limit: Int = 200) -> String {
        "'" + escaped(s, limit: limit) + "'"
    }

    /// The body of a JSON string literal for `s` (quotes, backslashes and control characters
    /// escaped as JSON requires; line separators too, for readers that split on them).
    public static func json(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings, overrides and
    /// isolates, zero-width and BOM characters.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x2028, 0x2029: return true
        case 0x200B...0x200F, 0x202A...0x202E, 0x2066...0x2069, 0xFEFF: return true
        default: return false
        }
    }
}
