// Loads the embedded demo base model, leases two experts from the registry, routes a prompt with
// the sentence router and streams the generation; then runs the same prompt on a 50/50 mix of the
// two experts. Run from the repository root: `swift run --package-path Examples/embed embed`.
import Foundation
import Switchyard

let models = URL(fileURLWithPath: CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Models")
let model = try LlamaModel.load(path: models.appendingPathComponent("base"))
let tokenizer = try Tokenizer.load(model: models.appendingPathComponent("base"))
// Experts are checked against the model: shapes, and the base they record (switchyard_base.json).
let registry = try ExpertRegistry(directory: models.appendingPathComponent("experts"), model: model, create: false)

let prompt = "Write cat backwards.\nAnswer:"
let request = GenerationRequest(
    promptTokens: tokenizer.encode(prompt, addSpecialTokens: true), maxNewTokens: 16,
    stopTokens: Set([tokenizer.eosTokenID].compactMap { $0 }))

// A router from its wire format, bound to the registry's experts (names and sha256 checked).
let spec = try RouterWire.read(models.appendingPathComponent("routers/sentence.pb"))
let (router, routerLease) = try BoundRouter.bind(spec, model: model, registry: registry)
defer { routerLease.release() }
var text = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: true)
print("routed:", terminator: "")
_ = try Generator(model: model).generate(request, router: router) { token in
    print(text.append(token), terminator: "")
    return true
}
print(text.flush())

// Two experts leased (pinned in the registry's cache while we use them), mixed 50/50.
let lease = try registry.acquire(["reverse", "uppercase"])
defer { lease.release() }
let mixed = try Generator(model: model).generate(request, routing: .experts(lease.adapters, weights: [0.5, 0.5]))
print("reverse+uppercase:", tokenizer.decode(mixed, skipSpecialTokens: true))
