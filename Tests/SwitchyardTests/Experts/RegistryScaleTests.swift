import Foundation
import Testing

@testable import Switchyard

/// The registry at S-LoRA scale (issue 13, section 1): opening reads nothing, validation and
/// hashing happen on first need, hashes are cached in a sidecar keyed by size + mtime + inode.
@Suite struct RegistryScaleTests {
    static func config() throws -> ModelConfig { try ExpertRegistryTests.config() }
    static let fm = FileManager.default

    /// A registry directory holding copies of the attn-r4 fixture under `names`.
    static func directory(_ names: [String]) throws -> URL {
        let dir = try FixturePaths.temporaryDirectory()
        for n in names { try fm.copyItem(at: FixturePaths.url("adapters/attn-r4"), to: dir.appendingPathComponent(n)) }
        return dir
    }

    static var fixtureHash: String {
        get throws { SHA256.hex(try Data(contentsOf: FixturePaths.url("adapters/attn-r4/adapter_model.safetensors"))) }
    }

    @Test func openingReadsNoExpertAndValidatesOnFirstNeed() throws {
        let dir = try Self.directory(["a", "b", "c"])
        defer { try? Self.fm.removeItem(at: dir) }
        // A broken expert does not make opening fail or slow: it is only found when needed.
        try Data("{".utf8).write(to: dir.appendingPathComponent("b/adapter_config.json"))
        let reg = try ExpertRegistry(directory: dir, base: try Self.config(), create: false)
        #expect(reg.validatedNames.isEmpty)
        #expect(reg.names() == ["a", "b", "c"] && reg.validatedNames.isEmpty)
        let lease = try reg.acquire(["a"])
        #expect(reg.validatedNames == ["a"])
        lease.release()
        #expect(
            !Self.fm.fileExists(atPath: dir.appendingPathComponent("a/\(ExpertHashCache.sidecarName)").path),
            "acquiring needs no hash")
        #expect { try reg.entry("b") } throws: { "\($0)".contains("adapter_config.json") }
        #expect(reg.list().map(\.name) == ["a", "c"])
        #expect(reg.problems.keys.sorted() == ["b"])
    }

    @Test func hashesAreCachedInASidecarKeyedByTheFileStamp() throws {
        let dir = try Self.directory(["a", "b"])
        defer { try? Self.fm.removeItem(at: dir) }
        let expected = try Self.fixtureHash
        let reg = try ExpertRegistry(directory: dir, base: try Self.config(), create: false)
        #expect(try reg.entry("a").sha256 == expected)
        let sidecar = dir.appendingPathComponent("a/\(ExpertHashCache.sidecarName)")
        #expect(Self.fm.fileExists(atPath: sidecar.path))

        // A fresh process trusts a sidecar whose stamp matches: prove it by planting another hash.
        let weights = dir.appendingPathComponent("a/adapter_model.safetensors").path
        let stamp = try #require(FileStamp(path: weights))
        let planted = String(repeating: "ab", count: 32)
        ExpertHashCache.write(planted, stamp: stamp, to: sidecar)
        #expect(try ExpertRegistry(directory: dir, base: try Self.config()).entry("a").sha256 == planted)

        // Any change to the file's stamp (here its mtime) makes the sidecar stale: recomputed.
        try Self.fm.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: weights)
        #expect(try ExpertRegistry(directory: dir, base: try Self.config()).entry("a").sha256 == expected)

        // A sidecar copied from another expert (another inode) is foreign: ignored.
        _ = try ExpertRegistry(directory: dir, base: try Self.config()).entry("b")
        let foreign = dir.appendingPathComponent("b/\(ExpertHashCache.sidecarName)")
        ExpertHashCache.write(
            planted,
            stamp: try #require(FileStamp(path: dir.appendingPathComponent("a/adapter_model.safetensors").path)),
            to: foreign)
        #expect(try ExpertRegistry(directory: dir, base: try Self.config()).entry("b").sha256 == expected)

        // Corrupt sidecars are ignored, never trusted, and never an error.
        for garbage in [
            "", "{", "[1]", "{\"version\": 1}", String(repeating: "x", count: 10_000),
            "{\"version\": 1, \"size\": \(stamp.size), \"mtime_ns\": 0, \"inode\": \"1\", \"device\": \"1\", \"sha256\": \"zz\"}"
        ] {
            try Data(garbage.utf8).write(to: foreign)
            #expect(try ExpertRegistry(directory: dir, base: try Self.config()).entry("b").sha256 == expected)
        }
        // A directory or a link at the sidecar's name is not followed, not fatal.
        try Self.fm.removeItem(at: foreign)
        try Self.fm.createSymbolicLink(atPath: foreign.path, withDestinationPath: sidecar.path)
        #expect(try ExpertRegistry(directory: dir, base: try Self.config()).entry("b").sha256 == expected)
    }

    @Test func expertsChangedOnDiskAreRevalidated() throws {
        let dir = try Self.directory(["a"])
        defer { try? Self.fm.removeItem(at: dir) }
        let reg = try ExpertRegistry(directory: dir, base: try Self.config(), create: false)
        #expect(try reg.entry("a").summary.ranks == [4])
        // Another process replaces the expert's files with an invalid version.
        try Self.fm.removeItem(at: dir.appendingPathComponent("a/adapter_model.safetensors"))
        try Self.fm.copyItem(
            at: FixturePaths.url("adapters/invalid/wrong-rank/adapter_model.safetensors"),
            to: dir.appendingPathComponent("a/adapter_model.safetensors"))
        #expect { try reg.entry("a") } throws: { "\($0)".contains("a/adapter_model.safetensors") }
        #expect(!reg.rescan("zz"))
    }

    /// What the server relies on: rescan finds experts another process added, refresh re-reads
    /// the listing, problems lists invalid directories, entry/acquire give the real error.
    @Test func sharedDirectorySemanticsHold() throws {
        let dir = try Self.directory(["a"])
        defer { try? Self.fm.removeItem(at: dir) }
        let reg = try ExpertRegistry(directory: dir, base: try Self.config())
        let other = try ExpertRegistry(directory: dir, base: try Self.config())
        try other.add(from: FixturePaths.url("adapters/attn-r4b"), name: "late")
        #expect(reg.list().map(\.name) == ["a"])
        #expect(reg.rescan("late"))
        #expect(try reg.entry("late").sha256 == other.entry("late").sha256)
        try Self.fm.copyItem(
            at: FixturePaths.url("adapters/invalid/bad-shape"), to: dir.appendingPathComponent("broken"))
        #expect(!reg.rescan("broken"))
        #expect(reg.problems["broken"] != nil)
        #expect { try reg.acquire(["broken"]) } throws: { "\($0)".contains("lora_A.weight") }
        try other.remove("late")
        try Self.fm.copyItem(at: FixturePaths.url("adapters/attn-r4"), to: dir.appendingPathComponent("fresh"))
        reg.refresh()
        #expect(reg.list().map(\.name) == ["a", "fresh"])
        #expect(throws: SwitchyardError.self) { try reg.acquire(["late"]) }
        // An invalid expert can be removed (that is how it is cleaned up).
        try reg.remove("broken")
        #expect(!Self.fm.fileExists(atPath: dir.appendingPathComponent("broken").path))
    }

    @Test func aFailedAcquireReleasesWhatItPinned() throws {
        let dir = try Self.directory(["a"])
        defer { try? Self.fm.removeItem(at: dir) }
        let reg = try ExpertRegistry(directory: dir, base: try Self.config(), budgetBytes: 1)
        #expect(throws: SwitchyardError.self) { try reg.acquire(["a", "missing"]) }
        #expect(reg.statistics.residentExperts == 0, "a is unpinned, so the 1-byte budget evicts it")
    }

    @Test func sha256InPiecesEqualsOneShot() throws {
        var rng = SeededRandom(seed: 9)
        let bytes = (0..<1000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let whole = SHA256.hex(bytes)
        for cuts in [[1], [63], [64], [65], [1, 2, 3, 500], [128, 129, 700]] {
            var s = SHA256()
            var start = 0
            for cut in cuts + [bytes.count] {
                s.update(bytes[start..<cut])
                start = cut
            }
            #expect(s.finalizeHex() == whole, "\(cuts)")
        }
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? Self.fm.removeItem(at: dir) }
        try Data(bytes).write(to: dir.appendingPathComponent("f"))
        #expect(try SHA256.hex(fileAt: dir.appendingPathComponent("f").path) == whole)
    }

    /// A FIFO planted as an expert's weights is refused without blocking.
    @Test func aFIFOInPlaceOfWeightsDoesNotHang() throws {
        let dir = try Self.directory(["a"])
        defer { try? Self.fm.removeItem(at: dir) }
        let weights = dir.appendingPathComponent("a/adapter_model.safetensors")
        try Self.fm.removeItem(at: weights)
        #expect(mkfifo(weights.path, 0o600) == 0)
        let reg = try ExpertRegistry(directory: dir, base: try Self.config())
        #expect(throws: (any Error).self) { try reg.acquire(["a"]) }
        #expect(throws: (any Error).self) { try reg.entry("a") }
    }
}
