import Foundation
import Testing

/// Issue 13: BLAS, LAPACK and the C kernels are called from `Sources/Switchyard/Tensor/` only, so
/// the rest of the library is plain Swift over `BLAS`, `ThinSVD`, `AttentionKernel` and friends,
/// and a port (or a portable build) has one folder to look at.
@Suite struct CEdgeTests {
    @Test func onlyTensorImportsTheCModules() throws {
        let library = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Switchyard")
        let files = try #require(FileManager.default.enumerator(at: library, includingPropertiesForKeys: nil))
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        #expect(files.count > 20, "not the library's sources: \(library.path)")
        var offenders: [String] = []
        for file in files where !file.path.contains("/Sources/Switchyard/Tensor/") {
            let text = try String(contentsOf: file, encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.trimmingCharacters(in: .whitespaces)
                if code.hasPrefix("import CKernels") || code.hasPrefix("import CBLAS") {
                    offenders.append("\(file.lastPathComponent):\(n + 1): \(code)")
                }
            }
        }
        #expect(offenders.isEmpty, "C modules imported outside Tensor/: \(offenders)")
    }
}
