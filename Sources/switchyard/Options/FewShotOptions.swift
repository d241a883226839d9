import Foundation
import Switchyard

/// `--examples FILE` and `--shots N`: the few-shot examples that `compose` and `client compose`
/// learn a composition from.
struct FewShotOptions: ParsableArguments {
    @Option(
        placeholder: "FILE", help: "JSONL {\"prompt\": …, \"completion\": …} (e.g. a held-out task's train.jsonl).")
    var examples: String
    @Option(help: "Use the first N examples.")
    var shots = 5

    func validate() throws {
        guard shots >= 1 else { throw UsageError("--shots must be ≥ 1, got \(shots)") }
    }

    /// The file's first `shots` examples (fewer when the file has fewer). An example whose prompt
    /// or completion is empty is refused naming the file and the example: the objective is the
    /// completion's cross-entropy after the prompt, which such a row does not have.
    func read() throws -> [EvalCommand.Example] {
        let rows = Array(try EvalCommand.readExamples(examples).prefix(shots))
        guard !rows.isEmpty else { throw SwitchyardError.invalidArgument("\(examples): no examples") }
        for (i, row) in rows.enumerated() {
            for (field, text) in [("prompt", row.prompt), ("completion", row.completion)] where text.isEmpty {
                throw SwitchyardError.invalidArgument("\(examples): example \(i + 1) has an empty \"\(field)\"")
            }
        }
        return rows
    }
}
