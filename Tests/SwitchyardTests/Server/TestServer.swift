import Foundation
import Switchyard

@testable import SwitchyardServer

/// A server on the embedded demo models (`Models/`), on an ephemeral loopback port, with a
/// private copy of the expert registry (tests add and remove experts) and the four demo routers.
final class TestServer: @unchecked Sendable {
    static var modelsRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Models")
    }
    static let routerNames = ["sentence", "token", "centroid", "smora"]
    static let taskExperts = [
        "reverse", "uppercase", "sort_letters", "double_letters", "hyphenate", "caesar", "remove_vowels", "repeat"
    ]

    let directory: URL
    let model: LlamaModel
    let tokenizer: Tokenizer
    let registry: ExpertRegistry
    let server: InferenceServer
    let routers: [String: BoundRouter]

    var address: String { "127.0.0.1:\(server.port)" }

    /// `configure` adjusts the options (listen and log format are set here).
    init(chatTemplate: ChatTemplate? = nil, configure: (inout ServerOptions) -> Void = { _ in }) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "switchyard-server-\(UUID().uuidString)")
        let experts = directory.appendingPathComponent("experts")
        try FileManager.default.createDirectory(at: experts, withIntermediateDirectories: true)
        for name in Self.taskExperts {
            try FileManager.default.copyItem(
                at: Self.modelsRoot.appendingPathComponent("experts/\(name)"), to: experts.appendingPathComponent(name))
        }
        model = try LlamaModel.load(directory: Self.modelsRoot.appendingPathComponent("base"))
        tokenizer = try Tokenizer.load(modelDirectory: Self.modelsRoot.appendingPathComponent("base"))
        registry = try ExpertRegistry(directory: experts, base: model.config)
        var bound: [(BoundRouter, ExpertLease)] = []
        for name in Self.routerNames {
            let spec = try RouterWire.read(Self.modelsRoot.appendingPathComponent("routers/\(name).pb"))
            bound.append(try BoundRouter.bind(spec, model: model, registry: registry))
        }
        routers = Dictionary(uniqueKeysWithValues: bound.map { ($0.0.spec.name, $0.0) })
        var options = ServerOptions()
        options.listen = "127.0.0.1:0"
        options.logFormat = .off
        options.shutdownGrace = 1
        options.allowedExpertRoots = [directory.appendingPathComponent("incoming")]
        configure(&options)
        server = try InferenceServer(
            model: model, tokenizer: tokenizer, registry: registry, routers: bound, options: options,
            modelDescription: "Models/base", chatTemplate: chatTemplate)
    }

    func client(token: String? = nil, timeout: Double? = 60) -> SwitchyardClient {
        SwitchyardClient(target: address, token: token, timeout: timeout)
    }

    /// Copies a demo expert to `incoming/<name>` (under the allowed root) for AddExpert.
    func stage(_ expert: String, as name: String) throws -> URL {
        let dest = directory.appendingPathComponent("incoming/\(name)")
        try FileManager.default.createDirectory(at: dest.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: dest)
        try FileManager.default.copyItem(at: Self.modelsRoot.appendingPathComponent("experts/\(expert)"), to: dest)
        return dest
    }

    /// What `switchyard generate` gives for this prompt alone (greedy, EOS stops).
    func alone(_ prompt: String, routing: Generator.Routing, maxTokens: Int) throws -> [Int] {
        var stops = Set(model.config.eosTokenIDs)
        if let eos = tokenizer.eosTokenID { stops.insert(eos) }
        let request = GenerationRequest(
            promptTokens: tokenizer.encode(prompt, addSpecialTokens: true), maxNewTokens: maxTokens, stopTokens: stops)
        return try Generator(model: model).generateBatch([request], routing: [routing])[0]
    }

    func stop() {
        server.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Collects a whole Generate stream.
struct Collected {
    var ids: [Int] = []
    var text = ""
    var finish: String?
    var replica: String?
    var events: [GenerateEvent] = []
}

func collect(_ client: SwitchyardClient, _ request: GenerateRequest) async throws -> Collected {
    var c = Collected()
    for try await e in client.generate(request) {
        c.events.append(e)
        c.text += e.text
        if let t = e.tokenID { c.ids.append(t) }
        if let f = e.finishReason { c.finish = f }
        c.replica = e.replica
    }
    return c
}

/// The status code of a failing async call (nil when it succeeded).
func statusCode(_ body: () async throws -> Void) async -> GRPCStatusCode? {
    do { try await body(); return nil } catch let s as GRPCStatus { return s.code } catch { return .unknown }
}

func statusOf(_ body: () async throws -> Void) async -> GRPCStatus? {
    do { try await body(); return nil } catch let s as GRPCStatus { return s } catch {
        return GRPCStatus(.unknown, "\(error)")
    }
}
