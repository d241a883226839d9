import Foundation
import Switchyard

/// The parsed arguments of one subcommand: `--name value` options (repeatable), `--flag` switches
/// and positionals. Follows swift-argument-parser's conventions: `--name=value` works too, and
/// `--` ends option parsing.
struct ParsedArguments {
    var options: [String: [String]] = [:]
    var flags: Set<String> = []
    var positionals: [String] = []

    /// Parses `args` given which names take a value and which are switches; anything else is an error.
    /// Every command that takes `--model` also takes `--weights` (see `ModelLocator.loadModel`).
    init(_ args: [String], valued: Set<String>, switches: Set<String> = []) throws {
        let valued = valued.contains("model") ? valued.union(["weights"]) : valued
        var i = 0
        var onlyPositionals = false
        while i < args.count {
            let a = args[i]
            i += 1
            if onlyPositionals || !a.hasPrefix("--") || a == "-" {
                positionals.append(a)
                continue
            }
            if a == "--" { onlyPositionals = true; continue }
            var name = String(a.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if switches.contains(name) {
                guard inline == nil else { throw UsageError("--\(name) takes no value") }
                flags.insert(name)
            } else if valued.contains(name) {
                if let inline {
                    options[name, default: []].append(inline)
                } else {
                    guard i < args.count else { throw UsageError("--\(name) needs a value") }
                    options[name, default: []].append(args[i])
                    i += 1
                }
            } else {
                throw UsageError("unknown option --\(name)")
            }
        }
    }

    func string(_ name: String) -> String? { options[name]?.last }

    func int(_ name: String) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s) else { throw UsageError("--\(name) expects an integer, got \(EscapedText.quoted(s))") }
        return v
    }

    func float(_ name: String) throws -> Float? {
        guard let s = string(name) else { return nil }
        guard let v = Float(s), v.isFinite else { throw UsageError("--\(name) expects a number, got \(EscapedText.quoted(s))") }
        return v
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }

    /// `--format text|json` (text by default).
    func wantsJSON() throws -> Bool {
        switch string("format") ?? "text" {
        case "text": return false
        case "json": return true
        case let other: throw UsageError("--format must be 'text' or 'json', got \(EscapedText.quoted(other))")
        }
    }
}

/// A subcommand not yet declared through `Command` (hand-written help, `ParsedArguments`).
protocol Subcommand: CommandEntry {
    /// Full `--help` text.
    static var help: String { get }
    static func run(_ args: [String]) throws
}

extension Subcommand {
    static func help(path: [String]) -> String { help }

    static func dispatch(_ argv: [String], path: [String]) throws {
        if self != BenchCommand.self, asksForHelp(argv) {
            print(help)
            return
        }
        do { try run(argv) } catch var e as UsageError {
            e.command = e.command ?? (path + [name]).joined(separator: " ")
            throw e
        }
    }
}
