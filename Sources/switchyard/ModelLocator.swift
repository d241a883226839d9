import Foundation
import Switchyard

/// Finds the embedded models: `$SWITCHYARD_MODELS`, else `Models/` next to the package this
/// binary was built from, else `./Models`.
enum ModelLocator {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// The default base model directory when `--model` is not given.
    static func defaultModelDirectory() throws -> URL {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_MODELS"] {
            candidates.append(URL(fileURLWithPath: env).appendingPathComponent("base"))
        }
        candidates.append(packageRoot.appendingPathComponent("Models/base"))
        candidates.append(URL(fileURLWithPath: fm.currentDirectoryPath).appendingPathComponent("Models/base"))
        for c in candidates where fm.fileExists(atPath: c.appendingPathComponent("config.json").path) {
            return c
        }
        throw UsageError(
            "no --model given and no embedded model found (looked in: \(candidates.map(\.path).joined(separator: ", ")))"
        )
    }

    /// The embedded models' root: `$SWITCHYARD_MODELS`, else `Models/` next to the package.
    static func modelsRoot() -> URL {
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_MODELS"] { return URL(fileURLWithPath: env) }
        return packageRoot.appendingPathComponent("Models")
    }

    /// The default expert registry: `Models/experts` next to the default model's `Models/`.
    static func defaultRegistryDirectory() -> URL {
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_MODELS"] {
            return URL(fileURLWithPath: env).appendingPathComponent("experts")
        }
        return packageRoot.appendingPathComponent("Models/experts")
    }
}
