import Foundation
import Switchyard
import SwitchyardServer

/// `switchyard bench serve --server HOST:PORT`: closed-loop load against a running server or a
/// balancer in front of replicas (Scripts/cluster). Reports throughput, latency percentiles, how
/// requests and experts spread over the replicas (from `x-switchyard-replica`), and, with
/// `--replica-info`, each replica's expert cache hit rate over the run (Info counters).
enum ServeBenchRemote: Command {
    static let name = "serve"
    static let summary = "Closed-loop load against a running server or balancer"

    struct Options: ParsableArguments {
        @Option(
            placeholder: "HOST:PORT",
            help:
                "Drive this server (or balancer) instead of an in-process one. Experts come from its ListExperts (or --experts a,b,…); prompts are the text prompts of Models/tasks/<expert>/test.jsonl where that file exists, else --prompt-tokens random token ids. Each of --streams closed-loop streams sends its next request when the last one ends, on an expert drawn at random (seeded) from the set; every request asks for --max-tokens tokens with ignore_eos. Reports tokens/s, latency and time-to-first-token p50/p99, errors by status, requests and experts per replica (x-switchyard-replica; max/min load); with --replica-info, each replica's expert cache hits/misses/evictions during the run (its Info counters before and after, the replicas called directly)."
        )
        var server: String
        @Option(help: "Concurrent closed-loop streams.")
        var streams = 8
        @Option(help: "Requests in the measured run.")
        var requests = 240
        @Option(help: "Requests before measuring, not counted.")
        var warmup = 0
        @Option(help: "Tokens generated per request.")
        var maxTokens = 16
        @Option(help: "Experts to draw from. Default: every expert the server lists.")
        var experts: NameList?
        @Option(placeholder: "P", help: "Random prompt length for experts without a task file.")
        var promptTokens = 32
        @Option(placeholder: "A,B", help: "Replica addresses (HOST:PORT,…) to read cache counters from.")
        var replicaInfo: NameList?
        @Option(placeholder: "T", help: "Sent as `authorization: Bearer T`. Default: $SWITCHYARD_TOKEN.")
        var token: String?
        @Option(placeholder: "S", help: "Deadline per request in seconds.")
        var timeout: Float = 60
        @Option(placeholder: "S", help: "Seed for the expert and prompt draws.")
        var seed = 1
        @OptionGroup var output: FormatOption

        func validate() throws {
            guard streams > 0, requests > 0, warmup >= 0, maxTokens > 0, promptTokens > 0, timeout > 0 else {
                throw UsageError(
                    "--streams, --requests, --max-tokens, --prompt-tokens and --timeout must be positive, --warmup at least 0"
                )
            }
            try PathChecks.hostPort(server, option: "--server", target: true)
        }
    }

    /// One finished (or failed) request.
    struct Sample: Sendable {
        var expert: String
        var replica: String?
        var error: String?
        var milliseconds: Double
        var ttftMilliseconds: Double?
        var tokens: Int
    }

    struct CacheCounters {
        var replica: String
        var hits: UInt64
        var misses: UInt64
        var evictions: UInt64
    }

    /// `--format json` of a run against a server (or a balancer).
    struct Report: Encodable {
        let server: String
        let streams, requests, warmup, maxTokens: Int
        let experts: [String]
        let seconds: Double
        let ok, errors: Int
        let errorsByStatus: [String: Int]
        let generatedTokens: Int
        let tokensPerS, requestsPerS: Double
        let latencyMs, ttftMs: [String: Double]
        let replicas: [ReplicaLoad]
        let loadMax, loadMin: Int
        let expertsOnMoreThanOneReplica: [String]
        let expertCache: CacheFigures?

        enum CodingKeys: String, CodingKey {
            case server, streams, requests, warmup, experts, seconds, ok, errors, replicas
            case maxTokens = "max_tokens", errorsByStatus = "errors_by_status", generatedTokens = "generated_tokens"
            case tokensPerS = "tokens_per_s", requestsPerS = "requests_per_s", latencyMs = "latency_ms", ttftMs =
                "ttft_ms"
            case loadMax = "load_max", loadMin = "load_min", expertsOnMoreThanOneReplica =
                "experts_on_more_than_one_replica"
            case expertCache = "expert_cache"
        }
    }

    /// Requests a replica served (by its `x-switchyard-replica` header) and the experts they named.
    struct ReplicaLoad: Encodable {
        let replica: String
        let requests: Int
        let experts: [String]
    }

    /// Expert-cache counters per replica over the run (from Info before and after).
    struct CacheFigures: Encodable {
        struct Replica: Encodable {
            let replica: String
            let hits, misses, evictions: UInt64
            let hitRate: Double
            enum CodingKeys: String, CodingKey { case replica, hits, misses, evictions, hitRate = "hit_rate" }
        }
        let hitRate: Double
        let replicas: [Replica]
        enum CodingKeys: String, CodingKey { case hitRate = "hit_rate", replicas }
    }

    static func run(_ options: Options) throws {
        let json = options.output.json
        let server = options.server
        let streams = options.streams, requests = options.requests
        let warmup = options.warmup, maxTokens = options.maxTokens
        let promptTokens = options.promptTokens
        let timeout = Double(options.timeout)
        let seed = UInt64(truncatingIfNeeded: options.seed)
        let token = options.token ?? ProcessInfo.processInfo.environment["SWITCHYARD_TOKEN"]
        let client = SwitchyardClient(target: server, token: token, timeout: timeout)
        let replicaAddresses = options.replicaInfo?.names ?? []
        let replicaClients = replicaAddresses.map { SwitchyardClient(target: $0, token: token, timeout: timeout) }

        // The workload: experts, their prompts, and the seeded sequence of requests.
        let listed = try blocking { try await client.listExperts() }
        let available = listed.map { $0.string("name") }
        var experts = available
        if let chosen = options.experts {
            experts = chosen.names
            if let missing = experts.first(where: { !available.contains($0) }) {
                throw UsageError(
                    "--experts: '\(missing)' is not on \(server) (it lists: \(available.joined(separator: ", ")))")
            }
        }
        guard !experts.isEmpty else { throw UsageError("\(server) lists no experts (and --experts names none)") }
        let expertBytes = Dictionary(
            listed.map { ($0.string("name"), $0.uint("parameter_bytes")) }, uniquingKeysWith: { a, _ in a })
        let vocabulary = Int(try blocking { try await client.info() }.uint("vocabulary_size"))
        var rng = SeededRandom(seed: seed)
        var prompts: [String: [GenerateRequest]] = [:]
        for e in experts {
            let texts = try taskPrompts(e)
            if !texts.isEmpty {
                prompts[e] = texts.map { GenerateRequest(prompt: $0) }
            } else {
                prompts[e] = (0..<8).map { _ in
                    GenerateRequest(
                        tokenIDs: (0..<promptTokens).map { _ in Int(rng.next() % UInt64(max(1, vocabulary))) })
                }
            }
        }
        func plan(_ n: Int) -> [(String, GenerateRequest)] {
            (0..<n).map { _ in
                let e = experts[Int(rng.next() % UInt64(experts.count))]
                let ps = prompts[e]!
                var r = ps[Int(rng.next() % UInt64(ps.count))]
                r.experts = [(e, 1)]
                r.maxTokens = maxTokens
                r.ignoreEOS = true
                return (e, r)
            }
        }
        let warm = plan(warmup), measured = plan(requests)

        if warmup > 0 {
            if !json { printError("bench serve: \(warmup) warm-up requests on \(server)") }
            _ = try blocking { await load(client, warm, streams: streams) }
        }
        let before = try blocking { try await counters(replicaClients) }
        if !json {
            printError("bench serve: \(requests) requests, \(streams) streams, \(experts.count) experts on \(server)")
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let samples = try blocking { await load(client, measured, streams: streams) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let after = try blocking { try await counters(replicaClients) }

        // Figures.
        let ok = samples.filter { $0.error == nil }
        let failures = Dictionary(grouping: samples.compactMap(\.error), by: { $0 }).mapValues(\.count)
        let tokens = ok.reduce(0) { $0 + $1.tokens }
        let latency = ok.map(\.milliseconds), ttft = ok.compactMap(\.ttftMilliseconds)
        var perReplica: [String: (requests: Int, experts: Set<String>)] = [:]
        var homes: [String: Set<String>] = [:]
        for s in ok {
            let r = s.replica ?? "(no x-switchyard-replica)"
            perReplica[r, default: (0, [])].requests += 1
            perReplica[r, default: (0, [])].experts.insert(s.expert)
            homes[s.expert, default: []].insert(r)
        }
        let loads = perReplica.values.map(\.requests)
        let replicaCount = max(perReplica.count, replicaClients.count)
        // A replica that got nothing (listed in --replica-info) has load 0.
        let minLoad = perReplica.count < replicaCount ? 0 : (loads.min() ?? 0)
        let maxLoad = loads.max() ?? 0
        let split = homes.filter { $0.value.count > 1 }.keys.sorted()
        var cache: [(CacheCounters, Double)] = []
        for (b, a) in zip(before, after) {
            let d = CacheCounters(
                replica: a.replica, hits: a.hits &- b.hits, misses: a.misses &- b.misses,
                evictions: a.evictions &- b.evictions)
            let total = d.hits + d.misses
            cache.append((d, total == 0 ? 0 : Double(d.hits) / Double(total)))
        }
        let allHits = cache.reduce(UInt64(0)) { $0 + $1.0.hits },
            allLookups = cache.reduce(UInt64(0)) { $0 + $1.0.hits + $1.0.misses }
        let overallHitRate = allLookups == 0 ? 0 : Double(allHits) / Double(allLookups)

        if json {
            try Report(
                server: server, streams: streams, requests: requests, warmup: warmup, maxTokens: maxTokens,
                experts: experts,
                seconds: seconds.hundredths, ok: ok.count, errors: samples.count - ok.count, errorsByStatus: failures,
                generatedTokens: tokens, tokensPerS: (Double(tokens) / seconds).hundredths,
                requestsPerS: (Double(ok.count) / seconds).hundredths,
                latencyMs: [
                    "p50": percentile(latency, 0.5).hundredths, "p99": percentile(latency, 0.99).hundredths,
                    "max": (latency.max() ?? 0).hundredths
                ],
                ttftMs: ["p50": percentile(ttft, 0.5).hundredths, "p99": percentile(ttft, 0.99).hundredths],
                replicas: perReplica.sorted { $0.key < $1.key }.map {
                    ReplicaLoad(replica: $0.key, requests: $0.value.requests, experts: $0.value.experts.sorted())
                },
                loadMax: maxLoad, loadMin: minLoad, expertsOnMoreThanOneReplica: split,
                expertCache: cache.isEmpty
                    ? nil
                    : CacheFigures(
                        hitRate: overallHitRate.hundredths,
                        replicas: cache.map {
                            CacheFigures.Replica(
                                replica: $0.0.replica, hits: $0.0.hits, misses: $0.0.misses,
                                evictions: $0.0.evictions, hitRate: $0.1.hundredths)
                        })
            ).printJSON()
            return
        }
        let sizes = Set(experts.compactMap { expertBytes[$0] })
        print(
            "server \(server): \(requests) requests over \(experts.count) experts (\(sizes.count == 1 ? "\(sizes.first!) bytes each" : "sizes vary")), \(streams) closed-loop streams, \(maxTokens) tokens each\(warmup > 0 ? ", after \(warmup) warm-up requests" : "")"
        )
        print(
            String(
                format: "%.2f s: %d ok, %d errors; %.1f generated tokens/s, %.1f requests/s", seconds, ok.count,
                samples.count - ok.count,
                Double(tokens) / seconds, Double(ok.count) / seconds))
        for (status, n) in failures.sorted(by: { $0.value > $1.value }) { print("  error \(status): \(n)") }
        print(
            String(
                format: "latency p50 %.1f ms, p99 %.1f ms (max %.1f); time to first token p50 %.1f ms, p99 %.1f ms",
                percentile(latency, 0.5), percentile(latency, 0.99), latency.max() ?? 0, percentile(ttft, 0.5),
                percentile(ttft, 0.99)))
        print("replica              requests  experts")
        for (r, v) in perReplica.sorted(by: { $0.key < $1.key }) {
            print(
                "\(r.padding(toLength: max(20, r.count), withPad: " ", startingAt: 0)) \(String(format: "%8d", v.requests))  \(v.experts.sorted().joined(separator: ","))"
            )
        }
        print(
            "load max/min: \(maxLoad)/\(minLoad)\(minLoad > 0 ? String(format: " = %.2f", Double(maxLoad) / Double(minLoad)) : ""); experts on more than one replica: \(split.isEmpty ? "none" : "\(split.count) (\(split.joined(separator: ",")))")"
        )
        if !cache.isEmpty {
            print("expert cache during the run (Info of each replica):")
            for (d, rate) in cache {
                print(
                    String(
                        format: "  %@: %llu hits, %llu misses, %llu evictions, hit rate %.1f%%", d.replica, d.hits,
                        d.misses, d.evictions, 100 * rate))
            }
            print(String(format: "  all replicas: hit rate %.1f%%", 100 * overallHitRate))
        }
    }

    /// Runs `work` over `streams` closed-loop streams (each takes the next request when its last
    /// one ends) and returns one sample per request.
    static func load(_ client: SwitchyardClient, _ work: [(String, GenerateRequest)], streams: Int) async -> [Sample] {
        let next = Counter()
        return await withTaskGroup(of: [Sample].self) { group in
            for _ in 0..<min(streams, work.count) {
                group.addTask {
                    var samples: [Sample] = []
                    while let i = next.take(below: work.count) {
                        let (expert, request) = work[i]
                        let sent = DispatchTime.now().uptimeNanoseconds
                        var sample = Sample(
                            expert: expert, replica: nil, error: nil, milliseconds: 0, ttftMilliseconds: nil, tokens: 0)
                        do {
                            for try await e in client.generate(request) {
                                sample.replica = sample.replica ?? e.replica
                                if e.tokenID != nil {
                                    if sample.ttftMilliseconds == nil {
                                        sample.ttftMilliseconds =
                                            Double(DispatchTime.now().uptimeNanoseconds - sent) / 1e6
                                    }
                                    sample.tokens += 1
                                }
                            }
                        } catch let status as GRPCStatus {
                            sample.error = "\(status.code)"
                        } catch {
                            sample.error = "\(error)"
                        }
                        sample.milliseconds = Double(DispatchTime.now().uptimeNanoseconds - sent) / 1e6
                        samples.append(sample)
                    }
                    return samples
                }
            }
            var all: [Sample] = []
            for await part in group { all += part }
            return all
        }
    }

    static func counters(_ clients: [SwitchyardClient]) async throws -> [CacheCounters] {
        var out: [CacheCounters] = []
        for c in clients {
            let info = try await c.info()
            out.append(
                CacheCounters(
                    replica: info.string("replica_id").isEmpty ? c.channel.target : info.string("replica_id"),
                    hits: info.uint("expert_cache_hits"), misses: info.uint("expert_cache_misses"),
                    evictions: info.uint("expert_cache_evictions")))
        }
        return out
    }

    /// The prompts of `Models/tasks/<expert>/test.jsonl` (empty when there is no such file).
    static func taskPrompts(_ expert: String) throws -> [String] {
        let file = ModelLocator.modelsRoot().appendingPathComponent("tasks/\(expert)/test.jsonl")
        guard FileManager.default.fileExists(atPath: file.path) else { return [] }
        return try EvalCommand.readExamples(file.path).prefix(64).map(\.prompt)
    }

    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, max(0, Int((p * Double(s.count)).rounded(.up)) - 1))]
    }

    /// Runs an async body to completion from synchronous code.
    static func blocking<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Task {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }
}

/// The shared cursor of the closed-loop streams.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take(below limit: Int) -> Int? {
        lock.withLock {
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
