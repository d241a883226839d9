import Foundation
import Switchyard

/// `switchyard experts list|inspect|validate|add|remove|export`: manage an expert registry.
enum ExpertsCommand: CommandGroup {
    static let name = "experts"
    static let summary = "List, inspect, validate, add, remove and export experts in a registry"
    static var subcommands: [any CommandEntry.Type] {
        [
            ListExperts.self, InspectExpert.self, ValidateExperts.self, AddExpert.self, RemoveExpert.self,
            ExportExpert.self,
            StampExpert.self
        ]
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
        /// The recorded base (`switchyard_base.json`); null: not recorded.
        var baseFingerprint: String?

        enum CodingKeys: String, CodingKey {
            case name, ranks, targets, modules, parameters, bytes, r, sha256
            case loraAlpha = "lora_alpha", useRSLoRA = "use_rslora", baseFingerprint = "base_fingerprint"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(ranks, forKey: .ranks)
            try c.encode(targets, forKey: .targets)
            try c.encode(modules, forKey: .modules)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(r, forKey: .r)
            try c.encode(loraAlpha, forKey: .loraAlpha)
            try c.encode(useRSLoRA, forKey: .useRSLoRA)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(baseFingerprint, forKey: .baseFingerprint)  // null when not recorded
        }

        init(_ e: ExpertRegistry.Entry) {
            let s = e.summary
            self.init(
                name: e.name, ranks: s.ranks, targets: s.targetKinds.map(\.rawValue), modules: s.moduleCount,
                parameters: s.parameterCount, bytes: s.fileBytes, r: s.config.rank, loraAlpha: s.config.alpha,
                useRSLoRA: s.config.useRSLoRA, sha256: e.sha256)
            baseFingerprint = e.baseRecord?.fingerprint.description
        }

        init(
            name: String, ranks: [Int], targets: [String], modules: Int, parameters: Int, bytes: Int, r: Int,
            loraAlpha: Float, useRSLoRA: Bool, sha256: String
        ) {
            (self.name, self.ranks, self.targets, self.modules, self.parameters) = (
                name, ranks, targets, modules, parameters
            )
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
                table.append([
                    EscapedText.escaped(e.name), s.ranks.map(String.init).joined(separator: ","),
                    s.targetKinds.map(\.rawValue).joined(separator: ","), String(s.parameterCount),
                    String(s.fileBytes), String(e.sha256.prefix(16))
                ])
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
        print(
            "targets:     \(e.summary.targetKinds.map(\.rawValue).joined(separator: ", ")) in \(Set(adapter.modules.keys.map(\.layer)).count) layers"
        )
        print("parameters:  \(e.summary.parameterCount) (\(e.summary.fileBytes) bytes on disk)")
        if let recorded = e.baseRecord?.fingerprint {
            let base = BaseFingerprint(model: try options.common.model.load(try options.common.model.directory()))
            let verdict =
                recorded.matches(base)
                ? "matches the base model" : "does NOT match the base model \(base): \(recorded.difference(from: base))"
            print("base:        \(recorded) (\(verdict))")
        } else {
            print(
                "base:        base not recorded (no \(BaseRecord.fileName): written by PEFT; loaded without a base check)"
            )
        }
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
            let s = try LoRAAdapter.inspect(
                directory: URL(fileURLWithPath: path), base: try options.common.model.config())
            if json {
                try PathResult(ok: true, modules: s.moduleCount).printJSON()
            } else {
                print("ok: \(path) (\(s.moduleCount) modules, ranks \(s.ranks))")
            }
            return
        }
        let registry = try options.common.open()
        // Every expert by default (valid and invalid); named ones report their own error.
        let names =
            options.names.isEmpty ? (registry.list().map(\.name) + registry.problems.keys).sorted() : options.names
        var failed = 0
        for n in names {
            do {
                _ = try registry.entry(n)
                if json { try Result(name: n, ok: true).printJSON() } else { print("ok: \(EscapedText.escaped(n))") }
            } catch {
                failed += 1
                if json {
                    try Result(name: n, ok: false, error: "\(error)").printJSON()
                } else {
                    print("invalid: \(EscapedText.escaped(n)): \(error)")
                }
            }
        }
        if failed > 0 {
            throw SwitchyardError.invalidArgument("\(failed) invalid expert(s) in \(registry.directory.path)")
        }
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
        if options.common.output.json {
            try Removed(removed: options.name).printJSON()
        } else {
            print("removed \(options.name)")
        }
    }
}

enum ExportExpert: Command {
    static let name = "export"
    static let summary = "Write the expert as Switchyard writes adapters (a PEFT directory)"

    struct Options: ParsableArguments {
        @Argument(help: "The expert's name.")
        var name: String
        @Option(placeholder: "DIR", help: "The directory to write (new, or empty).")
        var out: String
        @OptionGroup var common: ExpertsCommand.Common
    }

    struct Exported: Encodable { var exported: String }

    static func run(_ options: Options) throws {
        // Nothing already there is overwritten: an adapter (or anything else) in --out stays.
        if FileManager.default.fileExists(atPath: options.out) {
            guard PathChecks.isDirectory(options.out) else {
                throw SwitchyardError.invalidArgument("export: \(options.out) exists and is not a directory")
            }
            let existing = try FileManager.default.contentsOfDirectory(atPath: options.out)
            guard existing.isEmpty else {
                throw SwitchyardError.invalidArgument(
                    "export: \(options.out) is not empty (it holds \(existing.sorted().prefix(3).joined(separator: ", "))\(existing.count > 3 ? ", …" : "")); pick a new --out or empty it first"
                )
            }
        }
        let registry = try options.common.open()
        let recorded = try registry.entry(options.name).baseRecord
        let lease = try registry.acquire([options.name])
        try lease.adapters[0].write(to: URL(fileURLWithPath: options.out), base: recorded?.fingerprint)
        if options.common.output.json {
            try Exported(exported: options.out).printJSON()
        } else {
            print("wrote \(options.out)")
        }
    }
}

enum StampExpert: Command {
    static let name = "stamp"
    static let summary = "Record that an expert was trained on the base model (switchyard_base.json)"
    static let discussion = """
        Writes the base model's fingerprint and the expert's weights hash into switchyard_base.json
        next to the PEFT files (PEFT ignores it; the weights are not touched, so routers' pinned hashes
        hold). Loading then refuses the expert on any other base. Run it right after training (the
        demo's training script does) or for an adapter whose training base you know.
        """

    struct Options: ParsableArguments {
        @Argument(help: "The expert's name in the registry.")
        var name: String?
        @Option(placeholder: "DIR", help: "Stamp this PEFT directory instead (one not in the registry).")
        var path: String?
        @OptionGroup var common: ExpertsCommand.Common
    }

    struct Stamped: Encodable {
        var directory: String
        var baseFingerprint: String
        var adapterModelSHA256: String
        enum CodingKeys: String, CodingKey {
            case directory, baseFingerprint = "base_fingerprint", adapterModelSHA256 = "adapter_model_sha256"
        }
    }

    static func run(_ options: Options) throws {
        guard (options.name == nil) != (options.path == nil) else {
            throw UsageError("give an expert name or --path DIR (one of them)")
        }
        let model = try options.common.model.load(try options.common.model.directory())
        // By directory, not through the registry: an expert whose record is stale is refused
        // there, and re-stamping is how it is repaired.
        let directory: URL
        if let path = options.path {
            directory = URL(fileURLWithPath: path)
        } else {
            try ExpertRegistry.validateName(options.name!)
            directory = options.common.registry.directory.appendingPathComponent(options.name!)
        }
        // The adapter must fit the base's shapes before it is declared trained on it.
        _ = try LoRAAdapter.inspect(directory: directory, base: model.config)
        let record = try BaseRecord.stamp(directory: directory, base: BaseFingerprint(model: model))
        if options.common.output.json {
            try Stamped(
                directory: directory.path, baseFingerprint: record.fingerprint.description,
                adapterModelSHA256: record.weightsSHA256
            ).printJSON()
        } else {
            print("stamped \(directory.path): base \(record.fingerprint)")
        }
    }
}
