import Foundation
import Testing

/// The `switchyard` binary from outside: help, usage errors and JSON output, for every command.
/// Commands are discovered from the help itself (SUBCOMMANDS sections), so a new command is
/// covered without being listed here.
@Suite struct CLITests {
    @Test func bareSwitchyardPrintsHelpOnStderrAndExits2() throws {
        let r = try CLI.run([])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("USAGE: switchyard <subcommand>"))
    }

    @Test func helpExits0OnStdout() throws {
        for args in [["--help"], ["-h"], ["help"]] {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(args)")
            #expect(r.stdout.contains("SUBCOMMANDS:"), "\(args)")
            #expect(r.stderr.isEmpty, "\(args)")
        }
    }

    @Test func unknownSubcommandsAreUsageErrors() throws {
        for (args, named) in [(["nope"], "'nope'"), (["experts", "nope"], "'nope'"), (["bench"], "needs a subcommand")]
        {
            let r = try CLI.run(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains(named), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        }
    }

    /// Every command's help: exit 0, a usage line naming the command, an OPTIONS section; and every
    /// option it lists is one the parser knows (giving it never reports "unknown option").
    @Test func everyCommandsHelpListsOptionsTheParserKnows() throws {
        let commands = try CLI.leafCommands()
        #expect(commands.count >= 30, "found \(commands.map { $0.joined(separator: " ") })")
        try CLI.concurrently(commands) { path in
            let help = try CLI.run(path + ["--help"])
            #expect(help.status == 0, "\(path): \(help.stderr)")
            #expect(help.stdout.hasPrefix("USAGE: switchyard \(path.joined(separator: " "))"), "\(path)")
            #expect(help.stdout.contains("OPTIONS:") && help.stdout.contains("-h, --help"), "\(path)")
            for option in CLI.options(inHelp: help.stdout) {
                // A value attached (so no option ever takes the next word), then an unknown option
                // so that nothing runs: the error must be about the value or the unknown option.
                let r = try CLI.run(
                    path + [option.takesValue ? "--\(option.name)=x" : "--\(option.name)", "--zz-unknown"])
                #expect(r.status == 2, "\(path) --\(option.name): \(r.stderr)")
                #expect(!r.stderr.contains("unknown option --\(option.name) "), "\(path) --\(option.name): \(r.stderr)")
            }
        }
    }

    /// An option no command has: exit 2, one line naming it and pointing at the command's help.
    @Test func unknownOptionIsNamedForEveryCommand() throws {
        try CLI.concurrently(try CLI.leafCommands()) { path in
            let r = try CLI.run(path + ["--no-such-option"])
            #expect(r.status == 2, "\(path)")
            #expect(r.stdout.isEmpty, "\(path)")
            #expect(
                r.stderr
                    == "error: unknown option --no-such-option (see `switchyard \(path.joined(separator: " ")) --help`)\n",
                "\(path): \(r.stderr)")
        }
    }

    /// A bad value names the option and the value, before any model is loaded.
    @Test(arguments: [
        (["generate", "--top-k", "abc", "hi"], "--top-k expects an integer, got 'abc'"),
        (["generate", "--temperature=nan", "hi"], "--temperature expects a number, got 'nan'"),
        (["generate", "--max-tokens", "-1", "hi"], "--max-tokens must be ≥ 0, got -1"),
        (["generate", "--expert", "a=b", "hi"], "--expert expects NAME[=WEIGHT],… with finite weights, got 'a=b'"),
        (["generate", "--weights", "q2", "hi"], "--weights expects one of native, f32, got 'q2'"),
        (["score", "--token-ids", "1,x"], "--token-ids expects comma-separated token ids, got '1,x'"),
        (
            ["merge", "--experts", "a", "--type", "avg", "--out", "m"],
            "--type expects one of linear, cat, svd, got 'avg'"
        ),
        (["serve", "--log-format", "xml"], "--log-format expects one of text, json, off, got 'xml'"),
        (["serve", "--max-batch", "0"], "--max-batch must be > 0, got 0"),
        (["eval", "--task", "reverse", "--batch", "1.5"], "--batch expects an integer, got '1.5'"),
        (["experts", "list", "--format", "yaml"], "--format expects one of text, json, got 'yaml'"),
        (["router", "fit-centroids", "--context", "both"], "--context expects one of mean, token, got 'both'"),
        (["bench", "decode", "--threads", "0"], "--threads must be in 1..."),
        (["bench", "decode", "--threads", "100000"], "--threads must be in 1..."),
        (["bench", "serve", "--server", "127.0.0.1:99999"], "--server 127.0.0.1:99999: the port must be"),
        (["tokenize", "--trace"], "unknown option --trace"),
        (["tokenize", "--add-special-tokens=yes", "x"], "--add-special-tokens takes no value"),
        (["generate"], "missing <prompt>"),
        (["generate", "a", "b"], "unexpected argument 'b'"),
        (["merge", "--type", "cat"], "missing --experts"),
        (["generate", "--system", "s", "hi"], "--system needs --chat"),
        (["generate", "--max-tokens"], "--max-tokens needs a value"),
        (["compose", "--examples", "x.jsonl", "--out", "z", "--shots", "0"], "--shots must be ≥ 1, got 0"),
        (["eval", "--task", "reverse", "--limit", "-1"], "--limit must be > 0, got -1"),
        (["demo", "--per-task", "0"], "--per-task must be > 0, got 0"),
        (
            ["client", "info", "--server", "127.0.0.1:99999"],
            "--server 127.0.0.1:99999: the port must be a number in 0...65535"
        ),
        (["client", "info", "--timeout", "0"], "--timeout must be > 0 seconds, got 0.0"),
        (
            ["route", "--router", "r.pb", "--heatmap", "/nonexistent-dir/h.svg", "hi"],
            "--heatmap: no directory /nonexistent-dir to write /nonexistent-dir/h.svg in"
        ),
        (["serve", "--listen", "127.0.0.1:70000"], "--listen 127.0.0.1:70000: the port must be a number in 0...65535"),
        (["client", "generate", "--top-p", "0", "hi"], "top-p must be in (0, 1], found 0.0"),
        (["serve", "--default-max-tokens", "5000"], "--default-max-tokens 5000 is above --max-tokens-limit 4096"),
        (["serve", "--replica-id", ""], "--replica-id must be non-empty printable ASCII"),
        (
            ["serve", "--allow-expert-dir", "/nonexistent-dir"],
            "--allow-expert-dir: /nonexistent-dir is not a directory"
        ),
        (["generate", "--expert", "reverse", "--expert", "reverse=0.5", "hi"], "--expert names expert 'reverse' twice"),
        (["merge", "--type", "cat", "--experts", "a=1,a=2", "--out", "m"], "--experts names expert 'a' twice"),
        (
            ["router", "fit-centroids", "--examples", "x", "--out", "y", "--temperature", "0"],
            "--temperature must be > 0, got 0.0"
        ),
        (["router", "train", "--examples", "x", "--out", "y", "--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
        (
            ["router", "fit-centroids", "--examples", "x", "--out", "y", "--context-window", "-1"],
            "--context-window must be >= 0, got -1"
        ),
        (
            ["router", "fit-centroids", "--examples", "x", "--out", "y", "--context", "token", "--completions"],
            "--context-window and --completions need --context mean"
        ),
        (["client", "compose", "--examples", "x.jsonl", "--out", "z", "--shots", "-2"], "--shots must be ≥ 1, got -2")
    ])
    func badValuesAreNamed(args: [String], message: String) throws {
        let r = try CLI.run(args)
        #expect(r.status == 2, "\(args)")
        #expect(r.stderr.hasPrefix("error: \(message)"), "\(args): \(r.stderr)")
    }

    // MARK: --format json shapes, on the embedded models.

    @Test func tokenizeJSON() throws {
        let object = try CLI.json(["tokenize", "--format", "json", "hello"]) as? [String: Any]
        #expect(Set(object?.keys ?? [:].keys) == ["ids"])
        #expect((object?["ids"] as? [Int])?.isEmpty == false)
    }

    @Test func generateJSON() throws {
        let object = try #require(
            try CLI.json(["generate", "--format", "json", "--max-tokens", "3", "reverse: abc"]) as? [String: Any])
        #expect(Set(object.keys) == ["prompt_ids", "ids", "text"])
        #expect((object["ids"] as? [Int])?.count ?? 0 <= 3)
        #expect(object["text"] is String)
    }

    @Test func scoreJSON() throws {
        let object = try #require(try CLI.json(["score", "--format", "json", "--token-ids", "1,2,3"]) as? [String: Any])
        #expect(object["token_ids"] as? [Int] == [1, 2, 3])
        let rows = try #require(object["logits"] as? [[Double]])
        #expect(rows.count == 3)
        #expect(Set(rows.map(\.count)).count == 1 && rows[0].count > 3)
    }

    @Test func expertsJSON() throws {
        let list = try #require(try CLI.json(["experts", "list", "--format", "json"]) as? [[String: Any]])
        #expect(!list.isEmpty)
        let keys: Set<String> = [
            "name", "ranks", "targets", "modules", "parameters", "bytes", "r", "lora_alpha", "use_rslora", "sha256"
        ]
        for e in list { #expect(keys.isSubset(of: e.keys), "\(e.keys)") }
        let name = try #require(list.first?["name"] as? String)
        let one = try #require(try CLI.json(["experts", "inspect", name, "--format", "json"]) as? [String: Any])
        #expect(one["name"] as? String == name)
        #expect((one["sha256"] as? String)?.count == 64)
    }

    @Test func evalJSON() throws {
        let object = try #require(
            try CLI.json(["eval", "--task", "reverse", "--limit", "2", "--format", "json"]) as? [String: Any])
        #expect(Set(object.keys) == ["task", "method", "examples", "correct", "accuracy"])
        #expect(object["examples"] as? Int == 2)
        #expect(object["method"] as? String == "base")
    }

    @Test func routeJSON() throws {
        let router = CLI.packageRoot.appendingPathComponent("Models/routers/sentence.pb").path
        let object = try #require(
            try CLI.json(["route", "--router", router, "--max-tokens", "2", "reverse: ab"]) as? [String: Any])
        #expect(Set(object.keys) == ["router", "granularity", "experts", "output", "tokens"])
        let tokens = try #require(object["tokens"] as? [[String: Any]])
        #expect(!tokens.isEmpty)
        for t in tokens { #expect(Set(["position", "token", "text", "generated"]).isSubset(of: t.keys)) }
    }

    /// A rank-level router names no experts; the demo then takes a prompt of every expert's task
    /// and reports the ranks it ran.
    @Test func demoRunsARankRouter() throws {
        let router = CLI.packageRoot.appendingPathComponent("Models/routers/smora.pb").path
        let r = try CLI.run(["demo", "--router", router])
        #expect(r.status == 0, "\(r.stderr)")
        let registry = CLI.packageRoot.appendingPathComponent("Models/experts").path
        let experts = try FileManager.default.contentsOfDirectory(atPath: registry).filter {
            FileManager.default.fileExists(atPath: "\(registry)/\($0)/adapter_config.json")
        }
        #expect(r.stdout.components(separatedBy: "    ranks:").count - 1 == experts.count)
        #expect(r.stdout.contains("routed: "))
    }

    /// `compose` opens the registry with the loaded base, so the expert it writes records that
    /// base (switchyard_base.json) and is guarded like any other.
    @Test func composedExpertRecordsItsBase() throws {
        let registry = FileManager.default.temporaryDirectory.appendingPathComponent("cli-compose-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: registry) }
        try FileManager.default.createDirectory(at: registry, withIntermediateDirectories: true)
        for name in ["reverse", "uppercase"] {
            try FileManager.default.copyItem(
                at: CLI.packageRoot.appendingPathComponent("Models/experts/\(name)"),
                to: registry.appendingPathComponent(name))
        }
        let examples = CLI.packageRoot.appendingPathComponent("Models/tasks/reverse_upper/train.jsonl").path
        let r = try CLI.run([
            "compose", "--registry", registry.path, "--examples", examples, "--shots", "2",
            "--budget", "3", "--experts", "reverse,uppercase", "--out", "composed"
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let record = registry.appendingPathComponent("composed/switchyard_base.json")
        #expect(FileManager.default.fileExists(atPath: record.path), "the composed expert records no base")
        let inspect = try #require(
            try CLI.json(["experts", "inspect", "composed", "--registry", registry.path, "--format", "json"])
                as? [String: Any])
        #expect(inspect["base_fingerprint"] is String, "\(inspect)")
    }

    /// `fit-centroids --completions --context-window N` fits on the answers too and writes a router
    /// that reads the same window (shown by `router inspect`); a line without a completion is
    /// refused, naming the file and the line.
    @Test func centroidsFittedOnAnswersAndAWindow() throws {
        let dir = try CLI.scratchDirectory("centroids")
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try CLI.write(
            """
            {"expert": "reverse", "prompt": "Write cat backwards.\\nAnswer:", "completion": " tac"}
            {"expert": "uppercase", "prompt": "Shout dog.\\nAnswer:", "completion": " DOG"}
            """, to: dir.appendingPathComponent("good.jsonl"))
        let out = dir.appendingPathComponent("c.pb").path
        let args = ["router", "fit-centroids", "--layer", "0", "--context-window", "6", "--completions", "--out", out]
        let r = try CLI.run(args + ["--examples", good.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("window=6"), "\(r.stdout)")
        let inspect = try CLI.run(["router", "inspect", out])
        #expect(inspect.stdout.contains("window=6"), "\(inspect.stdout)")
        let bad = try CLI.write(
            """
            {"expert": "reverse", "prompt": "Write cat backwards.\\nAnswer:", "completion": " tac"}
            {"expert": "uppercase", "prompt": "Shout dog.\\nAnswer:"}
            """, to: dir.appendingPathComponent("bad.jsonl"))
        let refused = try CLI.run(args + ["--examples", bad.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("\(bad.path): line 2 has no \"completion\""), "\(refused.stderr)")
    }

    /// A few-shot row without a completion (or prompt) has no loss to learn from: refused naming the
    /// file and the example, before anything is written.
    @Test func composeRefusesAnEmptyCompletion() throws {
        let dir = try CLI.scratchDirectory("shots")
        defer { try? FileManager.default.removeItem(at: dir) }
        let examples = try CLI.write(
            """
            {"prompt": "Reverse abc.\\nAnswer:", "completion": " cba"}

            {"prompt": "Reverse xyz.\\nAnswer:", "completion": ""}
            """, to: dir.appendingPathComponent("shots.jsonl"))
        let r = try CLI.run([
            "compose", "--registry", dir.appendingPathComponent("registry").path, "--examples", examples.path,
            "--budget", "2", "--experts", "reverse", "--out", "composed"
        ])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("\(examples.path): example 2 has an empty \"completion\""), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("registry/composed").path))
    }

    /// `--top-k` is checked against the experts the examples name (known only once the file is
    /// read), as a usage error pointing at the subcommand's help.
    @Test func routerFittingRefusesTopKAboveItsExperts() throws {
        let dir = try CLI.scratchDirectory("topk")
        defer { try? FileManager.default.removeItem(at: dir) }
        let examples = try CLI.write(
            """
            {"expert": "reverse", "prompt": "Reverse abc."}
            {"expert": "uppercase", "prompt": "Uppercase abc."}
            """, to: dir.appendingPathComponent("examples.jsonl"))
        let r = try CLI.run([
            "router", "train", "--examples", examples.path, "--top-k", "3", "--out",
            dir.appendingPathComponent("r.pb").path
        ])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(
            r.stderr.hasPrefix("error: --top-k must be in 1...2 (the experts \(examples.path) names), got 3"),
            "\(r.stderr)")
        #expect(r.stderr.contains("(see `switchyard router train --help`)"), "\(r.stderr)")
    }

    /// `experts export` never writes over what is already in --out.
    @Test func exportRefusesADirectoryThatIsNotEmpty() throws {
        let dir = try CLI.scratchDirectory("export")
        defer { try? FileManager.default.removeItem(at: dir) }
        let mine = try CLI.write("mine", to: dir.appendingPathComponent("adapter_config.json"))
        let r = try CLI.run(["experts", "export", "reverse", "--out", dir.path])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("export: \(dir.path) is not empty"), "\(r.stderr)")
        #expect(try String(contentsOf: mine, encoding: .utf8) == "mine")
        let fresh = dir.appendingPathComponent("fresh")
        #expect(try CLI.run(["experts", "export", "reverse", "--out", fresh.path]).status == 0)
        #expect(FileManager.default.fileExists(atPath: fresh.appendingPathComponent("adapter_model.safetensors").path))
    }

    @Test func expertsListIsAnAlignedTable() throws {
        let r = try CLI.run(["experts", "list"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count >= 2)
        // Every column starts where its header does.
        let header = try #require(lines.first)
        for column in ["RANKS", "TARGETS", "PARAMS", "BYTES", "SHA256"] {
            let start = try #require(header.range(of: column)).lowerBound.utf16Offset(in: header)
            for line in lines.dropFirst() {
                let before = line.utf16.count > start ? Array(line.utf16)[start - 1] : 0
                #expect(before == 0x20, "column \(column) in: \(line)")
            }
        }
    }
}

/// Runs the built `switchyard` binary.
enum CLI {
    /// A new empty directory under the temporary directory (the caller removes it).
    static func scratchDirectory(_ label: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes `text` (UTF-8) to `url` and returns `url`.
    static func write(_ text: String, to url: URL) throws -> URL {
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The binary next to the test product (SwiftPM builds it: this target depends on it).
    static let binary: URL = {
        let candidates =
            [Bundle.main.executableURL, Bundle.main.bundleURL].compactMap { $0?.deletingLastPathComponent() }
            + [packageRoot.appendingPathComponent(".build/debug")]
        return candidates.map { $0.appendingPathComponent("switchyard") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
            ?? candidates[0].appendingPathComponent("switchyard")
    }()

    static func run(_ args: [String]) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment["SWITCHYARD_MODELS"] = packageRoot.appendingPathComponent("Models").path
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes to the end before waiting, so a large output cannot block the child.
        let errData = LockedData()
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.value, as: UTF8.self))
    }

    /// The parsed standard output of a command that must succeed.
    static func json(_ args: [String]) throws -> Any {
        let r = try run(args)
        #expect(r.status == 0, "\(args): \(r.stderr)")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    /// Every runnable command path (`["experts", "list"]`, `["generate"]`), found by walking the
    /// SUBCOMMANDS sections of the help.
    static func leafCommands(_ prefix: [String] = []) throws -> [[String]] {
        let help = try run(prefix + ["--help"])
        guard let section = help.stdout.components(separatedBy: "SUBCOMMANDS:\n").dropFirst().first else {
            return [prefix]
        }
        let names = section.split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { !$0.isEmpty }
            .compactMap { $0.split(separator: " ").first.map(String.init) }
        return try names.flatMap { try leafCommands(prefix + [$0]) }
    }

    /// The options a help text's OPTIONS section lists: `--name PLACEHOLDER` (takes a value) or
    /// `--name` (a flag).
    static func options(inHelp help: String) -> [(name: String, takesValue: Bool)] {
        let section =
            help.components(separatedBy: "\nOPTIONS:\n").dropFirst().first?.components(separatedBy: "\n\n").first ?? ""
        return section.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("  --") else { return nil }
            let words = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            let name = String(words[0].dropFirst(2))
            let takesValue = words.count > 1 && !words[1].isEmpty
            return (name, takesValue)
        }
    }

    /// Runs `body` for every item, four at a time.
    static func concurrently<T: Sendable>(_ items: [T], _ body: @escaping @Sendable (T) throws -> Void) throws {
        let failures = LockedData()
        DispatchQueue.concurrentPerform(iterations: 4) { lane in
            for i in stride(from: lane, to: items.count, by: 4) {
                do { try body(items[i]) } catch { failures.set(Data("\(items[i]): \(error)\n".utf8)) }
            }
        }
        #expect(!failures.isSet, "\(String(decoding: failures.value, as: UTF8.self))")
    }
}

/// Data handed between threads.
final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ d: Data) { lock.withLock { data = (data ?? Data()) + d } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}
