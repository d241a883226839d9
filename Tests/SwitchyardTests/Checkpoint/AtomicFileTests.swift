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
            "\(error)".contains(target.path) && "\(error)".contains("directory")
        }
        #expect(try Data(contentsOf: target.appendingPathComponent("keep")) == Data([9]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["occupied"])
    }
}

@Suite struct AtomicFileTargetTests {
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A symbolic link at the target is refused (not replaced, not written through), naming it.
    @Test func refusesToReplaceASymbolicLink() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let real = dir.appendingPathComponent("real")
        try Data([7]).write(to: real)
        let link = dir.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: real)
        #expect { try AtomicFile.write(Data([1]), to: link) } throws: { error in
            "\(error)".contains(link.path) && "\(error)".contains("symbolic link")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == real.path)
        #expect(try Data(contentsOf: real) == Data([7]))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == ["real", "link"])
        // A dangling link is refused too.
        let dangling = dir.appendingPathComponent("dangling")
        try FileManager.default.createSymbolicLink(
            atPath: dangling.path, withDestinationPath: dir.appendingPathComponent("nowhere").path)
        #expect(throws: SwitchyardError.self) { try AtomicFile.write(Data([1]), to: dangling) }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("nowhere").path))
    }

    /// A device node (here /dev/null, which every test machine has) is refused and survives.
    @Test func refusesToReplaceADevice() throws {
        #expect { try AtomicFile.write(Data([1]), to: URL(fileURLWithPath: "/dev/null")) } throws: { error in
            "\(error)".contains("/dev/null") && "\(error)".contains("character device")
        }
        var st = stat()
        #expect(lstat("/dev/null", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR)
    }

    /// A FIFO is refused (writing to it would block; replacing it would break its users).
    @Test func refusesToReplaceAFIFO() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("pipe")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        #expect { try AtomicFile.write(Data([1]), to: fifo) } throws: { error in "\(error)".contains("FIFO") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["pipe"])
    }
}
