import Foundation
import Switchyard

/// Finds the embedded models: `$SWITCHYARD_MODELS`, else `Models/` next to the package this
/// binary was built from, else `./Models`.
enum ModelLocator {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
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
        // Until the demo models land, the parity-fixture model is the embedded default.
        candidates.append(packageRoot.appendingPathComponent("Tests/SwitchyardTests/Fixtures/models/llama-gqa"))
        for c in candidates where fm.fileExists(atPath: c.appendingPathComponent("config.json").path) {
            return c
        }
        throw UsageError("no --model given and no embedded model found (looked in: \(candidates.map(\.path).joined(separator: ", ")))")
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

    static func registryDirectory(_ args: ParsedArguments) -> URL {
        args.string("registry").map { URL(fileURLWithPath: $0) } ?? defaultRegistryDirectory()
    }

    /// `--weights native|f32`, shared by every command that takes `--model`.
    static let weightsHelp = """
      --weights native|f32      GGUF models: keep Q8_0/Q4_0/Q4_1 weights in their blocks (native,
                                the default) or widen everything to Float32 (f32: the parity path).
    """

    /// Loads the model at `path` (a Hugging Face directory or a GGUF file) as `--weights` says.
    static func loadModel(_ args: ParsedArguments, path: URL) throws -> LlamaModel {
        let name = args.string("weights") ?? "native"
        guard let weights = GGUFModel.WeightFormat(rawValue: name) else { throw UsageError("--weights must be native or f32, got '\(name)'") }
        return try LlamaModel.load(path: path, weights: weights)
    }

    static func modelDirectory(_ args: ParsedArguments) throws -> URL {
        if let m = args.string("model") { return URL(fileURLWithPath: m) }
        return try defaultModelDirectory()
    }
}
