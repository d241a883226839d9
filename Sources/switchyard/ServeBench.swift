import Foundation
import Switchyard
import SwitchyardServer

/// `switchyard bench serve`: a closed-loop load generator against an in-process `switchyard
/// serve`, over loopback gRPC, reporting aggregate decode throughput and latency percentiles as
/// ratios against baselines measured in the same run (one stream; all streams on one expert;
/// batching disabled).
enum ServeBench: Command {
    static let name = "serve"
    static let summary = "The gRPC server under closed-loop load; with --server, a running server or balancer"
    static let discussion = """
        Without --server: starts the gRPC server in this process on the bench model (random
        SmolLM2-135M shape by default) with E random rank-R experts on all seven projections, then
        runs closed-loop clients (each sends its next request as soon as the last one finishes) over
        loopback gRPC:
          - 1, 8, 32 and 64 concurrent streams, all on one expert: aggregate generated tokens/s,
            time to first token and inter-token latency (p50/p99);
          - 32 streams each on a different expert vs all on one expert;
          - 8 streams with batching disabled (a second server with --max-batch 1).
        Every figure is the median over --rounds rounds; errors are counted and reported.
        With --server HOST:PORT: a running server or balancer instead (see REMOTE OPTIONS).
        """

    struct Options: ParsableArguments {
        @OptionGroup var bench: BenchModel
        @Option(placeholder: "E", help: "Experts in the registry.")
        var experts = 32
        @Option(placeholder: "R", help: "Expert rank.")
        var rank = 16
        @Option(placeholder: "P", help: "Prompt length.")
        var promptTokens = 32
        @Option(help: "Tokens generated per request.")
        var maxTokens = 32
        @Option(placeholder: "K", help: "Requests per stream per measurement.")
        var requests = 2
        @Option(placeholder: "R", help: "Rounds; medians are reported.")
        var rounds = 3
        @OptionGroup var output: FormatOption

        func validate() throws {
            guard experts >= 1, rank > 0, promptTokens > 0, maxTokens > 0, requests > 0, rounds > 0 else {
                throw UsageError(
                    "--experts, --rank, --prompt-tokens, --max-tokens, --requests and --rounds must be positive")
            }
        }
    }

    /// The in-process bench's help, then the remote one's options.
    static func help(path: [String]) throws -> String {
        try generatedHelp(path: path)
            + "\n\nREMOTE OPTIONS (a running server, or nginx in front of replicas: Scripts/cluster):\n"
            + (try ServeBenchRemote.Options.optionsHelp()).components(separatedBy: "\n").dropFirst().joined(
                separator: "\n")
    }

    static func dispatch(_ argv: [String], path: [String]) throws {
        if asksForHelp(argv) {
            print(try help(path: path))
        } else if argv.prefix(while: { $0 != "--" }).contains(where: { $0 == "--server" || $0.hasPrefix("--server=") })
        {
            try ServeBenchRemote.run(try ServeBenchRemote.parse(argv, path: path))
        } else {
            try run(try parse(argv, path: path))
        }
    }

    struct Measurement {
        var tokensPerSecond: Double
        var ttft: [Double]
        var itl: [Double]
        var errors: Int
    }

    static func run(_ options: Options) throws {
        let json = options.output.json
        let expertCount = options.experts, rank = options.rank
        let promptTokens = options.promptTokens, maxTokens = options.maxTokens
        let requests = options.requests, rounds = options.rounds
        BenchModel.warnIfDebug()
        let (model, label) = try options.bench.load()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "switchyard-bench-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let registry = try ExpertRegistry(directory: dir, base: model.config, budgetBytes: 4 << 30)
        for i in 0..<expertCount {
            try registry.add(
                LoRAAdapter.random(name: "expert\(i)", base: model.config, rank: rank, seed: UInt64(100 + i)),
                name: "expert\(i)")
        }
        func server(maxBatch: Int) throws -> InferenceServer {
            var o = ServerOptions()
            o.listen = "127.0.0.1:0"
            o.maxBatch = maxBatch
            o.maxQueue = 1024
            o.logFormat = .off
            o.shutdownGrace = 1
            return try InferenceServer(
                model: model, tokenizer: nil, registry: registry, options: o, modelDescription: label)
        }
        let batched = try server(maxBatch: 64), unbatched = try server(maxBatch: 1)
        defer { batched.shutdown(); unbatched.shutdown() }
        var rng = SeededRandom(seed: 11)
        let prompts = (0..<64).map { _ in
            (0..<promptTokens).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
        }

        func measure(_ server: InferenceServer, streams: Int, expert: @escaping @Sendable (Int) -> String)
            -> Measurement
        {
            let client = SwitchyardClient(target: "127.0.0.1:\(server.port)")
            let done = DispatchSemaphore(value: 0)
            let result = UncheckedMeasurement()
            Task {
                let start = DispatchTime.now().uptimeNanoseconds
                let parts = await withTaskGroup(of: (Int, [Double], [Double], Int).self) { group in
                    for s in 0..<streams {
                        group.addTask {
                            var tokens = 0, errors = 0
                            var ttft: [Double] = [], itl: [Double] = []
                            for _ in 0..<requests {
                                var r = GenerateRequest(tokenIDs: prompts[s % prompts.count])
                                r.experts = [(expert(s), 1)]
                                r.maxTokens = maxTokens
                                r.ignoreEOS = true
                                let sent = DispatchTime.now().uptimeNanoseconds
                                var last = sent
                                do {
                                    for try await e in client.generate(r) where e.tokenID != nil {
                                        let now = DispatchTime.now().uptimeNanoseconds
                                        if last == sent {
                                            ttft.append(Double(now - sent) / 1e6)
                                        } else {
                                            itl.append(Double(now - last) / 1e6)
                                        }
                                        last = now
                                        tokens += 1
                                    }
                                } catch { errors += 1 }
                            }
                            return (tokens, ttft, itl, errors)
                        }
                    }
                    var all: [(Int, [Double], [Double], Int)] = []
                    for await p in group { all.append(p) }
                    return all
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                result.value = Measurement(
                    tokensPerSecond: Double(parts.reduce(0) { $0 + $1.0 }) / seconds,
                    ttft: parts.flatMap(\.1), itl: parts.flatMap(\.2), errors: parts.reduce(0) { $0 + $1.3 })
                done.signal()
            }
            done.wait()
            return result.value!
        }

        let concurrency = [1, 8, 32, 64]
        var one: [Int: [Measurement]] = [:]
        var distinct: [Measurement] = [], noBatch: [Measurement] = []
        _ = measure(batched, streams: 8, expert: { _ in "expert0" })  // warm-up: load experts, touch weights
        for round in 0..<rounds {
            if !json { printError("bench serve: round \(round + 1)/\(rounds)") }
            for n in concurrency {
                one[n, default: []].append(measure(batched, streams: n, expert: { _ in "expert0" }))
            }
            distinct.append(measure(batched, streams: 32, expert: { "expert\($0 % expertCount)" }))
            noBatch.append(measure(unbatched, streams: 8, expert: { _ in "expert0" }))
        }
        func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? 0 : s[s.count / 2] }
        func percentile(_ xs: [Double], _ p: Double) -> Double {
            let s = xs.sorted()
            return s.isEmpty ? 0 : s[min(s.count - 1, Int((p * Double(s.count)).rounded(.up)) - 1)]
        }
        func summary(_ ms: [Measurement]) -> (
            tps: Double, ttft50: Double, ttft99: Double, itl50: Double, itl99: Double, errors: Int
        ) {
            (
                median(ms.map(\.tokensPerSecond)), median(ms.map { percentile($0.ttft, 0.5) }),
                median(ms.map { percentile($0.ttft, 0.99) }),
                median(ms.map { percentile($0.itl, 0.5) }), median(ms.map { percentile($0.itl, 0.99) }),
                ms.reduce(0) { $0 + $1.errors }
            )
        }
        let s1 = summary(one[1]!), sDistinct = summary(distinct), sNoBatch = summary(noBatch), s32 = summary(one[32]!),
            s8 = summary(one[8]!)
        if json {
            func figures(_ n: Int) -> StreamFigures {
                let s = summary(one[n]!)
                return StreamFigures(
                    tokensPerS: s.tps.hundredths, vs1Stream: (s.tps / s1.tps).hundredths,
                    ttftP50Ms: s.ttft50.hundredths, ttftP99Ms: s.ttft99.hundredths,
                    itlP50Ms: s.itl50.hundredths, itlP99Ms: s.itl99.hundredths, errors: s.errors)
            }
            try Report(
                model: label, experts: expertCount, rank: rank, threads: BLAS.threadCount, rounds: rounds,
                streams: concurrency.map { ($0, figures($0)) },
                distinct: [
                    "tokens_per_s": sDistinct.tps.hundredths, "vs_one_expert": (sDistinct.tps / s32.tps).hundredths,
                    "errors": Double(sDistinct.errors)
                ],
                noBatch: [
                    "tokens_per_s": sNoBatch.tps.hundredths, "batching_speedup": (s8.tps / sNoBatch.tps).hundredths,
                    "errors": Double(sNoBatch.errors)
                ]
            ).printJSON()
        } else {
            print(
                "model: \(label), \(expertCount) experts of rank \(rank), prompt \(promptTokens) + \(maxTokens) generated tokens per request, threads \(BLAS.threadCount), median of \(rounds) rounds"
            )
            print("streams  tokens/s  vs 1 stream  TTFT p50/p99 ms   ITL p50/p99 ms   errors")
            for n in concurrency {
                let s = summary(one[n]!)
                print(
                    String(
                        format: "%7d  %8.1f  %10.2fx  %7.1f / %7.1f  %6.1f / %6.1f   %d", n, s.tps, s.tps / s1.tps,
                        s.ttft50, s.ttft99, s.itl50, s.itl99, s.errors))
            }
            print(
                String(
                    format: "32 streams on 32 different experts: %.1f tok/s = %.0f%% of all on one expert (errors %d)",
                    sDistinct.tps, 100 * sDistinct.tps / s32.tps, sDistinct.errors))
            print(
                String(
                    format: "8 streams with --max-batch 1: %.1f tok/s; continuous batching is %.2fx that (errors %d)",
                    sNoBatch.tps, s8.tps / sNoBatch.tps, sNoBatch.errors))
        }
    }

    /// One concurrency level of `--format json` (`streams_<n>`).
    struct StreamFigures: Encodable {
        let tokensPerS, vs1Stream, ttftP50Ms, ttftP99Ms, itlP50Ms, itlP99Ms: Double
        let errors: Int

        enum CodingKeys: String, CodingKey {
            case tokensPerS = "tokens_per_s", vs1Stream = "vs_1_stream", ttftP50Ms = "ttft_p50_ms", ttftP99Ms =
                "ttft_p99_ms"
            case itlP50Ms = "itl_p50_ms", itlP99Ms = "itl_p99_ms", errors
        }
    }

    /// `--format json`: the run's shape, `streams_<n>` per concurrency level, 32 streams on 32
    /// distinct experts, and 8 streams with batching off.
    struct Report: Encodable {
        let model: String
        let experts, rank, threads, rounds: Int
        let streams: [(Int, StreamFigures)]
        let distinct, noBatch: [String: Double]

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: JSONKey.self)
            try c.encode(model, forKey: JSONKey("model"))
            for (k, v) in [("experts", experts), ("rank", rank), ("threads", threads), ("rounds", rounds)] {
                try c.encode(v, forKey: JSONKey(k))
            }
            for (n, s) in streams { try c.encode(s, forKey: JSONKey("streams_\(n)")) }
            try c.encode(distinct, forKey: JSONKey("streams_32_distinct_experts"))
            try c.encode(noBatch, forKey: JSONKey("streams_8_max_batch_1"))
        }
    }
}

/// Hands a measurement from the async load generator back to the synchronous bench.
final class UncheckedMeasurement: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: ServeBench.Measurement?
    var value: ServeBench.Measurement? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
