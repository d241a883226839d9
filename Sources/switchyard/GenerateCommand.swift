import Foundation
import Switchyard

/// `switchyard generate`: text generation from a prompt, streamed to stdout.
enum GenerateCommand: Command {
    static let name = "generate"
    static let summary = "Generate text from a prompt"
    static let discussion = """
        Generates a continuation of the prompt and streams it to standard output.
        With --format json prints {"prompt_ids":[…],"ids":[…],"text":"…"} at the end instead.
        """

    struct Options: ParsableArguments {
        @Argument(help: "The prompt text.")
        var prompt: String
        @OptionGroup var model: ModelOptions
        @OptionGroup var sampling: SamplingOptions
        @OptionGroup var chat: ChatOptions
        @OptionGroup var experts: ExpertOptions
        @OptionGroup var output: FormatOption
    }

    /// What `--format json` prints.
    struct JSONOutput: Encodable {
        var promptIDs: [Int]
        var ids: [Int]
        var text: String

        enum CodingKeys: String, CodingKey {
            case promptIDs = "prompt_ids", ids, text
        }
    }

    static func run(_ options: Options) throws {
        let json = options.output.json
        let dir = try options.model.directory()
        let model = try options.model.load(dir)
        let tokenizer = try Tokenizer.load(model: dir)
        let promptIDs = try options.chat.encode(options.prompt, modelPath: dir, tokenizer: tokenizer)
        guard !promptIDs.isEmpty else { throw UsageError("the prompt encodes to no tokens") }
        let stops = options.sampling.noStop ? [] : StopTokens.of(model: model, tokenizer: tokenizer)
        let request = GenerationRequest(
            promptTokens: promptIDs, maxNewTokens: options.sampling.maxTokens,
            sampling: options.sampling.parameters, stopTokens: stops)
        var stream = StreamingDecoder(tokenizer: tokenizer)
        let experts = try options.experts.resolve(model: model)
        let routing: RequestRouting = experts.map { .fixed($0.mix, experts: $0.lease.adapters) } ?? .base
        let ids = try Generator(model: model).generate(request, routing: routing) { token in
            if !json && !stops.contains(token) { writeOut(stream.append(token)) }
            return true
        }
        if json {
            try JSONOutput(promptIDs: promptIDs, ids: ids, text: tokenizer.decode(ids, skipSpecialTokens: true))
                .printJSON()
        } else {
            writeOut(stream.flush() + "\n")
        }
    }
}
