import Foundation
import Testing

@testable import Switchyard

/// The server batches requests that each use different experts or routers: one forward pass over
/// all of them must give each the logits it gets alone.
@Suite struct MixedRoutingBatchTests {
    @Test func requestsWithDifferentRoutersShareABatch() throws {
        let s = try RouterParityTests.setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let names = ["sentence-topk", "token-layers", "centroid-every2", "smora"]
        var routers: [BoundRouter] = []
        var leases: [ExpertLease] = []
        for n in names {
            let (r, l) = try BoundRouter.bind(
                try RouterWire.decode(try RouterParityTests.bytes(n)), model: s.model, registry: s.registry)
            routers.append(r)
            leases.append(l)
        }
        defer { leases.forEach { $0.release() } }
        let prompts = [s.prompts[0], s.prompts[1], s.prompts[2], s.prompts[0], s.prompts[1]]
        // Request i uses routers[i] (the last one the base model), all in one generation batch.
        let requests = prompts.map { GenerationRequest(promptTokens: $0, maxNewTokens: 6) }
        func routing(_ i: Int) throws -> RequestRouting {
            i < routers.count ? try routers[i].routing(prompt: prompts[i]) : .base
        }
        func engineRouting(_ i: Int) -> Generator.Routing {
            i < routers.count ? .router(routers[i], trace: nil) : .resolved(.base)
        }
        let together = try Generator(model: s.model).generateBatch(
            requests, routing: prompts.indices.map(engineRouting))
        for i in prompts.indices {
            let alone = try Generator(model: s.model).generateBatch([requests[i]], routing: [engineRouting(i)])[0]
            #expect(together[i] == alone, "request \(i) (\(i < names.count ? names[i] : "base"))")
        }
        // And the prefill logits of the mixed batch equal each request's own.
        let rows = try prompts.indices.map {
            StepDeltaBuilder.Rows(routing: try routing($0), firstPosition: 0, count: prompts[$0].count)
        }
        let delta = try StepDeltaBuilder().build(rows)
        let batched = try s.model.forward(
            prompts.map { SequenceInput(tokens: $0, cache: s.model.makeCache()) }, logits: .all, delta: delta)
        for i in 0..<routers.count {
            let (alone, _) = try RouterParityTests.run(routers[i], s.model, prompts[i])
            #expect(maxAbsDifference(batched[i].data, alone.data) <= 1e-4, "\(names[i])")
        }
    }
}
