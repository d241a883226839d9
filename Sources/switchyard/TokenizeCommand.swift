import Foundation
import Switchyard

/// `switchyard tokenize`: text to token ids with a model's tokenizer.
enum TokenizeCommand: Command {
    static let name = "tokenize"
    static let summary = "Encode text to token ids"
    static let discussion = """
        Encodes the text (or the contents of --file) with the model's tokenizer.json.
        With --format json prints {"ids":[…]}; text format prints the ids separated by spaces.
        """

    struct Options: ParsableArguments {
        @Argument(help: "The text to encode (or give --file).")
        var text: String?
        @Option(placeholder: "FILE", help: "Read the text from a file instead of the argument.")
        var file: String?
        @Flag(help: "Apply the tokenizer's post-processor (e.g. prepend BOS).")
        var addSpecialTokens: Bool
        @OptionGroup var model: ModelOptions
        @OptionGroup var output: FormatOption

        func validate() throws {
            guard (text == nil) != (file == nil) else {
                throw UsageError("give either --file or a text argument (one of them)")
            }
        }
    }

    struct JSONOutput: Encodable {
        var ids: [Int]
    }

    static func run(_ options: Options) throws {
        let text: String
        if let file = options.file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw SwitchyardError.io(path: file, reason: "cannot read file")
            }
            guard let s = String(data: data, encoding: .utf8) else {
                throw SwitchyardError.io(path: file, reason: "not valid UTF-8")
            }
            text = s
        } else {
            text = options.text!
        }
        let tokenizer = try Tokenizer.load(model: try options.model.directory())
        let ids = try tokenizer.encodeChecked(text, addSpecialTokens: options.addSpecialTokens)
        if options.output.json {
            try JSONOutput(ids: ids).printJSON()
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
