import Foundation

/// A directory of experts (`<registry>/<name>/` PEFT adapter directories) validated against one
/// base model, with lazy loading into an LRU cache bounded by a byte budget.
///
/// Built for thousands of experts (S-LoRA scale), where opening must not read them all:
/// - Opening lists the directory and nothing more (one `readdir`; 10,000 experts open in
///   milliseconds). It also deletes crash leftovers (`.removed-*`, stale `.staging-*`).
/// - An expert is validated (config against tensors against base shapes, headers only) the first
///   time it is needed — `entry`, `acquire`, `rescan`, `list`, `problems` — and again whenever
///   its files change (size, mtime or inode). An invalid expert is reported with its validation
///   error wherever it is named, and listed in `problems`.
/// - An expert that records its base (`BaseRecord`, `switchyard_base.json`) is refused when the
///   record describes other weights or a base that does not match `baseFingerprint` (unless
///   `allowBaseMismatch`); one without a record (written by PEFT) is accepted. Adapters the
///   registry writes (`add(_:name:)`: merge, compose) record `baseFingerprint`.
/// - Its SHA-256 is computed when first needed (`entry`, `list`: routers pin experts by hash) and
///   cached in a sidecar next to the weights (`ExpertHashCache`), so the next process reads it.
/// - `acquire` loads experts on demand, parsing each once per load (the validation and the read
///   share one parse), and returns a lease. Leased experts are pinned: eviction skips them, and
///   their memory (held by the lease) is never freed under a running request.
/// - `add` and `remove` work while requests run; `rescan` and `refresh` pick up what other
///   processes sharing the directory did. Thread-safe (one lock; disk work happens outside it).
public final class ExpertRegistry: @unchecked Sendable {
    /// What the registry knows about one expert without loading its weights.
    public struct Entry: Sendable, Equatable {
        /// The expert's name (its directory name).
        public var name: String
        /// The expert's directory.
        public var directory: URL
        /// What validation learnt from its config and header.
        public var summary: LoRAAdapter.Summary
        /// SHA-256 of `adapter_model.safetensors`.
        public var sha256: String
        /// The base the expert records it was trained on; nil: not recorded (a PEFT-written
        /// adapter).
        public var baseRecord: BaseRecord?
    }

    /// Cache counters, for `experts list` and `bench lora`.
    public struct Statistics: Sendable, Equatable {
        /// Acquires served from memory.
        public var hits = 0
        /// Acquires that read the expert from disk.
        public var misses = 0
        /// Experts dropped from memory to stay within the budget.
        public var evictions = 0
        /// Bytes of expert weights in memory now.
        public var residentBytes = 0
        /// Experts in memory now.
        public var residentExperts = 0
    }

    /// The registry directory (one subdirectory per expert).
    public let directory: URL
    /// The base model's config, which every expert's shapes must fit.
    public let base: ModelConfig
    /// Most bytes of expert weights kept in memory (pinned experts may exceed it temporarily).
    public let budgetBytes: Int
    /// The fingerprint of the loaded base, which recorded bases must match; nil when only the
    /// config is known (experts are then checked against shapes, and records only for staleness).
    public let baseFingerprint: BaseFingerprint?
    /// Accept experts recorded for another base (`--allow-base-mismatch`).
    public let allowBaseMismatch: Bool

    /// The stamps of an expert's files: a validation result holds while they do.
    struct Stamps: Equatable {
        var config: FileStamp?
        var weights: FileStamp?
        var baseRecord: FileStamp?
    }

    /// One directory entry that may be an expert.
    private struct Record {
        enum Validation {
            case valid(LoRAAdapter.Summary, BaseRecord?)
            case invalid(any Error)
        }
        /// The last validation and the stamps it was made for; nil until first needed.
        var validation: (result: Validation, stamps: Stamps)?
        /// The weights' hash and the stamp it was computed for.
        var sha256: (hash: String, stamp: FileStamp)?
    }

    private let lock = NSLock()
    private var records: [String: Record] = [:]
    /// Names that are not valid expert names (never experts, reported in `problems`).
    private var badNames: [String: any Error] = [:]
    private var resident: [String: (adapter: LoRAAdapter, lastUse: UInt64, pins: Int)] = [:]
    private var clock: UInt64 = 0
    private var stats = Statistics()

    /// Opens a registry directory: lists it, validates nothing yet. With `create` (the default,
    /// for commands that add experts) a missing directory is created; without, it is an error —
    /// read-only commands leave the file system as they found it.
    ///
    /// - Parameters:
    ///   - base: the base's config, which every expert's shapes must fit.
    ///   - baseFingerprint: the loaded base's fingerprint, which recorded bases must match (nil:
    ///     not compared; see `init(directory:model:…)`).
    ///   - allowBaseMismatch: accept experts recorded for another base.
    public init(
        directory: URL, base: ModelConfig, baseFingerprint: BaseFingerprint? = nil, allowBaseMismatch: Bool = false,
        budgetBytes: Int = 1 << 30, create: Bool = true
    ) throws {
        self.directory = directory
        self.base = base
        self.baseFingerprint = baseFingerprint
        self.allowBaseMismatch = allowBaseMismatch
        self.budgetBytes = budgetBytes
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory.path, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw SwitchyardError.io(path: directory.path, reason: "registry is not a directory")
            }
        } else if create {
            do { try fm.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
                throw SwitchyardError.io(
                    path: directory.path, reason: "cannot create registry directory: \(error.localizedDescription)")
            }
        } else {
            throw SwitchyardError.io(path: directory.path, reason: "registry directory not found")
        }
        let listing = try Self.listDirectories(directory)
        Self.removeStaleLeftovers(in: directory, names: listing.hidden)
        for name in listing.directories { admit(name) }
    }

    /// Opens a registry for experts of a loaded `model`: shapes are checked against its config and
    /// recorded bases against its fingerprint (computed here, a few milliseconds).
    public convenience init(
        directory: URL, model: LlamaModel, allowBaseMismatch: Bool = false,
        budgetBytes: Int = 1 << 30, create: Bool = true
    ) throws {
        try self.init(
            directory: directory, base: model.config, baseFingerprint: BaseFingerprint(model: model),
            allowBaseMismatch: allowBaseMismatch, budgetBytes: budgetBytes, create: create)
    }

    /// Records a listed directory: an expert candidate, or a bad name. Called with the lock held
    /// (or before the registry is shared).
    private func admit(_ name: String) {
        do {
            try Self.validateName(name)
            if records[name] == nil { records[name] = Record() }
        } catch {
            badNames[name] = error
        }
    }

    /// The registry's subdirectories (following links) and hidden entries, from one `readdir`
    /// (the entry type it reports saves a `stat` per expert).
    static func listDirectories(_ directory: URL) throws -> (directories: [String], hidden: [String]) {
        guard let dir = opendir(directory.path) else {
            throw SwitchyardError.io(
                path: directory.path, reason: "cannot list registry: \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var directories: [String] = [], hidden: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            if name.hasPrefix(".") {
                hidden.append(name)
                continue
            }
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_DIR): directories.append(name)
            case Int32(DT_LNK), Int32(DT_UNKNOWN):
                var st = stat()
                if stat(directory.appendingPathComponent(name).path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
                    directories.append(name)
                }
            default: continue
            }
        }
        return (directories, hidden)
    }

    /// How old an unfinished `.staging-*` directory must be before opening a registry deletes it:
    /// younger ones may belong to an add still running in another process.
    public static let stagingGracePeriod: TimeInterval = 15 * 60

    /// Deletes what crashed processes left behind: `.removed-*` directories (an expert renamed
    /// away for deletion; nothing reads them) and `.staging-*` directories (an add or compose
    /// killed before its rename) untouched for `stagingGracePeriod`. Neither is ever visible as
    /// an expert.
    static func removeStaleLeftovers(in directory: URL, names: [String], now: Date = Date()) {
        let fm = FileManager.default
        for name in names where name.hasPrefix(".removed-") || name.hasPrefix(".staging-") {
            let url = directory.appendingPathComponent(name)
            if name.hasPrefix(".staging-") {
                // The newest modification among the directory and the files being written into it.
                var newest = (try? fm.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? now
                for child in (try? fm.contentsOfDirectory(atPath: url.path)) ?? [] {
                    let path = url.appendingPathComponent(child).path
                    if let d = try? fm.attributesOfItem(atPath: path)[.modificationDate] as? Date, d > newest {
                        newest = d
                    }
                }
                guard now.timeIntervalSince(newest) > stagingGracePeriod else { continue }
            }
            try? fm.removeItem(at: url)
        }
    }

    /// Expert names must be plain directory names.
    public static func validateName(_ name: String) throws {
        func allowed(_ b: UInt8) -> Bool {
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x2E
                || b == 0x5F || b == 0x2D
        }
        guard !name.isEmpty, name.utf8.count <= 128, !name.hasPrefix("."), name.utf8.allSatisfy(allowed) else {
            throw SwitchyardError.invalidArgument(
                "invalid expert name \(EscapedText.quoted(name)): use letters, digits, '.', '_' and '-', not starting with '.'"
            )
        }
    }

    // MARK: Validation and hashing (disk work outside the lock)

    private func expertDirectory(_ name: String) -> URL { directory.appendingPathComponent(name) }

    private func stamps(_ name: String) -> Stamps {
        let dir = expertDirectory(name)
        return Stamps(
            config: FileStamp(path: dir.appendingPathComponent("adapter_config.json").path),
            weights: FileStamp(path: dir.appendingPathComponent("adapter_model.safetensors").path),
            baseRecord: FileStamp(path: dir.appendingPathComponent(BaseRecord.fileName).path))
    }

    /// The expert's summary and base record, validating it when it never was or its files
    /// changed since. Throws its validation error (the real reason), or "unknown expert"
    /// without a record.
    private func summary(_ name: String) throws -> (LoRAAdapter.Summary, BaseRecord?) {
        guard let record = lock.withLock({ records[name] }) else { throw lock.withLock { unknown(name) } }
        let now = stamps(name)
        if let v = record.validation, v.stamps == now {
            switch v.result {
            case let .valid(summary, baseRecord): return (summary, baseRecord)
            case let .invalid(error): throw error
            }
        }
        do {
            let summary = try LoRAAdapter.inspect(directory: expertDirectory(name), base: base)
            let baseRecord = try checkedBaseRecord(name)
            store(name, .valid(summary, baseRecord), now)
            return (summary, baseRecord)
        } catch {
            store(name, .invalid(error), now)
            throw error
        }
    }

    /// The expert's base record, checked against its weights and the loaded base.
    private func checkedBaseRecord(_ name: String) throws -> BaseRecord? {
        let dir = expertDirectory(name)
        guard let record = try BaseRecord.read(directory: dir) else { return nil }
        try BaseRecord.check(
            record, weightsSHA256: try sha256(name), base: baseFingerprint,
            allowMismatch: allowBaseMismatch, expert: name, directory: dir)
        return record
    }

    private func store(_ name: String, _ result: Record.Validation, _ stamps: Stamps) {
        lock.withLock { records[name]?.validation = (result, stamps) }
    }

    /// The weights' SHA-256: remembered in memory and in the sidecar, computed otherwise.
    private func sha256(_ name: String) throws -> String {
        let weights = expertDirectory(name).appendingPathComponent("adapter_model.safetensors").path
        guard let stamp = FileStamp(path: weights) else {
            throw SwitchyardError.io(path: weights, reason: "cannot read adapter_model.safetensors")
        }
        if let cached = lock.withLock({ records[name]?.sha256 }), cached.stamp == stamp { return cached.hash }
        let hash = try ExpertHashCache.sha256(weights: weights, stamp: stamp, directory: expertDirectory(name))
        lock.withLock { records[name]?.sha256 = (hash, stamp) }
        return hash
    }

    private func makeEntry(_ name: String) throws -> Entry {
        let (summary, baseRecord) = try summary(name)
        return Entry(
            name: name, directory: expertDirectory(name), summary: summary, sha256: try sha256(name),
            baseRecord: baseRecord)
    }

    // MARK: Queries

    /// Every valid expert, sorted by name (validating and hashing those not done yet; invalid
    /// ones are left out and reported in `problems`).
    public func list() -> [Entry] {
        let names = lock.withLock { records.keys.sorted() }
        return names.compactMap { try? makeEntry($0) }
    }

    /// The names of the expert directories, sorted, without validating or hashing anything
    /// (cheap at any scale; `list()` validates and hashes every expert it returns).
    public func names() -> [String] {
        lock.withLock { records.keys.sorted() }
    }

    /// The expert `name` (validated and hashed). Throws its validation error when its directory
    /// is not a valid expert, "unknown expert" when there is no such directory.
    public func entry(_ name: String) throws -> Entry {
        if let bad = lock.withLock({ badNames[name] }) { throw bad }
        return try makeEntry(name)
    }

    /// Directories that are not valid experts: name → error (validating every expert not
    /// validated yet).
    public var problems: [String: String] {
        let names = lock.withLock { records.keys.sorted() }
        var out = lock.withLock { badNames.mapValues { "\($0)" } }
        for name in names {
            do { _ = try summary(name) } catch { out[name] = "\(error)" }
        }
        return out
    }

    /// The error for a name that is not a known expert: its recorded validation error when a
    /// directory of that name failed validation, else "unknown expert". Called with the lock held.
    private func unknown(_ name: String) -> any Error {
        if let bad = badNames[name] { return bad }
        if case let .invalid(error)? = records[name]?.validation?.result { return error }
        let known = records.keys.sorted()
        let list =
            known.prefix(10).map { EscapedText.escaped($0) }.joined(separator: ", ") + (known.count > 10 ? ", …" : "")
        return SwitchyardError.invalidArgument(
            "unknown expert \(EscapedText.quoted(name)) in registry \(directory.path) (known: \(known.isEmpty ? "none" : list))"
        )
    }

    /// The cache counters now.
    public var statistics: Statistics { lock.withLock { stats } }

    /// Names validated so far (valid or not), for tests of laziness.
    var validatedNames: Set<String> { lock.withLock { Set(records.filter { $0.value.validation != nil }.keys) } }

    /// Whether `name`'s weights are in the cache now.
    public func isResident(_ name: String) -> Bool { lock.withLock { resident[name] != nil } }

    /// Whether `name` is a valid expert, looking on disk when it is unknown: another process
    /// sharing the directory (a replica, `switchyard experts add`) may have added it. An expert
    /// validated before is taken as valid without touching the disk (the hot path of every
    /// request); one never validated is validated now. Invalid directories are recorded in
    /// `problems` and give false.
    @discardableResult
    public func rescan(_ name: String) -> Bool {
        let known: Record? = lock.withLock { records[name] }
        if case .valid? = known?.validation?.result { return true }
        if known == nil {
            guard (try? Self.validateName(name)) != nil else { return false }
            var st = stat()
            guard stat(expertDirectory(name).path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { return false }
            lock.withLock { if records[name] == nil { records[name] = Record() } }
        }
        return (try? summary(name)) != nil
    }

    /// Re-reads the directory listing: experts added by other processes appear (validated when
    /// first needed), experts whose directory is gone disappear (requests holding them keep their
    /// weights).
    public func refresh() {
        guard let listing = try? Self.listDirectories(directory) else { return }
        let names = Set(listing.directories)
        lock.withLock {
            for gone in Set(records.keys).subtracting(names) {
                records[gone] = nil
                if let r = resident[gone], r.pins == 0 {
                    resident[gone] = nil
                    stats.residentBytes -= r.adapter.byteCount
                    stats.residentExperts = resident.count
                }
            }
            for gone in Set(badNames.keys).subtracting(names) { badNames[gone] = nil }
            for name in names where records[name] == nil && badNames[name] == nil { admit(name) }
        }
    }

    // MARK: Leases

    /// Loads (or finds in the cache) the named experts and pins them until the lease is released.
    /// An expert that is not valid throws its validation error.
    public func acquire(_ names: [String]) throws -> ExpertLease {
        var adapters: [LoRAAdapter] = []
        do {
            for name in names { adapters.append(try acquireOne(name)) }
        } catch {
            release(adapters.map(\.name))
            throw error
        }
        return ExpertLease(registry: self, adapters: adapters)
    }

    private func acquireOne(_ name: String) throws -> LoRAAdapter {
        if let hit = try lock.withLock({ () throws -> LoRAAdapter? in
            guard records[name] != nil else { throw unknown(name) }
            guard var r = resident[name] else { return nil }
            clock += 1
            r.lastUse = clock
            r.pins += 1
            resident[name] = r
            stats.hits += 1
            return r.adapter
        }) {
            return hit
        }
        // Miss: read from disk without holding the lock, parsing once for validation and load.
        let adapter = try load(name)
        return lock.withLock {
            clock += 1
            if var r = resident[name] {  // loaded concurrently by another caller
                r.pins += 1
                r.lastUse = clock
                resident[name] = r
                stats.hits += 1
                return r.adapter
            }
            stats.misses += 1
            resident[name] = (adapter, clock, 1)
            stats.residentBytes += adapter.byteCount
            evictIfNeeded()
            stats.residentExperts = resident.count
            return adapter
        }
    }

    /// Validates and reads an expert in one parse of its config and header, recording the
    /// validation result.
    private func load(_ name: String) throws -> LoRAAdapter {
        let now = stamps(name)
        if let v = lock.withLock({ records[name]?.validation }), v.stamps == now, case let .invalid(error) = v.result {
            throw error
        }
        do {
            let (config, file, plan) = try LoRAAdapter.validate(directory: expertDirectory(name), base: base)
            let baseRecord = try checkedBaseRecord(name)
            store(name, .valid(LoRAAdapter.summarize(config: config, file: file, plan: plan), baseRecord), now)
            return try LoRAAdapter.load(config: config, file: file, plan: plan, name: name)
        } catch {
            store(name, .invalid(error), now)
            throw error
        }
    }

    /// Evicts least-recently-used unpinned experts until the budget holds. Called with the lock held.
    private func evictIfNeeded() {
        while stats.residentBytes > budgetBytes {
            guard let victim = resident.filter({ $0.value.pins == 0 }).min(by: { $0.value.lastUse < $1.value.lastUse })
            else { return }
            resident.removeValue(forKey: victim.key)
            stats.residentBytes -= victim.value.adapter.byteCount
            stats.evictions += 1
        }
    }

    func release(_ names: [String]) {
        lock.withLock {
            for name in names {
                if var r = resident[name] {
                    r.pins = max(0, r.pins - 1)
                    resident[name] = r
                }
            }
            evictIfNeeded()
            stats.residentExperts = resident.count
        }
    }

    // MARK: Adding and removing

    /// Copies a PEFT adapter directory into the registry as `name`, validating it first. The copy is
    /// staged in a hidden directory and renamed into place, so a failed add leaves nothing behind.
    @discardableResult
    public func add(from source: URL, name: String) throws -> Entry {
        try Self.validateName(name)
        _ = try LoRAAdapter.inspect(directory: source, base: base)
        let fm = FileManager.default
        let staging = directory.appendingPathComponent(".staging-\(name)-\(UUID().uuidString)")
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: true)
            for file in ["adapter_config.json", "adapter_model.safetensors", BaseRecord.fileName]
            where file != BaseRecord.fileName || fm.fileExists(atPath: source.appendingPathComponent(file).path) {
                try fm.copyItem(at: source.appendingPathComponent(file), to: staging.appendingPathComponent(file))
            }
        } catch {
            try? fm.removeItem(at: staging)
            throw SwitchyardError.io(
                path: source.path, reason: "cannot copy into registry: \(error.localizedDescription)")
        }
        return try install(staging: staging, name: name)
    }

    /// Writes an adapter produced by Switchyard (a merge, a composition) into the registry as
    /// `name`, recording `baseFingerprint` as its base (when the registry knows it).
    @discardableResult
    public func add(_ adapter: LoRAAdapter, name: String) throws -> Entry {
        try Self.validateName(name)
        let staging = directory.appendingPathComponent(".staging-\(name)-\(UUID().uuidString)")
        do { try adapter.write(to: staging, base: baseFingerprint) } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        return try install(staging: staging, name: name)
    }

    /// Validates and hashes the staged copy (the hash sidecar is written there: a rename keeps
    /// the inode and mtime it is keyed by), then renames it into place.
    private func install(staging: URL, name: String) throws -> Entry {
        let fm = FileManager.default
        let final = directory.appendingPathComponent(name)
        do {
            let summary = try LoRAAdapter.inspect(directory: staging, base: base)
            let weights = staging.appendingPathComponent("adapter_model.safetensors").path
            guard let stamp = FileStamp(path: weights) else {
                throw SwitchyardError.io(path: weights, reason: "cannot read")
            }
            let hash = try ExpertHashCache.sha256(weights: weights, stamp: stamp, directory: staging)
            let baseRecord = try BaseRecord.read(directory: staging)
            try BaseRecord.check(
                baseRecord, weightsSHA256: hash, base: baseFingerprint, allowMismatch: allowBaseMismatch,
                expert: name, directory: staging)
            let configStamp = FileStamp(path: staging.appendingPathComponent("adapter_config.json").path)
            let recordStamp = FileStamp(path: staging.appendingPathComponent(BaseRecord.fileName).path)
            try lock.withLock {
                guard !fm.fileExists(atPath: final.path) else {
                    throw SwitchyardError.invalidArgument(
                        "expert \(EscapedText.quoted(name)) already exists in \(directory.path); remove it first or pick another name"
                    )
                }
                do { try fm.moveItem(at: staging, to: final) } catch {
                    throw SwitchyardError.io(
                        path: final.path, reason: "cannot install expert: \(error.localizedDescription)")
                }
                badNames[name] = nil
                records[name] = Record(
                    validation: (
                        .valid(summary, baseRecord),
                        Stamps(config: configStamp, weights: stamp, baseRecord: recordStamp)
                    ),
                    sha256: (hash, stamp))
            }
            return Entry(name: name, directory: final, summary: summary, sha256: hash, baseRecord: baseRecord)
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
    }

    /// Removes an expert from the registry and deletes its directory (an invalid one too: that is
    /// how it gets cleaned up). Requests holding a lease keep their copy of the weights until they
    /// release it.
    public func remove(_ name: String) throws {
        if lock.withLock({ records[name] == nil }) { rescan(name) }  // added by another process?
        let fm = FileManager.default
        try lock.withLock {
            guard records[name] != nil else { throw unknown(name) }
            let dir = expertDirectory(name)
            let trash = directory.appendingPathComponent(".removed-\(name)-\(UUID().uuidString)")
            do { try fm.moveItem(at: dir, to: trash) } catch {
                throw SwitchyardError.io(path: dir.path, reason: "cannot remove expert: \(error.localizedDescription)")
            }
            try? fm.removeItem(at: trash)
            records[name] = nil
            if let r = resident.removeValue(forKey: name) { stats.residentBytes -= r.adapter.byteCount }
            stats.residentExperts = resident.count
        }
    }
}

/// Experts pinned in the registry's cache for one request. Release explicitly or let it deinit.
public final class ExpertLease: @unchecked Sendable {
    /// The leased experts, in the order they were asked for.
    public let adapters: [LoRAAdapter]
    private weak var registry: ExpertRegistry?
    private var released = false
    private let lock = NSLock()

    init(registry: ExpertRegistry, adapters: [LoRAAdapter]) {
        self.registry = registry
        self.adapters = adapters
    }

    /// Unpins the experts (idempotent; also done on deinit).
    public func release() {
        let first = lock.withLock { () -> Bool in
            defer { released = true }
            return !released
        }
        if first { registry?.release(adapters.map(\.name)) }
    }

    deinit { release() }
}
