import Foundation
import Switchyard

/// The `switchyard` command-line tool: one file per subcommand.
enum SwitchyardCommand: CommandGroup {
    static let name = "switchyard"
    static let summary = "A mixture-of-LoRA-experts routing engine"
    static let discussion = "Switchyard: a mixture-of-LoRA-experts routing engine."
    static var subcommands: [any CommandEntry.Type] {
        [
            DemoCommand.self,
            GenerateCommand.self, ScoreCommand.self, TokenizeCommand.self, ExpertsCommand.self, MergeCommand.self,
            RouterCommand.self, RouteCommand.self, EvalCommand.self, ComposeCommand.self, BenchCommand.self,
            ServeCommand.self, ClientCommand.self
        ]
    }
}

let argv = Array(CommandLine.arguments.dropFirst())
do {
    guard !argv.isEmpty else {
        // A usage error: the help goes to standard error, like every other error.
        printError(try SwitchyardCommand.help(path: []))
        exit(2)
    }
    try SwitchyardCommand.dispatch(argv, path: [])
} catch let e as UsageError {
    printError("error: \(EscapedText.oneLine(e.description)) (see `\(e.command ?? "switchyard") --help`)")
    exit(2)
} catch {
    // One line whatever the error carries (names from files, requests, the command line).
    printError("error: \(EscapedText.oneLine("\(error)"))")
    exit(1)
}
