import Foundation
import Switchyard

/// A usage mistake on the command line (exit status 2, message on stderr, pointing at the help of
/// the command it was made in).
struct UsageError: Error, CustomStringConvertible {
    let description: String
    /// The command whose `--help` explains the mistake (`switchyard bench decode`), once known.
    var command: String?

    init(_ message: String) { description = message }
}

/// A `switchyard` command or group of commands, as the dispatcher sees it.
protocol CommandEntry {
    /// The word that selects it.
    static var name: String { get }
    /// One line for the parent's command list.
    static var summary: String { get }
    /// Full `--help` text; `path` is the words before this command's name (`["switchyard"]`).
    static func help(path: [String]) throws -> String
    /// Parses `argv` (the words after the name) and runs.
    static func dispatch(_ argv: [String], path: [String]) throws
}

/// A command with its declared options (`Options`, a `ParsableArguments` type) and a body that
/// receives them parsed: help and parsing both come from the declarations.
protocol Command: CommandEntry {
    associatedtype Options: ParsableArguments
    /// Paragraphs shown between the usage line and the options.
    static var discussion: String { get }
    static func run(_ options: Options) throws
}

/// `-h` or `--help` among the options (before any `--`).
func asksForHelp(_ argv: [String]) -> Bool {
    argv.prefix { $0 != "--" }.contains { $0 == "--help" || $0 == "-h" }
}

extension Command {
    static var discussion: String { "" }

    static func help(path: [String]) throws -> String { try generatedHelp(path: path) }

    /// The usage line, the discussion and the options, all but the discussion from `Options`.
    static func generatedHelp(path: [String]) throws -> String {
        let usage = "USAGE: " + (path + [name]).joined(separator: " ") + " " + (try Options.usageTail())
        return [usage, discussion, try Options.optionsHelp()].filter { !$0.isEmpty }.joined(separator: "\n\n")
    }

    static func dispatch(_ argv: [String], path: [String]) throws {
        if asksForHelp(argv) {
            print(try help(path: path))
            return
        }
        let options = try parse(argv, path: path)
        // A usage error found while running (a value checked against the model or the file it
        // loaded) points at this command's help too.
        do { try run(options) } catch var e as UsageError {
            e.command = e.command ?? (path + [name]).joined(separator: " ")
            throw e
        }
    }

    /// `Options.parse`, a usage error pointing at this command's help.
    static func parse(_ argv: [String], path: [String]) throws -> Options {
        do { return try Options.parse(argv) } catch var e as UsageError {
            e.command = e.command ?? (path + [name]).joined(separator: " ")
            throw e
        }
    }
}

/// A command made of subcommands (`switchyard experts list`, `switchyard bench decode`).
protocol CommandGroup: CommandEntry {
    static var discussion: String { get }
    static var subcommands: [any CommandEntry.Type] { get }
}

extension CommandGroup {
    static var discussion: String { "" }

    static func help(path: [String]) throws -> String {
        let full = (path + [name]).joined(separator: " ")
        let width = max(12, (subcommands.map { $0.name.count }.max() ?? 0) + 2)
        let list = subcommands.map { "  " + $0.name.padding(toLength: width, withPad: " ", startingAt: 0) + $0.summary }
        return [
            "USAGE: \(full) <subcommand> [options]", discussion, "SUBCOMMANDS:\n" + list.joined(separator: "\n"),
            "Run `\(full) <subcommand> --help` for a subcommand's options."
        ]
        .filter { !$0.isEmpty }.joined(separator: "\n\n")
    }

    static func dispatch(_ argv: [String], path: [String]) throws {
        let full = (path + [name]).joined(separator: " ")
        let names = subcommands.map { $0.name }.joined(separator: ", ")
        guard let first = argv.first else {
            var e = UsageError("\(full) needs a subcommand: \(names)")
            e.command = full
            throw e
        }
        if ["-h", "--help", "help"].contains(first) {
            print(try help(path: path))
            return
        }
        guard let sub = subcommands.first(where: { $0.name == first }) else {
            var e = UsageError("unknown subcommand \(EscapedText.quoted(first)) of \(full) (available: \(names))")
            e.command = full
            throw e
        }
        try sub.dispatch(Array(argv.dropFirst()), path: path + [name])
    }
}

/// Writes to standard error.
func printError(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// Writes to standard output without a newline, flushing (for streamed text).
func writeOut(_ s: String) {
    FileHandle.standardOutput.write(s.data(using: .utf8)!)
}
