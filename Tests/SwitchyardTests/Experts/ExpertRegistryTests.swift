import Foundation
import Testing

@testable import Switchyard

@Suite struct ExpertRegistryTests {
    static func config() throws -> ModelConfig {
        try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
    }

    static func registry(budget: Int = 1 << 30) throws -> (ExpertRegistry, URL) {
        let dir = try FixturePaths.temporaryDirectory()
        return (try ExpertRegistry(directory: dir, base: try config(), budgetBytes: budget), dir)
    }

    @Test func addListInspectAndRemove() throws {
        let (reg, dir) = try Self.registry()
        defer { try? FileManager.default.removeItem(at: dir) }
        try reg.add(from: FixturePaths.url("adapters/attn-r4"), name: "attn")
        try reg.add(from: FixturePaths.url("adapters/all-pattern"), name: "all")
        #expect(reg.list().map(\.name) == ["all", "attn"])
        let all = try reg.entry("all")
        #expect(all.summary.ranks == [2, 4, 8])
        #expect(all.summary.targetKinds == ProjectionKind.allCases)
        #expect(all.sha256.count == 64)
        // The same file hashed independently.
        let data = try Data(contentsOf: FixturePaths.url("adapters/all-pattern/adapter_model.safetensors"))
        #expect(all.sha256 == SHA256.hex(data))
        // Reopening finds the same experts.
        let again = try ExpertRegistry(directory: dir, base: try Self.config())
        #expect(again.list().map(\.sha256) == reg.list().map(\.sha256))
        #expect(again.list().map(\.summary) == reg.list().map(\.summary))
        try reg.remove("attn")
        #expect(reg.list().map(\.name) == ["all"])
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("attn").path))
        #expect(throws: SwitchyardError.self) { try reg.remove("attn") }
    }

    @Test func refusesInvalidExpertsAndLeavesNothingBehind() throws {
        let (reg, dir) = try Self.registry()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: SwitchyardError.self) {
            try reg.add(from: FixturePaths.url("adapters/invalid/dora"), name: "dora")
        }
        #expect(throws: SwitchyardError.self) {
            try reg.add(from: FixturePaths.url("adapters/attn-r4"), name: "../escape")
        }
        try reg.add(from: FixturePaths.url("adapters/attn-r4"), name: "a")
        #expect(throws: SwitchyardError.self) { try reg.add(from: FixturePaths.url("adapters/attn-r4b"), name: "a") }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["a"])
        // An invalid directory placed by hand is reported, not loaded.
        try FileManager.default.copyItem(
            at: FixturePaths.url("adapters/invalid/wrong-rank"), to: dir.appendingPathComponent("broken"))
        let reopened = try ExpertRegistry(directory: dir, base: try Self.config())
        #expect(reopened.list().map(\.name) == ["a"])
        #expect(reopened.problems["broken"]?.contains("shape") == true)
    }

    @Test func lruEvictsUnpinnedExpertsWithinBudget() throws {
        // Budget for about two attn-r4-sized experts.
        let one = try LoRAAdapter.load(directory: FixturePaths.url("adapters/attn-r4"), base: try Self.config())
            .byteCount
        let (reg, dir) = try Self.registry(budget: 2 * one + one / 2)
        defer { try? FileManager.default.removeItem(at: dir) }
        for n in ["a", "b", "c"] { try reg.add(from: FixturePaths.url("adapters/attn-r4"), name: n) }
        let leaseA = try reg.acquire(["a"])
        leaseA.release()
        try reg.acquire(["b"]).release()
        _ = try reg.acquire(["a"])  // hit: a becomes most recent; lease dropped at once
        try reg.acquire(["c"]).release()  // evicts b (least recent, unpinned)
        var s = reg.statistics
        #expect(s.misses == 3 && s.hits == 1 && s.evictions == 1 && s.residentExperts == 2)
        // Pinned experts are never evicted, even over budget.
        let pinned = try reg.acquire(["a", "b", "c"])
        s = reg.statistics
        #expect(s.residentExperts == 3)
        pinned.release()
        #expect(reg.statistics.residentExperts == 2)
    }

    @Test func removingAnExpertInUseKeepsTheLeaseValid() throws {
        let (reg, dir) = try Self.registry()
        defer { try? FileManager.default.removeItem(at: dir) }
        try reg.add(from: FixturePaths.url("adapters/mlp-r8-rslora"), name: "m")
        let lease = try reg.acquire(["m"])
        try reg.remove("m")
        #expect(lease.adapters[0].modules.count == 9)
        #expect(throws: SwitchyardError.self) { try reg.acquire(["m"]) }
    }

    @Test func concurrentAcquireAddAndRemoveAreSafe() async throws {
        let (reg, dir) = try Self.registry(budget: 1)
        defer { try? FileManager.default.removeItem(at: dir) }
        for n in 0..<4 { try reg.add(from: FixturePaths.url("adapters/attn-r4"), name: "e\(n)") }
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<20 {
                        if let lease = try? reg.acquire(["e\((t + i) % 4)"]) {
                            #expect(lease.adapters[0].modules.count == 12)
                            lease.release()
                        }
                        if t == 0, i % 5 == 0 {
                            _ = try? reg.add(from: FixturePaths.url("adapters/attn-r4b"), name: "x\(i)")
                        }
                        if t == 1, i % 5 == 0 { try? reg.remove("x\(i)") }
                    }
                }
            }
        }
        #expect(reg.statistics.residentExperts == 0)
    }

    /// A compose or add killed mid-install leaves `.staging-*` (with partial `.tmp` files), a
    /// remove killed mid-delete leaves `.removed-*`: opening cleans them, except a staging
    /// directory recent enough to belong to an add still running elsewhere.
    @Test func openingCleansCrashLeftovers() throws {
        let (reg, dir) = try Self.registry()
        defer { try? FileManager.default.removeItem(at: dir) }
        try reg.add(from: FixturePaths.url("adapters/attn-r4"), name: "keep")
        let fm = FileManager.default
        func leftover(_ name: String, age: TimeInterval) throws {
            let url = dir.appendingPathComponent(name)
            try fm.createDirectory(at: url, withIntermediateDirectories: true)
            let partial = url.appendingPathComponent(".adapter_model.safetensors.tmp-123-456")
            try Data([1, 2, 3]).write(to: partial)
            let old = Date(timeIntervalSinceNow: -age)
            try fm.setAttributes([.modificationDate: old], ofItemAtPath: partial.path)
            try fm.setAttributes([.modificationDate: old], ofItemAtPath: url.path)
        }
        try leftover(".staging-composed-6F1C", age: 86_400)
        try leftover(".removed-gone-77AB", age: 5)
        try leftover(".staging-running-A1B2", age: 5)
        _ = try ExpertRegistry(directory: dir, base: try Self.config())
        let left = Set(try fm.contentsOfDirectory(atPath: dir.path))
        #expect(left == ["keep", ".staging-running-A1B2"])
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex(Array(String(repeating: "a", count: 1000).utf8))
                == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
