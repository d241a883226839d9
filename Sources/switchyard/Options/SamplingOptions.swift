import Foundation
import Switchyard

/// `--max-tokens`, `--temperature`, `--top-k`, `--top-p`, `--repetition-penalty`, `--seed`,
/// `--no-stop`: how a generation samples and when it stops (local and remote alike).
struct SamplingOptions: ParsableArguments {
    @Option(help: "Most new tokens to generate.")
    var maxTokens = 64
    @Option(placeholder: "T", help: "0 = greedy; > 0 samples.")
    var temperature: Float = 0
    @Option(placeholder: "K", help: "Sample among the K most likely tokens (0: off).")
    var topK = 0
    @Option(placeholder: "P", help: "Nucleus sampling threshold in (0, 1] (1: off).")
    var topP: Float = 1
    @Option(placeholder: "R", help: "> 1 discourages repeats (1: off).")
    var repetitionPenalty: Float = 1
    @Option(placeholder: "S", help: "Random seed for sampling.")
    var seed = 0
    @Flag(help: "Do not stop at the end-of-sequence token.")
    var noStop: Bool

    func validate() throws {
        guard maxTokens >= 0 else { throw UsageError("--max-tokens must be ≥ 0, got \(maxTokens)") }
        // The library's rule, checked here too so that a remote call cannot send a value the wire
        // reads as "unset" (top-p 0, repetition penalty 0 mean the defaults there).
        do { try parameters.validate() } catch { throw UsageError("\(error)") }
    }

    var parameters: SamplingParameters {
        SamplingParameters(
            temperature: temperature, topK: topK, topP: topP, repetitionPenalty: repetitionPenalty,
            seed: UInt64(truncatingIfNeeded: seed))
    }
}
