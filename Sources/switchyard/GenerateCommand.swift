import Foundation
import Switchyard

/// `switchyard generate`: text generation from a prompt, streamed to stdout.
enum GenerateCommand: Subcommand {
    static let name = "generate"
    static let summary = "Generate text from a prompt"
    static let help = """
    USAGE: switchyard generate [--model DIR] [options] "prompt"

    Generates a continuation of the prompt and streams it to standard output.

    OPTIONS:
      --model DIR|FILE          Hugging Face model directory (config.json, safetensors,
                                tokenizer.json) or a GGUF file. Default: the embedded model.
    \(ModelLocator.weightsHelp)
      --max-tokens N            Most new tokens to generate (default 64).
      --temperature T           0 = greedy (default); > 0 samples.
      --top-k K                 Sample among the K most likely tokens (default 0: off).
      --top-p P                 Nucleus sampling threshold in (0, 1] (default 1: off).
      --repetition-penalty R    > 1 discourages repeats (default 1: off).
      --seed S                  Random seed for sampling (default 0).
      --no-stop                 Do not stop at the end-of-sequence token.
    \(ChatPrompt.help)
    \(ExpertOptions.help)
      --format text|json        json prints {"prompt_ids":[…],"ids":[…],"text":"…"}.
      -h, --help                Show this help.
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: Set<String>(["model", "max-tokens", "temperature", "top-k", "top-p",
                                                      "repetition-penalty", "seed", "format"]).union(ExpertOptions.valued).union(ChatPrompt.valued),
                                       switches: Set(["no-stop"]).union(ChatPrompt.switches))
        guard args.positionals.count == 1 else { throw UsageError("generate expects exactly one prompt argument") }
        let json = try args.wantsJSON()
        let dir = try ModelLocator.modelDirectory(args)
        let model = try ModelLocator.loadModel(args, path: dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let sampling = SamplingParameters(
            temperature: try args.float("temperature") ?? 0,
            topK: try args.int("top-k") ?? 0,
            topP: try args.float("top-p") ?? 1,
            repetitionPenalty: try args.float("repetition-penalty") ?? 1,
            seed: UInt64(truncatingIfNeeded: try args.int("seed") ?? 0))
        let maxTokens = try args.int("max-tokens") ?? 64
        guard maxTokens >= 0 else { throw UsageError("--max-tokens must be ≥ 0") }
        let promptIDs = try ChatPrompt.encode(args.positionals[0], args: args, modelPath: dir, tokenizer: tokenizer)
        guard !promptIDs.isEmpty else { throw UsageError("the prompt encodes to no tokens") }
        var stops = Set(model.config.eosTokenIDs)
        if let eos = tokenizer.eosTokenID { stops.insert(eos) }
        if args.flag("no-stop") { stops = [] }
        let request = GenerationRequest(promptTokens: promptIDs, maxNewTokens: maxTokens, sampling: sampling, stopTokens: stops)
        var stream = StreamingDecoder(tokenizer: tokenizer)
        let experts = try ExpertOptions.resolve(args, model: model)
        let routing: RequestRouting = experts.map { .fixed($0.mix, experts: $0.lease.adapters) } ?? .base
        let ids = try Generator(model: model).generate(request, routing: routing) { token in
            if !json && !stops.contains(token) { writeOut(stream.append(token)) }
            return true
        }
        if json {
            print("{\"prompt_ids\":\(JSONText.array(promptIDs)),\"ids\":\(JSONText.array(ids)),\"text\":\(JSONText.string(tokenizer.decode(ids, skipSpecialTokens: true)))}")
        } else {
            writeOut(stream.flush() + "\n")
        }
    }
}
