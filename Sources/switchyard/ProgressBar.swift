import Foundation

/// A one-line progress bar on standard error, drawn only when stderr is a terminal (so logs and
/// CI output stay clean).
struct ProgressBar {
    let total: Int
    let label: String
    private let enabled = isatty(2) != 0
    private var lastDrawn = -1

    init(total: Int, label: String) {
        self.total = max(total, 1)
        self.label = label
    }

    mutating func update(_ done: Int, suffix: String = "") {
        guard enabled else { return }
        let width = 30
        let filled = min(width, done * width / total)
        guard filled != lastDrawn || done == total || !suffix.isEmpty else { return }
        lastDrawn = filled
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write("\r\(label) [\(bar)] \(done)/\(total) \(suffix)".data(using: .utf8)!)
        if done >= total { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }
}
