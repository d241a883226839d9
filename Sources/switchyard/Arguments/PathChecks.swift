import Foundation
import SwitchyardServer

/// Checks of command-line values that name addresses and directories, as usage errors naming
/// the option.
enum PathChecks {
    /// `HostPort.check` (`target`: `HostPort.checkTarget`, which leaves scheme'd gRPC targets to
    /// the core) as a usage error naming `option`.
    static func hostPort(_ value: String, option: String, target: Bool = false) throws {
        do {
            if target { try HostPort.checkTarget(value) } else { try HostPort.check(value) }
        } catch let e as GRPCStatus {
            throw UsageError("\(option) \(e.message)")
        }
    }

    /// Whether `path` exists and is a directory (a symlink to one counts).
    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
