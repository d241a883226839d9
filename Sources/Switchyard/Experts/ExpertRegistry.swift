import Foundation

/// A directory of experts (`<registry>/<name>/` PEFT adapter directories) validated against one
/// base model, with lazy loading into an LRU cache bounded by a byte budget.
///
/// - Every expert is validated (config against tensors against base shapes) when the registry is
///   opened and when it is added; invalid directories are reported in `problems`, not loaded.
/// - `acquire` loads experts on demand and returns a lease. Leased experts are pinned: eviction
///   skips them, and their memory (held by the lease) is never freed under a running request.
/// - `add` and `remove` work while requests run. Thread-safe (one lock; disk reads happen outside it).
public final class ExpertRegistry: @unchecked Sendable {
    /// What the registry knows about one expert without loading its weights.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var directory: URL
        public var summary: LoRAAdapter.Summary
        /// SHA-256 of `adapter_model.safetensors`.
        public var sha256: String
    }

    /// Cache counters, for `experts list` and `bench lora`.
    public struct Statistics: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        public var evictions = 0
        public var residentBytes = 0
        public var residentExperts = 0
    }

    public let directory: URL
    public let base: ModelConfig
    /// Most bytes of expert weights kept in memory (pinned experts may exceed it temporarily).
    public let budgetBytes: Int

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var resident: [String: (adapter: LoRAAdapter, lastUse: UInt64, pins: Int)] = [:]
    private var clock: UInt64 = 0
    private var stats = Statistics()
    /// Directories that failed validation when the registry was opened: name → error.
    public var problems: [String: String] { lock.withLock { problemErrors.mapValues { "\($0)" } } }
    private var problemErrors: [String: any Error] = [:]

    /// Opens a registry directory and validates every expert in it. With `create` (the default,
    /// for commands that add experts) a missing directory is created; without, it is an error —
    /// read-only commands leave the file system as they found it.
    public init(directory: URL, base: ModelConfig, budgetBytes: Int = 1 << 30, create: Bool = true) throws {
        self.directory = directory
        self.base = base
        self.budgetBytes = budgetBytes
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw SwitchyardError.io(path: directory.path, reason: "registry is not a directory") }
        } else if create {
            do { try fm.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
                throw SwitchyardError.io(path: directory.path, reason: "cannot create registry directory: \(error.localizedDescription)")
            }
        } else {
            throw SwitchyardError.io(path: directory.path, reason: "registry directory not found")
        }
        let names = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
        Self.removeStaleLeftovers(in: directory, names: names)
        for name in names.sorted() where !name.hasPrefix(".") {
            let dir = directory.appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else { continue }
            do { try Self.validateName(name) } catch {
                problemErrors[name] = error
                continue
            }
            do { entries[name] = try Self.makeEntry(name: name, directory: dir, base: base) } catch {
                problemErrors[name] = error
            }
        }
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
                    if let d = try? fm.attributesOfItem(atPath: path)[.modificationDate] as? Date, d > newest { newest = d }
                }
                guard now.timeIntervalSince(newest) > stagingGracePeriod else { continue }
            }
            try? fm.removeItem(at: url)
        }
    }

    static func makeEntry(name: String, directory: URL, base: ModelConfig) throws -> Entry {
        let summary = try LoRAAdapter.inspect(directory: directory, base: base)
        let weights = directory.appendingPathComponent("adapter_model.safetensors")
        guard let data = FileManager.default.contents(atPath: weights.path) else {
            throw SwitchyardError.io(path: weights.path, reason: "cannot read")
        }
        return Entry(name: name, directory: directory, summary: summary, sha256: SHA256.hex(data))
    }

    /// Expert names must be plain directory names.
    public static func validateName(_ name: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 128, !name.hasPrefix("."), name.allSatisfy({ allowed.contains($0) }) else {
            throw SwitchyardError.invalidArgument("invalid expert name \(EscapedText.quoted(name)): use letters, digits, '.', '_' and '-', not starting with '.'")
        }
    }

    /// All experts, sorted by name.
    public func list() -> [Entry] {
        lock.withLock { entries.values.sorted { $0.name < $1.name } }
    }

    public func entry(_ name: String) throws -> Entry {
        try lock.withLock {
            guard let e = entries[name] else { throw unknown(name) }
            return e
        }
    }

    /// The error for a name that is not a valid expert: its validation error when a directory of
    /// that name failed validation (the real reason), else "unknown expert". Called with the lock held.
    private func unknown(_ name: String) -> any Error {
        if let problem = problemErrors[name] { return problem }
        let known = entries.keys.sorted()
        let list = known.prefix(10).joined(separator: ", ") + (known.count > 10 ? ", …" : "")
        return SwitchyardError.invalidArgument("unknown expert \(EscapedText.quoted(name)) in registry \(directory.path) (known: \(known.isEmpty ? "none" : list))")
    }

    public var statistics: Statistics { lock.withLock { stats } }

    /// Whether `name`'s weights are in the cache now.
    public func isResident(_ name: String) -> Bool { lock.withLock { resident[name] != nil } }

    /// Looks for `name` on disk when it is unknown: another process sharing the directory (a
    /// replica, `switchyard experts add`) may have added it. Returns true if it is known now.
    /// Invalid directories are recorded in `problems` and stay unknown.
    @discardableResult
    public func rescan(_ name: String) -> Bool {
        if lock.withLock({ entries[name] != nil }) { return true }
        guard (try? Self.validateName(name)) != nil else { return false }
        let dir = directory.appendingPathComponent(name)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else { return false }
        do {
            let entry = try Self.makeEntry(name: name, directory: dir, base: base)
            lock.withLock {
                if entries[name] == nil { entries[name] = entry }
                problemErrors[name] = nil
            }
            return true
        } catch {
            lock.withLock { problemErrors[name] = error }
            return false
        }
    }

    /// Re-reads the directory listing: experts added by other processes appear, experts whose
    /// directory is gone disappear (requests holding them keep their weights).
    public func refresh() {
        let names = Set(((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix(".") })
        let known = lock.withLock { Set(entries.keys) }
        for gone in known.subtracting(names) {
            lock.withLock {
                entries[gone] = nil
                if let r = resident[gone], r.pins == 0 {
                    resident[gone] = nil
                    stats.residentBytes -= r.adapter.byteCount
                    stats.residentExperts = resident.count
                }
            }
        }
        for new in names.subtracting(known).sorted() { rescan(new) }
    }

    /// Loads (or finds in the cache) the named experts and pins them until the lease is released.
    public func acquire(_ names: [String]) throws -> ExpertLease {
        var adapters: [LoRAAdapter] = []
        for name in names {
            adapters.append(try acquireOne(name))
        }
        return ExpertLease(registry: self, adapters: adapters)
    }

    private func acquireOne(_ name: String) throws -> LoRAAdapter {
        let entry: Entry = try lock.withLock {
            guard let e = entries[name] else { throw unknown(name) }
            return e
        }
        if let hit = lock.withLock({ () -> LoRAAdapter? in
            guard var r = resident[name] else { return nil }
            clock += 1
            r.lastUse = clock
            r.pins += 1
            resident[name] = r
            stats.hits += 1
            return r.adapter
        }) { return hit }
        // Miss: read from disk without holding the lock.
        let adapter = try LoRAAdapter.load(directory: entry.directory, name: name, base: base)
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

    /// Evicts least-recently-used unpinned experts until the budget holds. Called with the lock held.
    private func evictIfNeeded() {
        while stats.residentBytes > budgetBytes {
            guard let victim = resident.filter({ $0.value.pins == 0 }).min(by: { $0.value.lastUse < $1.value.lastUse }) else { return }
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
            for file in ["adapter_config.json", "adapter_model.safetensors"] {
                try fm.copyItem(at: source.appendingPathComponent(file), to: staging.appendingPathComponent(file))
            }
        } catch {
            try? fm.removeItem(at: staging)
            throw SwitchyardError.io(path: source.path, reason: "cannot copy into registry: \(error.localizedDescription)")
        }
        return try install(staging: staging, name: name)
    }

    /// Writes an adapter produced by Switchyard (a merge, a composition) into the registry as `name`.
    @discardableResult
    public func add(_ adapter: LoRAAdapter, name: String) throws -> Entry {
        try Self.validateName(name)
        let staging = directory.appendingPathComponent(".staging-\(name)-\(UUID().uuidString)")
        do { try adapter.write(to: staging) } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        return try install(staging: staging, name: name)
    }

    private func install(staging: URL, name: String) throws -> Entry {
        let fm = FileManager.default
        let final = directory.appendingPathComponent(name)
        do {
            let entry = try Self.makeEntry(name: name, directory: final, base: base, staged: staging)
            try lock.withLock {
                guard entries[name] == nil, !fm.fileExists(atPath: final.path) else {
                    throw SwitchyardError.invalidArgument("expert '\(name)' already exists in \(directory.path); remove it first or pick another name")
                }
                do { try fm.moveItem(at: staging, to: final) } catch {
                    throw SwitchyardError.io(path: final.path, reason: "cannot install expert: \(error.localizedDescription)")
                }
                entries[name] = entry
                problemErrors[name] = nil
            }
            return entry
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
    }

    static func makeEntry(name: String, directory: URL, base: ModelConfig, staged: URL) throws -> Entry {
        var e = try makeEntry(name: name, directory: staged, base: base)
        e.directory = directory
        return e
    }

    /// Removes an expert from the registry and deletes its directory. Requests holding a lease keep
    /// their copy of the weights until they release it.
    public func remove(_ name: String) throws {
        let fm = FileManager.default
        try lock.withLock {
            guard let e = entries[name] else { throw unknown(name) }
            let trash = directory.appendingPathComponent(".removed-\(name)-\(UUID().uuidString)")
            do { try fm.moveItem(at: e.directory, to: trash) } catch {
                throw SwitchyardError.io(path: e.directory.path, reason: "cannot remove expert: \(error.localizedDescription)")
            }
            try? fm.removeItem(at: trash)
            entries[name] = nil
            if let r = resident.removeValue(forKey: name) { stats.residentBytes -= r.adapter.byteCount }
            stats.residentExperts = resident.count
        }
    }
}

/// Experts pinned in the registry's cache for one request. Release explicitly or let it deinit.
public final class ExpertLease: @unchecked Sendable {
    public let adapters: [LoRAAdapter]
    private weak var registry: ExpertRegistry?
    private var released = false
    private let lock = NSLock()

    init(registry: ExpertRegistry, adapters: [LoRAAdapter]) {
        self.registry = registry
        self.adapters = adapters
    }

    public func release() {
        let first = lock.withLock { () -> Bool in
            defer { released = true }
            return !released
        }
        if first { registry?.release(adapters.map(\.name)) }
    }

    deinit { release() }
}
