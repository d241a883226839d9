import Foundation

/// Why a `tokenizer.json` could not be loaded.
///
/// Every case carries `source` (usually the file path) so the message says which file is at fault,
/// and enough detail (the JSON path of the offending field, the unsupported type name, the merge
/// line) to fix or report the problem.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all.
    case unreadable(source: String, reason: String)
    /// The bytes are not valid JSON, or the top level is not an object.
    case malformedJSON(source: String, reason: String)
    /// A field is missing or has the wrong JSON type. `path` is a dotted JSON path such as
    /// `model.vocab` or `pre_tokenizer.pretokenizers[1].pattern`.
    case invalidField(source: String, path: String, expected: String)
    /// The model is not BPE (for example WordPiece, Unigram or WordLevel).
    case unsupportedModel(source: String, type: String)
    /// A pipeline stage (`normalizer`, `pre_tokenizer`, `post_processor`, `decoder`) has a type
    /// this implementation does not handle.
    case unsupportedComponent(source: String, path: String, type: String)
    /// A recognised component uses an option this implementation does not handle.
    case unsupportedOption(source: String, path: String, detail: String)
    /// A merge names a token that is not in the vocabulary. `index` is the merge's position
    /// (its rank) in `model.merges`.
    case mergeWithUnknownToken(source: String, index: Int, merge: String, token: String)
    /// A merge is not of the form `"a b"` or `["a", "b"]`.
    case malformedMerge(source: String, index: Int, merge: String)
    /// A regular expression in the file does not compile.
    case invalidRegex(source: String, path: String, pattern: String, reason: String)
    /// A regular expression in the file needed more than its step limit on some text
    /// (catastrophic backtracking): the text cannot be tokenized with this file.
    case regexLimitExceeded(source: String, path: String, pattern: String, reason: String)
    /// A token referenced by name (unk_token, a template special token) is not defined.
    case unknownToken(source: String, path: String, token: String)

    /// The message on one line (names from the file quoted and escaped; control characters
    /// escaped anywhere).
    public var description: String { EscapedText.oneLine(message) }

    private var message: String {
        switch self {
        case let .unreadable(source, reason):
            return "\(source): cannot read tokenizer file: \(reason)"
        case let .malformedJSON(source, reason):
            return "\(source): malformed JSON: \(reason)"
        case let .invalidField(source, path, expected):
            return "\(source): field `\(path)`: expected \(expected)"
        case let .unsupportedModel(source, type):
            return "\(source): unsupported tokenizer model type \"\(type)\"; "
                + "only byte-level BPE (\"BPE\") is supported (WordPiece, Unigram and WordLevel are not)"
        case let .unsupportedComponent(source, path, type):
            return "\(source): `\(path)` has unsupported type \"\(type)\""
        case let .unsupportedOption(source, path, detail):
            return "\(source): `\(path)`: unsupported option: \(detail)"
        case let .mergeWithUnknownToken(source, index, merge, token):
            return "\(source): model.merges[\(index)] \"\(merge)\" refers to \"\(token)\", "
                + "which is not in model.vocab"
        case let .malformedMerge(source, index, merge):
            return "\(source): model.merges[\(index)] \"\(merge)\" is not of the form \"a b\" or [\"a\", \"b\"]"
        case let .invalidRegex(source, path, pattern, reason):
            return "\(source): `\(path)`: regular expression \(pattern.debugDescription) does not compile: \(reason)"
        case let .regexLimitExceeded(source, path, pattern, reason):
            return "\(source): `\(path)`: regular expression \(EscapedText.quoted(pattern, limit: 80)): \(reason)"
        case let .unknownToken(source, path, token):
            return "\(source): `\(path)` names token \"\(token)\", which is neither in model.vocab nor in added_tokens"
        }
    }
}
