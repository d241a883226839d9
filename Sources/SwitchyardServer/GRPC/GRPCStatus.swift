/// gRPC status codes, numbered as the protocol defines them (grpc/status.h).
public enum GRPCStatusCode: Int32, Sendable, CustomStringConvertible {
    case ok = 0, cancelled = 1, unknown = 2, invalidArgument = 3, deadlineExceeded = 4, notFound = 5
    case alreadyExists = 6, permissionDenied = 7, resourceExhausted = 8, failedPrecondition = 9
    case aborted = 10, outOfRange = 11, unimplemented = 12, `internal` = 13, unavailable = 14
    case dataLoss = 15, unauthenticated = 16

    /// The canonical name, e.g. `NOT_FOUND`.
    public var description: String {
        switch self {
        case .ok: return "OK"
        case .cancelled: return "CANCELLED"
        case .unknown: return "UNKNOWN"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .aborted: return "ABORTED"
        case .outOfRange: return "OUT_OF_RANGE"
        case .unimplemented: return "UNIMPLEMENTED"
        case .internal: return "INTERNAL"
        case .unavailable: return "UNAVAILABLE"
        case .dataLoss: return "DATA_LOSS"
        case .unauthenticated: return "UNAUTHENTICATED"
        }
    }
}

/// A call's final status as an error: the code and a message naming the field, expert, router
/// or limit at fault. `description` is `CODE: message`.
public struct GRPCStatus: Error, Sendable, Equatable, CustomStringConvertible {
    /// The gRPC status code the call ended with.
    public var code: GRPCStatusCode
    /// The `grpc-message` text: what went wrong, for a person to read.
    public var message: String

    /// A status of `code` carrying `message`.
    public init(_ code: GRPCStatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `CODE: message`, the code by its canonical name (`NOT_FOUND: ...`).
    public var description: String { "\(code): \(message)" }
}
