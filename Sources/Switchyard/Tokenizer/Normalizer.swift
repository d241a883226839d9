import Foundation

/// The `normalizer` stage: rewrites text before pre-tokenization.
protocol Normalizer: Sendable {
    func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar]
}

/// Builds the normalizer described by a `normalizer` JSON object (nil for JSON `null`).
///
/// Supported types: `NFC`, `NFD`, `NFKC`, `NFKD`, `Lowercase`, `Sequence`. Anything else is
/// refused with `TokenizerError.unsupportedComponent`.
func makeNormalizer(_ json: TokenizerJSON) throws -> any Normalizer {
    let type = try json.type()
    switch type {
    case "NFC": return UnicodeNormalizer(form: .nfc)
    case "NFD": return UnicodeNormalizer(form: .nfd)
    case "NFKC": return UnicodeNormalizer(form: .nfkc)
    case "NFKD": return UnicodeNormalizer(form: .nfkd)
    case "Lowercase": return LowercaseNormalizer()
    case "Sequence":
        return NormalizerSequence(steps: try json.objects("normalizers").map(makeNormalizer))
    default:
        throw TokenizerError.unsupportedComponent(source: json.source, path: json.path, type: type)
    }
}

/// Unicode normalization forms, computed with Foundation (ICU tables).
struct UnicodeNormalizer: Normalizer {
    enum Form: Sendable { case nfc, nfd, nfkc, nfkd }
    let form: Form

    func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        // ASCII is invariant under every normalization form.
        if text.allSatisfy({ $0.isASCII }) { return text }
        let string = String(String.UnicodeScalarView(text))
        let normalized: String
        switch form {
        case .nfc: normalized = string.precomposedStringWithCanonicalMapping
        case .nfd: normalized = string.decomposedStringWithCanonicalMapping
        case .nfkc: normalized = string.precomposedStringWithCompatibilityMapping
        case .nfkd: normalized = string.decomposedStringWithCompatibilityMapping
        }
        return Array(normalized.unicodeScalars)
    }
}

/// Per-scalar full lowercase mapping, like Rust's `char::to_lowercase` that HF applies to each
/// character: no locale, no context (a final capital sigma becomes `σ`, not `ς`); `İ` becomes
/// `i` + U+0307.
struct LowercaseNormalizer: Normalizer {
    func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for scalar in text {
            if scalar.isASCII {
                let value = scalar.value
                out.append((0x41...0x5A).contains(value) ? Unicode.Scalar(value + 32)! : scalar)
            } else {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }
}

/// Applies several normalizers in order.
struct NormalizerSequence: Normalizer {
    let steps: [any Normalizer]

    func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        steps.reduce(text) { $1.normalize($0) }
    }
}
