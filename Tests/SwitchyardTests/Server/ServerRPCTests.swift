import Foundation
import Switchyard
import Testing

@testable import SwitchyardServer

/// Every RPC of switchyard.v1.Inference and grpc.health.v1.Health against an in-process server on
/// an ephemeral loopback port, with the Swift client over the same gRPC C core.
@Suite(.serialized) struct ServerRPCTests {
    static let prompt = "Write cat backwards.\nAnswer:"

    @Test func everyRPCAnswers() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let client = s.client()

        #expect(try await client.health() == 1)
        #expect(try await client.health(service: "switchyard.v1.Inference") == 1)

        let info = try await client.info()
        #expect(info.string("version") == InferenceServer.version)
        #expect(info.uint("vocabulary_size") == UInt64(s.model.config.vocabSize) && info.uint("layers") == 4)
        #expect(Set(info.strings("routers")) == Set(TestServer.routerNames))
        #expect(info.message("limits")?.uint("max_batch") == 32)

        let experts = try await client.listExperts()
        #expect(experts.map { $0.string("name") } == TestServer.taskExperts.sorted())
        #expect(experts.allSatisfy { $0.string("sha256").count == 64 && $0.uint("rank") == 16 })
        #expect(try await client.listRouters().map { $0.string("name") }.sorted() == TestServer.routerNames.sorted())

        // Generate with one expert: what `switchyard generate --expert reverse` gives, streamed.
        var request = GenerateRequest(prompt: Self.prompt)
        request.experts = [("reverse", 1)]
        let out = try await collect(client, request)
        let lease = try s.registry.acquire(["reverse"])
        #expect(out.ids == (try s.alone(Self.prompt, routing: .resolved(.experts(lease.adapters)), maxTokens: 64)))
        #expect(out.text.trimmingCharacters(in: .whitespaces) == "tac")
        #expect(out.finish == "stop")
        #expect(out.replica == s.server.replicaID)
        let summary = out.events.last!
        #expect(summary.tokenID == nil && summary.generatedTokens == out.ids.count)
        #expect(summary.promptTokens == s.tokenizer.encode(Self.prompt, addSpecialTokens: true).count)
        // Logprobs are the model's: Score under the same expert agrees.
        var scoring = GenerateRequest(tokenIDs: s.tokenizer.encode(Self.prompt, addSpecialTokens: true) + out.ids)
        scoring.experts = [("reverse", 1)]
        let scored = try await client.score(scoring)
        let promptCount = summary.promptTokens
        for (i, e) in out.events.dropLast().enumerated() {
            #expect(abs(e.logprob - scored[promptCount - 1 + i]) <= 1e-3)
        }

        // Traced routing decisions: the demo's token router (one global gate) reports one choice
        // for every layer (no layer), by name.
        var traced = GenerateRequest(prompt: Self.prompt)
        traced.router = "token"
        traced.trace = true
        traced.maxTokens = 3
        let t = try await collect(client, traced)
        let firstRouting = t.events.first!.routing
        #expect(!firstRouting.isEmpty && firstRouting.allSatisfy { $0.layer == nil })
        #expect(firstRouting.allSatisfy { $0.experts.allSatisfy { TestServer.taskExperts.contains($0.name) } })

        // Stop strings end the stream before the stop string.
        var stopping = GenerateRequest(prompt: "Spell cat with hyphens between its letters.\nAnswer:")
        stopping.experts = [("hyphenate", 1)]
        stopping.stop = ["-a"]
        let st = try await collect(client, stopping)
        #expect(st.finish == "stop" && !st.text.contains("-a") && st.text.trimmingCharacters(in: .whitespaces) == "c")

        // AddExpert → servable at once; RemoveExpert → gone.
        let staged = try s.stage("uppercase", as: "shout")
        let added = try await client.addExpert(name: "shout", path: staged.path)
        #expect(added.message("expert")?.string("name") == "shout")
        var shout = GenerateRequest(prompt: "Write cat in capitals.\nAnswer:")
        shout.experts = [("shout", 1)]
        #expect(try await collect(client, shout).finish != nil)
        try await client.removeExpert(name: "shout")
        #expect(await statusCode { _ = try await collect(client, shout) } == .notFound)

        // AddRouter: a RouterSpec under a new name, then routed by that name.
        var spec = try RouterWire.read(TestServer.modelsRoot.appendingPathComponent("routers/sentence.pb"))
        spec.name = "sentence-copy"
        let r = try await client.addRouter(RouterWire.encode(spec))
        #expect(r.message("router")?.string("granularity") == "sentence")
        var routed = GenerateRequest(prompt: Self.prompt)
        routed.router = "sentence-copy"
        #expect(
            try await collect(client, routed).ids
                == (try s.alone(Self.prompt, routing: .router(s.routers["sentence"]!, trace: nil), maxTokens: 64)))
        #expect(await statusCode { try await client.addRouter(RouterWire.encode(spec)) } == .alreadyExists)

        // Compose: progress events, then the new expert, registered and servable without restart.
        var events: [WireMessage] = []
        for try await e in client.compose(
            name: "composed",
            examples: [("Write dog backwards.\nAnswer:", "god"), ("Write sun backwards.\nAnswer:", "nus")],
            experts: ["reverse", "uppercase"], budget: 16)
        { events.append(e) }
        #expect(events.count == 17, "a progress event per evaluation (16), then the result")
        #expect(events.last?.uint("evaluations") == 16)
        #expect(events.last?.message("expert")?.string("name") == "composed")
        #expect(events.last?.messages("weights").count == 2)
        var composed = GenerateRequest(prompt: Self.prompt)
        composed.experts = [("composed", 1)]
        #expect(try await collect(client, composed).finish != nil)
        // The optimiser is named in the request; an unknown one is INVALID_ARGUMENT.
        var cmaes: [WireMessage] = []
        for try await e in client.compose(
            name: "composed-cmaes", examples: [("Write dog backwards.\nAnswer:", "god")],
            experts: ["reverse", "uppercase"], budget: 12, optimizer: "cmaes")
        { cmaes.append(e) }
        #expect(cmaes.last?.uint("evaluations") == 12)
        // So is the combination: cat concatenates the ranks of the experts of nonzero weight,
        // LoraHub's keeps one.
        var ranks: [String: UInt64] = [:]
        var nonzero: UInt64 = 0
        for combination in ["lorahub", "cat"] {
            for try await e in client.compose(
                name: "composed-\(combination)", examples: [("Write dog backwards.\nAnswer:", "god")],
                experts: ["reverse", "uppercase"], budget: 4, combination: combination)
            {
                guard let expert = e.message("expert") else { continue }
                ranks[combination] = expert.uint("rank")
                if combination == "cat" {
                    nonzero = UInt64(e.messages("weights").filter { $0.double("weight") != 0 }.count)
                }
            }
        }
        #expect(nonzero > 0 && ranks["cat"] == ranks["lorahub"].map { nonzero * $0 }, "\(ranks), \(nonzero) nonzero")
        #expect(
            await statusCode {
                for try await _ in client.compose(
                    name: "composed-bad", examples: [("a", "b")], experts: ["reverse"], combination: "svd")
                {}
            } == .invalidArgument)
        #expect(
            await statusCode {
                for try await _ in client.compose(
                    name: "composed-bad", examples: [("a", "b")], experts: ["reverse"], optimizer: "newuoa")
                {}
            } == .invalidArgument)
        // The selection too: objective keeps the search's best; an unknown one is refused.
        var byObjective: [WireMessage] = []
        for try await e in client.compose(
            name: "composed-objective", examples: [("Write dog backwards.\nAnswer:", "god")],
            experts: ["reverse", "uppercase"], budget: 4, selection: "objective")
        { byObjective.append(e) }
        #expect(byObjective.last?.message("expert")?.string("name") == "composed-objective")
        #expect(
            await statusCode {
                for try await _ in client.compose(
                    name: "composed-bad", examples: [("a", "b")], experts: ["reverse"], selection: "best")
                {}
            } == .invalidArgument)
        // l1 reaches the server (a negative weight is refused there, naming the field).
        #expect(
            await statusCode {
                for try await _ in client.compose(
                    name: "composed-bad", examples: [("a", "b")], experts: ["reverse"], l1: -1)
                {}
            } == .invalidArgument)

        let after = try await client.info()
        #expect(after.uint("requests_total") >= 6)
        #expect(
            after.messages("expert_counters").contains { $0.string("name") == "reverse" && $0.uint("requests") >= 1 })
    }

    @Test func errorsAreStatusCodesNamingTheField() async throws {
        let s = try TestServer {
            $0.maxTokensLimit = 100; $0.maxMessageBytes = 64 << 10
        }
        defer { s.stop() }
        let client = s.client()
        func generate(_ edit: (inout GenerateRequest) -> Void) async -> GRPCStatus? {
            var r = GenerateRequest(prompt: Self.prompt)
            edit(&r)
            return await statusOf { _ = try await collect(client, r) }
        }
        let cases: [(String, GRPCStatusCode, String, (inout GenerateRequest) -> Void)] = [
            ("negative temperature", .invalidArgument, "temperature", { $0.sampling.temperature = -1 }),
            ("top_p over 1", .invalidArgument, "top-p", { $0.sampling.topP = 1.5 }),
            ("max_tokens over the limit", .invalidArgument, "max_tokens", { $0.maxTokens = 101 }),
            (
                "prompt over the context", .invalidArgument, "context",
                { $0.prompt = String(repeating: "a", count: 400) }
            ),
            ("prompt and token_ids", .invalidArgument, "token_ids", { $0.tokenIDs = [1, 2] }),
            (
                "token id outside the vocabulary", .invalidArgument, "token_ids",
                {
                    $0.prompt = ""; $0.tokenIDs = [999_999]
                }
            ),
            ("empty prompt", .invalidArgument, "prompt", { $0.prompt = "" }),
            (
                "two routing choices", .invalidArgument, "experts, router",
                {
                    $0.experts = [("reverse", 1)]; $0.router = "token"
                }
            ),
            ("malformed router_spec", .invalidArgument, "router_spec", { $0.routerSpec = [0xff, 0xff, 0xff] }),
            (
                "path separator in an expert name", .invalidArgument, "experts[0].name",
                { $0.experts = [("../reverse", 1)] }
            ),
            ("unknown expert", .notFound, "experts[0]: unknown expert 'nope'", { $0.experts = [("nope", 1)] }),
            (
                "an expert named twice", .invalidArgument, "experts[1].name: 'reverse' is experts[0] too",
                { $0.experts = [("reverse", 1), ("reverse", 0.5)] }
            ),
            ("unknown router", .notFound, "router: unknown router 'nope'", { $0.router = "nope" }),
            (
                "message over the size cap", .resourceExhausted, "larger than max",
                { $0.prompt = String(repeating: "x", count: 100_000) }
            )
        ]
        for (label, code, field, edit) in cases {
            let status = await generate(edit)
            #expect(status?.code == code, "\(label): \(String(describing: status))")
            #expect(status?.message.contains(field) == true, "\(label): \(String(describing: status))")
        }
        // Router spec whose experts are not in the registry.
        var foreign = try RouterWire.read(TestServer.modelsRoot.appendingPathComponent("routers/sentence.pb"))
        foreign.experts[0].name = "absent"
        #expect(await generate { $0.routerSpec = RouterWire.encode(foreign) }?.code == .notFound)
        var wrongHash = try RouterWire.read(TestServer.modelsRoot.appendingPathComponent("routers/sentence.pb"))
        wrongHash.experts[0].sha256 = String(repeating: "0", count: 64)
        #expect(await generate { $0.routerSpec = RouterWire.encode(wrongHash) }?.code == .failedPrecondition)
        // Registry RPCs.
        #expect(await statusCode { try await client.addExpert(name: "x", path: "/etc") } == .permissionDenied)
        #expect(await statusCode { try await client.addExpert(name: "a/b", path: "/etc") } == .invalidArgument)
        let staged = try s.stage("reverse", as: "dup")
        #expect(await statusCode { try await client.addExpert(name: "reverse", path: staged.path) } == .alreadyExists)
        // A file in a staged adapter that links outside the allowed roots is not read.
        let linked = try s.stage("reverse", as: "linked")
        let weights = linked.appendingPathComponent("adapter_model.safetensors")
        try FileManager.default.removeItem(at: weights)
        try FileManager.default.createSymbolicLink(
            at: weights,
            withDestinationURL: TestServer.modelsRoot.appendingPathComponent(
                "experts/reverse/adapter_model.safetensors"))
        #expect(await statusCode { try await client.addExpert(name: "linked", path: linked.path) } == .permissionDenied)
        #expect(await statusCode { try await client.removeExpert(name: "nope") } == .notFound)
        #expect(await statusCode { try await client.removeExpert(name: "..") } == .invalidArgument)
        #expect(await statusCode { _ = try await client.health(service: "nope") } == .notFound)
        // A method nobody serves.
        let raw = try? await client.channel.unary("/switchyard.v1.Inference/Nope", [])
        #expect(raw == nil)
        #expect(
            await statusCode { _ = try await client.channel.unary("/switchyard.v1.Inference/Nope", []) }
                == .unimplemented)
        // Malformed request bytes.
        #expect(
            await statusCode { _ = try await client.channel.unary(InferenceWire.method("Info"), [0xff, 0xff]) }
                == .invalidArgument)
        // The server still works after all of that.
        #expect(try await collect(client, GenerateRequest(prompt: Self.prompt)).finish != nil)
    }

    /// Replicas share a registry directory: an expert another process adds is found on first
    /// use, one it removes is gone at once even when its weights are still cached here.
    /// The core reads a port modulo 65536 (`:99999` bound 34463): such addresses are refused
    /// before it sees them.
    @Test func listenAddressesAreHostAndAPortInRange() throws {
        for bad in ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1:5x", ":50051", "foo"]
        {
            #expect(throws: GRPCStatus.self, "\(bad)") { try HostPort.check(bad) }
        }
        for good in ["127.0.0.1:0", "127.0.0.1:65535", "[::1]:50051", "localhost:50051"] {
            #expect(throws: Never.self, "\(good)") { try HostPort.check(good) }
        }
        // A client target with a scheme is the core's to read.
        for target in ["dns:///localhost:50051", "ipv4:127.0.0.1:50051", "unix:/tmp/s.sock"] {
            #expect(throws: Never.self, "\(target)") { try HostPort.checkTarget(target) }
        }
        #expect(throws: GRPCStatus.self) { try HostPort.checkTarget("127.0.0.1:99999") }
    }

    @Test func theRegistryDirectoryIsTheTruth() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let client = s.client()
        var r = GenerateRequest(prompt: Self.prompt)
        r.experts = [("reverse", 1)]
        r.maxTokens = 2
        #expect(try await collect(client, r).finish != nil)  // now cached
        try FileManager.default.removeItem(at: s.registry.directory.appendingPathComponent("reverse"))
        #expect(await statusCode { _ = try await collect(client, r) } == .notFound)
        #expect(try await client.listExperts().allSatisfy { $0.string("name") != "reverse" })
        try FileManager.default.copyItem(
            at: TestServer.modelsRoot.appendingPathComponent("experts/uppercase"),
            to: s.registry.directory.appendingPathComponent("written-elsewhere"))
        r.experts = [("written-elsewhere", 1)]
        #expect(try await collect(client, r).finish != nil)
    }

    /// `messages` go through the chat template; without one they are refused.
    @Test func chatMessagesUseTheTemplate() async throws {
        let s = try TestServer(
            chatTemplate: try ChatTemplate(
                "{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}{{ '\\nAnswer:' }}{% endif %}"
            ))
        defer { s.stop() }
        var chat = GenerateRequest()
        chat.messages = [("user", "Write cat backwards.")]
        chat.experts = [("reverse", 1)]
        // The rendered text is encoded without the tokenizer's special tokens (apply_chat_template's rule).
        var plain = GenerateRequest(tokenIDs: s.tokenizer.encode("Write cat backwards.\nAnswer:"))
        plain.experts = [("reverse", 1)]
        let client = s.client()
        #expect(try await collect(client, chat).ids == (try await collect(client, plain).ids))
        chat.prompt = "also a prompt"
        #expect(await statusCode { _ = try await collect(client, chat) } == .invalidArgument)
        let bare = try TestServer()
        defer { bare.stop() }
        chat.prompt = ""
        #expect(await statusCode { _ = try await collect(bare.client(), chat) } == .failedPrecondition)
    }

    @Test func authenticationWhenATokenIsSet() async throws {
        let s = try TestServer { $0.token = "s3cret" }
        defer { s.stop() }
        #expect(await statusCode { _ = try await s.client().info() } == .unauthenticated)
        #expect(await statusCode { _ = try await s.client(token: "wrong").listExperts() } == .unauthenticated)
        #expect(
            await statusCode { _ = try await collect(s.client(), GenerateRequest(prompt: "hi")) } == .unauthenticated)
        #expect(try await s.client(token: "s3cret").info().string("version") == InferenceServer.version)
        // Health stays open for probes.
        #expect(try await s.client().health() == 1)
    }

    @Test func cancellationAndDeadlinesStopGenerationMidStream() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let client = s.client()
        var long = GenerateRequest(prompt: Self.prompt)
        long.maxTokens = 200
        long.ignoreEOS = true
        // The consumer stops after three tokens: the call is cancelled, the engine drops it.
        var seen = 0
        for try await _ in client.generate(long) {
            seen += 1
            if seen == 3 { break }
        }
        #expect(seen == 3)
        try await waitUntil { try await client.info().uint("cancelled_total") == 1 }
        // A deadline shorter than the generation: DEADLINE_EXCEEDED, and the request leaves.
        let hurried = s.client(timeout: 0.05)
        long.maxTokens = 250
        #expect(await statusCode { _ = try await collect(hurried, long) } == .deadlineExceeded)
        try await waitUntil { try await client.info().uint("cancelled_total") == 2 }
        let info = try await client.info()
        #expect(info.uint("active_requests") == 0 && info.uint("queue_depth") == 0)
    }

    @Test func shutdownEndsRunningGenerationsAndReleasesThePort() async throws {
        let s = try TestServer { $0.shutdownGrace = 0 }
        defer { s.stop() }
        let client = s.client()
        var long = GenerateRequest(prompt: Self.prompt)
        long.maxTokens = 250
        long.ignoreEOS = true
        var finish: String? = nil, failure: GRPCStatusCode? = nil, seen = 0
        do {
            for try await e in client.generate(long) {
                seen += 1
                if seen == 2 { Thread.detachNewThread { s.server.shutdown() } }
                if let f = e.finishReason { finish = f }
            }
        } catch let e as GRPCStatus { failure = e.code }
        // Either the summary says cancelled (with CANCELLED status) or the call was cut off.
        #expect(
            finish == "cancelled" || failure != nil,
            "finish \(String(describing: finish)), status \(String(describing: failure))")
        #expect(seen < 250)
        try await waitUntil { await statusCode { _ = try await s.client(timeout: 2).info() } != nil }
    }

    @Test func admissionControlRefusesWhenTheQueueIsFull() async throws {
        let s = try TestServer {
            $0.maxBatch = 1; $0.maxQueue = 1
        }
        defer { s.stop() }
        let client = s.client()
        var long = GenerateRequest(prompt: Self.prompt)
        long.maxTokens = 150
        long.ignoreEOS = true
        // One request runs, one waits; the rest are refused at once.
        let request = long
        let results = await withTaskGroup(of: GRPCStatusCode?.self) { group in
            for _ in 0..<6 { group.addTask { await statusCode { _ = try await collect(client, request) } } }
            var codes: [GRPCStatusCode?] = []
            for await c in group { codes.append(c) }
            return codes
        }
        #expect(results.filter { $0 == nil }.count >= 1)
        #expect(results.contains(.resourceExhausted))
        #expect(results.allSatisfy { $0 == nil || $0 == .resourceExhausted })
        #expect(try await client.info().uint("rejected_total") >= 1)
    }
}

/// Polls `condition` (up to 10 s).
func waitUntil(_ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    Issue.record("condition not met within 10 s")
}
