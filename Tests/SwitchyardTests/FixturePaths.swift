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

/// Largest absolute difference between outputs and a reference of the same length, in the
/// reference's precision (Float or Double); +∞ where a difference is NaN (a NaN loses every
/// comparison, so `max` alone would pass it over and hide a NaN output).
func maxAbsDifference<T: BinaryFloatingPoint>(_ a: [Float], _ b: [T]) -> T {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var m: T = 0
    for i in a.indices {
        let d = abs(T(a[i]) - b[i])
        if d.isNaN { return .infinity }
        m = max(m, d)
    }
    return m
}
