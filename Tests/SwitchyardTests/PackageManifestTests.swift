import Foundation
import Testing

/// Issue 13: `-Ounchecked` on the whole library turned every missed check into memory corruption
/// (with a network server in front), and `unsafeFlags` (that, and the C kernels' `-O3`) made the
/// package unusable as a versioned dependency. The manifest must set neither.
@Suite struct PackageManifestTests {
    @Test func noUnsafeFlagsAndNoUncheckedBuilds() throws {
        let manifest = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Package.swift")
        let code = try String(contentsOf: manifest, encoding: .utf8)
            .split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }.joined(
                separator: "\n")
        #expect(code.contains(".target("), "not the package manifest: \(manifest.path)")
        #expect(!code.contains("unsafeFlags"))
        #expect(!code.contains("Ounchecked"))
    }
}
