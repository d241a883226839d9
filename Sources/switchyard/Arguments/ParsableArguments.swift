import Foundation
import Switchyard

/// A set of declared options and arguments (`@Option`, `@Flag`, `@Argument`, `@OptionGroup`
/// properties): the declarations drive both the parser and the help, as in swift-argument-parser.
/// Follows its conventions: `--name value` or `--name=value`, options and positionals in any order,
/// `--` ends option parsing, `-` is a positional.
protocol ParsableArguments {
    init()
    /// Checks between values after parsing (ranges, combinations); throws `UsageError`.
    func validate() throws
}

extension ParsableArguments {
    func validate() throws {}

    /// Parses `argv` into a fresh instance: unknown options, missing or malformed values, missing
    /// required options and stray positionals are `UsageError`s naming the option and value.
    static func parse(_ argv: [String]) throws -> Self {
        let parsed = Self()
        let (slots, groups) = try declarations(parsed)
        var byName: [String: ArgumentSlot] = [:]
        for s in slots where s.kind != .positional { byName[s.name] = s }
        var positionals: [String] = []
        var i = 0
        var onlyPositionals = false
        while i < argv.count {
            let a = argv[i]
            i += 1
            if onlyPositionals || !a.hasPrefix("--") {
                positionals.append(a)
                continue
            }
            if a == "--" {
                onlyPositionals = true
                continue
            }
            var name = String(a.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let slot = byName[name] else { throw UsageError("unknown option --\(EscapedText.escaped(name))") }
            if slot.kind == .flag {
                guard inline == nil else { throw UsageError("--\(name) takes no value") }
                slot.raise()
            } else if let inline {
                try slot.take(inline)
            } else {
                guard i < argv.count else { throw UsageError("--\(name) needs a value (\(slot.synopsis))") }
                try slot.take(argv[i])
                i += 1
            }
        }
        var queue = positionals[...]
        for slot in slots where slot.kind == .positional {
            while let p = queue.first {
                try slot.take(p)
                queue = queue.dropFirst()
                if !slot.isRepeatable { break }
            }
        }
        if let extra = queue.first { throw UsageError("unexpected argument \(EscapedText.quoted(extra))") }
        if let missing = slots.first(where: { $0.isRequired && !$0.wasSet }) {
            throw UsageError("missing \(missing.synopsis)")
        }
        for g in groups { try g.validate() }
        return parsed
    }

    /// Every declaration of `arguments`, names bound; two with one name are a programming error,
    /// reported (and caught by the CLI tests) rather than silently shadowing each other.
    static func declarations(_ arguments: Self) throws -> (slots: [ArgumentSlot], groups: [any ParsableArguments]) {
        let found = reflectDeclarations(arguments)
        var seen = Set<String>(["help"])
        for s in found.slots where s.kind != .positional {
            guard seen.insert(s.name).inserted else {
                throw DeclarationError("--\(s.name) is declared twice in \(Self.self)")
            }
        }
        return found
    }

    /// The OPTIONS (and ARGUMENTS) sections of the help, generated from the declarations.
    static func optionsHelp() throws -> String {
        let slots = try declarations(Self()).slots
        var sections: [String] = []
        let positionals = slots.filter { $0.kind == .positional }
        if !positionals.isEmpty { sections.append("ARGUMENTS:\n" + positionals.map(helpRow).joined(separator: "\n")) }
        let options = slots.filter { $0.kind != .positional }.map(helpRow) + [helpRow("-h, --help", "Show this help.")]
        sections.append("OPTIONS:\n" + options.joined(separator: "\n"))
        return sections.joined(separator: "\n\n")
    }

    /// The usage line's tail: `[options] <prompt>`.
    static func usageTail() throws -> String {
        let slots = try declarations(Self()).slots
        let required = slots.filter { $0.kind == .option && $0.isRequired }.map(\.synopsis)
        let positionals = slots.filter { $0.kind == .positional }.map {
            $0.isRequired ? $0.synopsis : "[\($0.synopsis)]"
        }
        return (required + ["[options]"] + positionals).joined(separator: " ")
    }
}

/// Help rows: the synopsis in a 28-column gutter, the help wrapped to 100 columns beside it.
private func helpRow(_ slot: ArgumentSlot) -> String {
    var text = slot.help
    if slot.isRepeatable && slot.kind == .option { text += text.hasSuffix(".") ? " Repeatable." : " (repeatable)" }
    if let d = slot.defaultText { text += text.hasSuffix(".") ? " Default: \(d)." : " (default: \(d))" }
    return helpRow(slot.synopsis, text)
}

private func helpRow(_ synopsis: String, _ text: String) -> String {
    let gutter = 28, width = 100
    let head = "  " + synopsis
    var lines: [String] = []
    var line = ""
    for word in text.split(separator: " ") {
        if !line.isEmpty, line.count + 1 + word.count > width - gutter {
            lines.append(line)
            line = ""
        }
        line += (line.isEmpty ? "" : " ") + word
    }
    if !line.isEmpty { lines.append(line) }
    let pad = String(repeating: " ", count: gutter)
    var out = head.count < gutter - 1 ? head.padding(toLength: gutter, withPad: " ", startingAt: 0) : head + "\n" + pad
    out += lines.joined(separator: "\n" + pad)
    return out
}

/// A mistake in the declarations themselves (a bug, not a user error).
struct DeclarationError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
