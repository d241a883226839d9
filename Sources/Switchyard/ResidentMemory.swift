import Foundation

/// A process's resident set size (Linux `/proc/PID/status`, `VmRSS`): what benches report after
/// load, and what the server's soak test watches in its child process.
public enum ResidentMemory {
    /// Resident bytes now of this process (`processID` nil) or of another one, or nil where
    /// `/proc` is not available or the process is gone.
    public static func bytes(processID: Int32? = nil) -> Int? {
        let path = "/proc/\(processID.map(String.init) ?? "self")/status"
        guard let status = try? String(contentsOfFile: path, encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kib * 1024
    }
}
