import Foundation
import Switchyard

/// `switchyard score`: full logits for a token sequence (parity checks from outside).
enum ScoreCommand: Command {
    static let name = "score"
    static let summary = "Print the logits of every position for given token ids"
    static let discussion = """
        Runs one forward pass over the tokens and prints the logits after each position.
        With --format json: {"token_ids":[…],"logits":[[…],…]} (one row of vocabulary logits per
        position). Text format prints, per position, the top 5 next tokens.
        """

    struct Options: ParsableArguments {
        @Option(placeholder: "1,2,3", help: "Comma-separated token ids.")
        var tokenIDs: TokenIDList
        @OptionGroup var model: ModelOptions
        @OptionGroup var experts: ExpertOptions
        @OptionGroup var output: FormatOption
    }

    static func run(_ options: Options) throws {
        let ids = options.tokenIDs.ids
        let model = try options.model.load(try options.model.directory())
        let experts = try options.experts.resolve(model: model)
        let routing: RequestRouting = experts.map { .fixed($0.mix, experts: $0.lease.adapters) } ?? .base
        let logits = try model.scoreLogits(ids, routing: routing)
        if options.output.json {
            // Written by hand: vocabulary-sized rows, each Float in its shortest round-tripping form.
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

/// `1,2,3`: a non-empty comma-separated list of integers (spaces around each allowed).
struct TokenIDList: ArgumentValue {
    var ids: [Int]

    init?(argument: String) {
        var ids: [Int] = []
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else { return nil }
            ids.append(v)
        }
        guard !ids.isEmpty else { return nil }
        self.ids = ids
    }
    static var placeholder: String { "1,2,3" }
    static var expectation: String { "comma-separated token ids" }
    var argumentDescription: String { ids.map(String.init).joined(separator: ",") }
}
