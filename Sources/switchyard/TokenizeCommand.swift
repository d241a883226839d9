import Foundation
import Switchyard

/// `switchyard tokenize`: text to token ids with a model's tokenizer.
enum TokenizeCommand: Subcommand {
    static let name = "tokenize"
    static let summary = "Encode text to token ids"
    static let help = """
    USAGE: switchyard tokenize [--model DIR] [--file F] [--format json] ["text"]

    Encodes the text (or the contents of --file) with the model's tokenizer.json.
    With --format json prints {"ids":[…]}; text format prints the ids separated by spaces.

    OPTIONS:
      --model DIR            Model directory holding tokenizer.json. Default: the embedded model.
      --file F               Read the text from a file instead of the argument.
      --add-special-tokens   Apply the tokenizer's post-processor (e.g. prepend BOS).
      --format text|json     Output format (default text).
      -h, --help             Show this help.
    """

    static func run(_ argv: [String]) throws {
        let args = try ParsedArguments(argv, valued: ["model", "file", "format"], switches: ["add-special-tokens"])
        let text: String
        if let file = args.string("file") {
            guard args.positionals.isEmpty else { throw UsageError("give either --file or a text argument, not both") }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw SwitchyardError.io(path: file, reason: "cannot read file")
            }
            guard let s = String(data: data, encoding: .utf8) else { throw SwitchyardError.io(path: file, reason: "not valid UTF-8") }
            text = s
        } else {
            guard args.positionals.count == 1 else { throw UsageError("tokenize expects one text argument (or --file)") }
            text = args.positionals[0]
        }
        let json = try args.wantsJSON()
        let tokenizer = try Tokenizer.load(model: try ModelLocator.modelDirectory(args))
        let ids = try tokenizer.encodeChecked(text, addSpecialTokens: args.flag("add-special-tokens"))
        print(json ? "{\"ids\":\(JSONText.array(ids))}" : ids.map(String.init).joined(separator: " "))
    }
}
