import Foundation

/// Locates the generated reference fixtures (see Scripts/fixtures/make_fixtures.py).
enum FixturePaths {
    static var root: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    static func json(_ relative: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url(relative))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// A fresh temporary directory, removed by the caller with `cleanup`.
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Largest absolute difference between two equally long arrays; +∞ where a difference is NaN
/// (a NaN loses every comparison, so `max` alone would pass it over and hide a NaN output).
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in a.indices {
        let d = abs(a[i] - b[i])
        if d.isNaN { return .infinity }
        m = max(m, d)
    }
    return m
}

/// Largest absolute difference between outputs and a Double reference; +∞ where a difference is
/// NaN (as `maxAbsDifference`).
func maxAbsDifference(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var m = 0.0
    for i in a.indices {
        let d = abs(Double(a[i]) - b[i])
        if d.isNaN { return .infinity }
        m = max(m, d)
    }
    return m
}
