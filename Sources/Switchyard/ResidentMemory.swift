import Foundation

/// The process's resident set size (Linux `/proc/self/status` VmRSS), for benches.
enum ResidentMemory {
    /// Resident bytes now, or nil where `/proc` is not available.
    static func bytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kib * 1024
    }
}
