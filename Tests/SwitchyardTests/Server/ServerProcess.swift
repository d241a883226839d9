import Foundation
import Switchyard

@testable import SwitchyardServer

/// `switchyard serve` in a child process on an ephemeral loopback port, for what must be measured
/// apart from the test process: its resident memory. The test process runs other suites beside
/// the one measuring (loading models, freeing them; glibc keeps freed pages resident), so its own
/// RSS says little about the server's; the child's says only what the server holds.
final class ServerProcess {
    let process: Process
    /// `127.0.0.1:PORT`, read from the server's `listening on` line.
    let address: String
    private let stderrText: LockedText

    /// Starts `switchyard serve --listen 127.0.0.1:0 <arguments>` and waits (up to `timeout`
    /// seconds) for it to print where it listens. Throws with the server's stderr when it exits
    /// first or stays silent.
    init(arguments: [String], timeout: Double = 120) throws {
        process = Process()
        process.executableURL = try Self.binary()
        process.arguments = ["serve", "--listen", "127.0.0.1:0"] + arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let text = LockedText()
        stderrText = text
        // Drained for the process's whole life, so a chatty server never blocks on a full pipe.
        err.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil } else { text.append(data) }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        var found: String?
        while found == nil && Date() < deadline && process.isRunning {
            found = Self.listeningAddress(in: text.value)
            if found == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        found = found ?? Self.listeningAddress(in: text.value)
        guard let found else {
            if process.isRunning { process.interrupt() }
            process.waitUntilExit()
            throw ServerProcessError.didNotStart(text.value)
        }
        address = found
    }

    /// The child's resident set size (`VmRSS`), in bytes.
    func residentBytes() throws -> Int {
        guard let bytes = ResidentMemory.bytes(processID: process.processIdentifier) else {
            throw ServerProcessError.noResidentSize(process.processIdentifier)
        }
        return bytes
    }

    func client(timeout: Double? = 60) -> SwitchyardClient {
        SwitchyardClient(target: address, timeout: timeout)
    }

    /// SIGINT (the server's graceful stop), then waits for it to exit; returns its exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.interrupt() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// What the server has written to standard error so far.
    var stderr: String { stderrText.value }

    private static func listeningAddress(in text: String) -> String? {
        guard let range = text.range(of: "listening on 127.0.0.1:") else { return nil }
        let port = text[range.upperBound...].prefix { $0.isNumber }
        return port.isEmpty ? nil : "127.0.0.1:\(port)"
    }

    /// The `switchyard` binary SwiftPM builds beside the test bundle (the CLI test target depends
    /// on it, so `swift test` always builds it).
    private static func binary() throws -> URL {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let directories =
            [Bundle.main.executableURL, Bundle.main.bundleURL].compactMap { $0?.deletingLastPathComponent() }
            + [packageRoot.appendingPathComponent(".build/debug")]
        let candidates = directories.map { $0.appendingPathComponent("switchyard") }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw ServerProcessError.noBinary(candidates.map(\.path))
        }
        return found
    }
}

enum ServerProcessError: Error, CustomStringConvertible {
    case noBinary([String])
    case didNotStart(String)
    case noResidentSize(Int32)

    var description: String {
        switch self {
        case .noBinary(let paths): return "no switchyard binary at \(paths.joined(separator: ", ")) (run swift build)"
        case .didNotStart(let stderr): return "switchyard serve did not report 'listening on'; its stderr:\n\(stderr)"
        case .noResidentSize(let pid): return "no VmRSS line in /proc/\(pid)/status"
        }
    }
}

/// Text appended from one thread (a pipe's readability handler) and read from another.
private final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ more: Data) { lock.withLock { data.append(more) } }
    var value: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
