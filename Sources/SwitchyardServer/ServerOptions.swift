import Foundation

/// How `switchyard serve` runs. The defaults are declared here once; the CLI's `serve` options
/// take theirs from an instance of this type.
public struct ServerOptions: Sendable {
    /// `HOST:PORT` to listen on (port 0: any free port). Loopback by default.
    public var listen = "127.0.0.1:50051"
    /// Most requests decoded together in one forward batch.
    public var maxBatch = 32
    /// Most requests waiting for a batch slot; beyond it Generate answers RESOURCE_EXHAUSTED.
    public var maxQueue = 256
    /// Largest `max_tokens` a request may ask for (INVALID_ARGUMENT above it).
    public var maxTokensLimit = 4096
    /// `max_tokens` when a request leaves it 0.
    public var defaultMaxTokens = 64
    /// Most prompt tokens prefilled per engine step (long prompts are fed in chunks).
    public var prefillChunk = 256
    /// Largest request or response message, in bytes (RESOURCE_EXHAUSTED above it).
    public var maxMessageBytes = 4 << 20
    /// When set, every Inference call needs `authorization: Bearer <token>` (health checks do not).
    public var token: String? = nil
    /// Reported in the `x-switchyard-replica` response metadata; default `hostname:port`.
    public var replicaID: String? = nil
    /// Directories `AddExpert` may read adapters from (nothing else on the server's disk).
    public var allowedExpertRoots: [URL] = []
    /// Per-request log lines on standard error.
    public var logFormat: LogFormat = .text
    /// Seconds running calls get to finish at shutdown before they are cancelled.
    public var shutdownGrace: Double = 10

    /// Per-request log lines as human-readable text, one JSON object per line, or none.
    public enum LogFormat: String, Sendable { case text, json, off }

    /// Every option at the default declared on its property (127.0.0.1:50051, batch 32, no token, ...).
    public init() {}
}
