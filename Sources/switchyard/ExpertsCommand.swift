import Foundation
import Switchyard

/// `switchyard experts list|inspect|validate|add|remove|export`: manage an expert registry.
enum ExpertsCommand: CommandGroup {
    static let name = "experts"
    static let summary = "List, inspect, validate, add, remove and export experts in a registry"
    static var subcommands: [any CommandEntry.Type] {
        [ListExperts.self, InspectExpert.self, ValidateExperts.self, AddExpert.self, RemoveExpert.self, ExportExpert.self]
    }

    /// The options every experts subcommand takes.
    struct Common: ParsableArguments {
        @OptionGroup var registry: RegistryOptions
        @OptionGroup var model: ModelOptions
        @OptionGroup var output: FormatOption

        /// The registry, checked against the base model's config.
        func open(create: Bool = false) throws -> ExpertRegistry {
            try registry.open(base: try model.config(), create: create)
        }
    }

    /// One expert as `--format json` prints it.
    struct EntryJSON: Encodable {
        var name: String
        var ranks: [Int]
        var targets: [String]
        var modules: Int
        var parameters: Int
        var bytes: Int
        var r: Int
        var loraAlpha: Float
        var useRSLoRA: Bool
        var sha256: String

        enum CodingKeys: String, CodingKey {
            case name, ranks, targets, modules, parameters, bytes, r, sha256
            case loraAlpha = "lora_alpha", useRSLoRA = "use_rslora"
        }

        init(_ e: ExpertRegistry.Entry) {
            let s = e.summary
            self.init(name: e.name, ranks: s.ranks, targets: s.targetKinds.map(\.rawValue), modules: s.moduleCount,
                      parameters: s.parameterCount, bytes: s.fileBytes, r: s.config.rank, loraAlpha: s.config.alpha,
                      useRSLoRA: s.config.useRSLoRA, sha256: e.sha256)
        }

        init(name: String, ranks: [Int], targets: [String], modules: Int, parameters: Int, bytes: Int, r: Int,
             loraAlpha: Float, useRSLoRA: Bool, sha256: String) {
            (self.name, self.ranks, self.targets, self.modules, self.parameters) = (name, ranks, targets, modules, parameters)
            (self.bytes, self.r, self.loraAlpha, self.useRSLoRA, self.sha256) = (bytes, r, loraAlpha, useRSLoRA, sha256)
        }
    }
}

enum ListExperts: Command {
    static let name = "list"
    static let summary = "Every expert: ranks, targets, parameters, bytes, sha256"

    struct Options: ParsableArguments {
        @OptionGroup var common: ExpertsCommand.Common
    }

    static func run(_ options: Options) throws {
        let registry = try options.common.open()
        let entries = registry.list()
        if options.common.output.json {
            try entries.map(ExpertsCommand.EntryJSON.init).printJSON()
        } else if entries.isEmpty {
            print("(no experts in \(registry.directory.path))")
        } else {
            var table = TextTable(["NAME", "RANKS", "TARGETS", "PARAMS", "BYTES", "SHA256"])
            for e in entries {
                let s = e.summary
                table.append([EscapedText.escaped(e.name), s.ranks.map(String.init).joined(separator: ","),
                              s.targetKinds.map(\.rawValue).joined(separator: ","), String(s.parameterCount),
                              String(s.fileBytes), String(e.sha256.prefix(16))])
            }
            print(table.text)
        }
        for (name, problem) in registry.problems.sorted(by: { $0.key < $1.key }) {
            printError("warning: skipped \(EscapedText.quoted(name)): \(EscapedText.oneLine(problem))")
        }
    }
}

enum InspectExpert: Command {
    static let name = "inspect"
    static let summary = "One expert in detail (config, per-module ranks and scales)"

    struct Options: ParsableArguments {
        @Argument(help: "The expert's name.")
        var name: String
        @OptionGroup var common: ExpertsCommand.Common
    }

    static func run(_ options: Options) throws {
        let registry = try options.common.open()
        let e = try registry.entry(options.name)
        if options.common.output.json {
            try ExpertsCommand.EntryJSON(e).printJSON()
            return
        }
        let adapter = try registry.acquire([e.name]).adapters[0]
        let c = e.summary.config
        print("name:        \(e.name)")
        print("directory:   \(e.directory.path)")
        print("sha256:      \(e.sha256)")
        print("r / alpha:   \(c.rank) / \(c.alpha)\(c.useRSLoRA ? " (rsLoRA: alpha/sqrt(r))" : "")")
        print("targets:     \(e.summary.targetKinds.map(\.rawValue).joined(separator: ", ")) in \(Set(adapter.modules.keys.map(\.layer)).count) layers")
        print("parameters:  \(e.summary.parameterCount) (\(e.summary.fileBytes) bytes on disk)")
        print("modules:")
        for site in adapter.modules.keys.sorted(by: { ($0.layer, $0.kind.rawValue) < ($1.layer, $1.kind.rawValue) }) {
            let m = adapter.modules[site]!
            print("  \(site): rank \(m.rank), scale \(m.scale)")
        }
    }
}

enum ValidateExperts: Command {
    static let name = "validate"
    static let summary = "Check experts (all by default) against the base model"
    static let discussion = "Exits 1 when any expert is invalid, after reporting each one."

    struct Options: ParsableArguments {
        @Argument(help: "Experts to check. Default: every expert of the registry.")
        var names: [String]
        @Option(placeholder: "DIR", help: "Check this PEFT directory instead (one not in the registry).")
        var path: String?
        @OptionGroup var common: ExpertsCommand.Common
    }

    struct Result: Encodable {
        var name: String
        var ok: Bool
        var error: String?
    }

    struct PathResult: Encodable {
        var ok: Bool
        var modules: Int
    }

    static func run(_ options: Options) throws {
        let json = options.common.output.json
        if let path = options.path {
            let s = try LoRAAdapter.inspect(directory: URL(fileURLWithPath: path), base: try options.common.model.config())
            if json { try PathResult(ok: true, modules: s.moduleCount).printJSON() } else { print("ok: \(path) (\(s.moduleCount) modules, ranks \(s.ranks))") }
            return
        }
        let registry = try options.common.open()
        // Every expert by default (valid and invalid); named ones report their own error.
        let names = options.names.isEmpty ? (registry.list().map(\.name) + registry.problems.keys).sorted() : options.names
        var failed = 0
        for n in names {
            do {
                _ = try registry.entry(n)
                if json { try Result(name: n, ok: true).printJSON() } else { print("ok: \(EscapedText.escaped(n))") }
            } catch {
                failed += 1
                if json { try Result(name: n, ok: false, error: "\(error)").printJSON() } else { print("invalid: \(EscapedText.escaped(n)): \(error)") }
            }
        }
        if failed > 0 { throw SwitchyardError.invalidArgument("\(failed) invalid expert(s) in \(registry.directory.path)") }
    }
}

enum AddExpert: Command {
    static let name = "add"
    static let summary = "Validate a PEFT adapter directory and copy it in"

    struct Options: ParsableArguments {
        @Argument(help: "The PEFT adapter directory.")
        var directory: String
        @Option(placeholder: "NAME", help: "The expert's name. Default: the directory's name.")
        var name: String?
        @OptionGroup var common: ExpertsCommand.Common
    }

    static func run(_ options: Options) throws {
        let registry = try options.common.open(create: true)
        let source = URL(fileURLWithPath: options.directory)
        let e = try registry.add(from: source, name: options.name ?? source.lastPathComponent)
        if options.common.output.json {
            try ExpertsCommand.EntryJSON(e).printJSON()
        } else {
            print("added \(e.name) (sha256 \(e.sha256.prefix(16)), \(e.summary.parameterCount) parameters)")
        }
    }
}

enum RemoveExpert: Command {
    static let name = "remove"
    static let summary = "Delete an expert"

    struct Options: ParsableArguments {
        @Argument(help: "The expert's name.")
        var name: String
        @OptionGroup var common: ExpertsCommand.Common
    }

    struct Removed: Encodable { var removed: String }

    static func run(_ options: Options) throws {
        try options.common.open().remove(options.name)
        if options.common.output.json { try Removed(removed: options.name).printJSON() } else { print("removed \(options.name)") }
    }
}

enum ExportExpert: Command {
    static let name = "export"
    static let summary = "Write the expert as Switchyard writes adapters (a PEFT directory)"

    struct Options: ParsableArguments {
        @Argument(help: "The expert's name.")
        var name: String
        @Option(placeholder: "DIR", help: "The directory to write.")
        var out: String
        @OptionGroup var common: ExpertsCommand.Common
    }

    struct Exported: Encodable { var exported: String }

    static func run(_ options: Options) throws {
        let lease = try options.common.open().acquire([options.name])
        try lease.adapters[0].write(to: URL(fileURLWithPath: options.out))
        if options.common.output.json { try Exported(exported: options.out).printJSON() } else { print("wrote \(options.out)") }
    }
}
