/// `HOST:PORT` addresses, checked before the gRPC core sees them: the core reads a port modulo
/// 65536 (`:99999` bound and dialled 34463) and logs its own errors for malformed ones.
public enum HostPort {
    /// Throws INVALID_ARGUMENT naming `address` unless it is `HOST:PORT` (host non-empty; IPv6 in
    /// brackets, `[::1]:50051`) with a decimal port in 0...65535.
    public static func check(_ address: String) throws {
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex else {
            throw GRPCStatus(.invalidArgument, "\(address): expected HOST:PORT")
        }
        let port = address[address.index(after: colon)...]
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int(port), value <= 65535
        else {
            throw GRPCStatus(.invalidArgument, "\(address): the port must be a number in 0...65535")
        }
    }

    /// `check` for a client's target when it is a plain `HOST:PORT`; a gRPC target with a scheme
    /// (`dns:///…`, `ipv4:…`, `ipv6:…`, `unix:…`) is left to the core.
    public static func checkTarget(_ target: String) throws {
        let schemes = ["ipv4:", "ipv6:", "unix:"]
        guard !target.contains("://"), !schemes.contains(where: { target.hasPrefix($0) }) else { return }
        try check(target)
    }
}
