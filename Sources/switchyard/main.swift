import Foundation
import Switchyard

/// The `switchyard` command-line tool: one file per subcommand.
let subcommands: [any Subcommand.Type] = [
    DemoCommand.self,
    GenerateCommand.self, ScoreCommand.self, TokenizeCommand.self, ExpertsCommand.self, MergeCommand.self,
    RouterCommand.self, RouteCommand.self, EvalCommand.self, ComposeCommand.self, BenchCommand.self,
    ServeCommand.self, ClientCommand.self,
]

let topHelp = """
USAGE: switchyard <subcommand> [options]

Switchyard: a mixture-of-LoRA-experts routing engine.

SUBCOMMANDS:
\(subcommands.map { "  " + $0.name.padding(toLength: 12, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n"))

Run `switchyard <subcommand> --help` for a subcommand's options.
"""

var argv = Array(CommandLine.arguments.dropFirst())
guard let first = argv.first else {
    // A usage error: the help goes to standard error, like every other error.
    printError(topHelp)
    exit(2)
}
guard !["-h", "--help", "help"].contains(first) else {
    print(topHelp)
    exit(0)
}
guard let command = subcommands.first(where: { $0.name == first }) else {
    printError("error: unknown subcommand \(EscapedText.quoted(first)) (run `switchyard --help` for the list)")
    exit(2)
}
let rest = Array(argv.dropFirst())
if command != BenchCommand.self, rest.contains("--help") || rest.contains("-h") {
    print(command.help)
    exit(0)
}
do {
    try command.run(rest)
} catch let e as UsageError {
    printError("error: \(EscapedText.oneLine(e.description)) (see `switchyard \(first) --help`)")
    exit(2)
} catch {
    // One line whatever the error carries (names from files, requests, the command line).
    printError("error: \(EscapedText.oneLine("\(error)"))")
    exit(1)
}
