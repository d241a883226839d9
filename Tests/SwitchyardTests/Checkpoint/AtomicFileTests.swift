import Foundation
import Testing
@testable import Switchyard

@Suite struct AtomicFileTests {
    /// Overwriting an existing file replaces its contents and leaves no temporary file behind
    /// (Foundation's replaceItemAt on Linux deleted the old file and then failed).
    @Test func overwritingReplacesTheFileAndLeavesNoTemporaries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("router.pb")
        try AtomicFile.write(Data([1, 2, 3]), to: url)
        try AtomicFile.write(Data([4, 5]), to: url)
        #expect(try Data(contentsOf: url) == Data([4, 5]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["router.pb"])
    }

    /// A write that cannot replace the target is an error naming it, and the target survives.
    @Test func aFailedReplaceKeepsWhatWasThere() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        let target = dir.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data([9]).write(to: target.appendingPathComponent("keep"))
        #expect { try AtomicFile.write(Data([1]), to: target) } throws: { error in
            "\(error)".contains(target.path)
        }
        #expect(try Data(contentsOf: target.appendingPathComponent("keep")) == Data([9]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["occupied"])
    }
}
