/// Every error Switchyard raises for input a user can supply. Each case carries what is needed to
/// fix the problem: the file, the tensor or field, what was expected and what was found.
public enum SwitchyardError: Error, CustomStringConvertible, Equatable {
    /// A file could not be read or written.
    case io(path: String, reason: String)
    /// A safetensors file is malformed (header, offsets, dtype, shape); `tensor` is nil for
    /// header-level problems.
    case safetensors(path: String, tensor: String?, reason: String)
    /// A `config.json` field is missing or has a bad value.
    case config(path: String, field: String, reason: String)
    /// The checkpoint asks for something Switchyard does not implement (architecture, rope scaling…).
    case unsupported(path: String, what: String)
    /// A tensor the model needs is absent from the checkpoint.
    case missingTensor(path: String, tensor: String)
    /// A tensor has the wrong shape.
    case shapeMismatch(path: String, tensor: String, expected: [Int], found: [Int])
    /// A weight tensor holds a NaN or an infinity (at flat index `element`, row-major); the model
    /// would turn every output it touches into NaN, so it is refused at load.
    case nonFinite(path: String, tensor: String, element: Int, value: Float)
    /// A caller passed an invalid argument (token id out of range, empty batch…).
    case invalidArgument(String)

    /// The message on one line: names from files and requests (tensor names, fields, paths) are
    /// quoted and escaped, and any control character left anywhere is escaped too.
    public var description: String { EscapedText.oneLine(message) }

    private var message: String {
        switch self {
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .safetensors(path, tensor, reason):
            if let tensor { return "\(path): tensor \(EscapedText.quoted(tensor)): \(reason)" }
            return "\(path): \(reason)"
        case let .config(path, field, reason):
            return "\(path): field \(EscapedText.quoted(field)): \(reason)"
        case let .unsupported(path, what):
            return "\(path): unsupported: \(what)"
        case let .missingTensor(path, tensor):
            return "\(path): missing tensor \(EscapedText.quoted(tensor))"
        case let .shapeMismatch(path, tensor, expected, found):
            return "\(path): tensor \(EscapedText.quoted(tensor)) has shape \(found), expected \(expected)"
        case let .nonFinite(path, tensor, element, value):
            return
                "\(path): tensor \(EscapedText.quoted(tensor)): non-finite value \(value) at element \(element) (NaN and infinity are refused)"
        case let .invalidArgument(message):
            return message
        }
    }
}
