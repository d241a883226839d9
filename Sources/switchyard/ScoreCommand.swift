import Foundation
import Switchyard

/// `switchyard score`: full logits for a token sequence (parity checks from outside).
enum ScoreCommand: Subcommand {
    static let name = "score"
    static let summary = "Print the logits of every position for given token ids"
    static let help = """
    USAGE: switchyard score [--model DIR] --token-ids 1,2,3 [--format json]

    Runs one forward pass over the tokens and prints the logits after each position.
    With --format json: {"token_ids":[…],"logits":[[…],…]} (one row of vocabulary logits per
    position). Text format prints, per position, the top 5 next tokens.

    OPTIONS:
      --model DIR         Hugging Face model directory. Default: the embedded model.
      --token-ids LIST    Comma-separated token ids.
      --format text|json  Output format (default text).
    \(ExpertOptions.help)
      -h, --help          Show this help.
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: Set(["model", "token-ids", "format"]).union(ExpertOptions.valued))
        guard args.positionals.isEmpty else { throw UsageError("score takes no positional arguments") }
        guard let list = args.string("token-ids") else { throw UsageError("score needs --token-ids") }
        let ids = try list.split(separator: ",").map { part -> Int in
            guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else { throw UsageError("--token-ids: \(EscapedText.quoted(part)) is not an integer") }
            return v
        }
        guard !ids.isEmpty else { throw UsageError("--token-ids is empty") }
        let json = try args.wantsJSON()
        let model = try ModelLocator.loadModel(args, path: try ModelLocator.modelDirectory(args))
        let experts = try ExpertOptions.resolve(args, model: model)
        let routing: RequestRouting = experts.map { .fixed($0.mix, experts: $0.lease.adapters) } ?? .base
        let logits = try model.scoreLogits(ids, routing: routing)
        if json {
            var out = "{\"token_ids\":\(JSONText.array(ids)),\"logits\":["
            for r in 0..<logits.rows {
                if r > 0 { out += "," }
                out += JSONText.array(logits.row(r))
            }
            print(out + "]}")
        } else {
            for r in 0..<logits.rows {
                let row = logits.row(r)
                let top = row.indices.sorted { row[$0] > row[$1] }.prefix(5)
                print("position \(r) (token \(ids[r])): " + top.map { "\($0):\(row[$0])" }.joined(separator: " "))
            }
        }
    }
}
