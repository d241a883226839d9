/// The first index where two float arrays differ bit for bit (or where one ends), nil when they
/// are identical: bitwise kernel checks report one position instead of printing both arrays.
func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
    for i in 0..<Swift.min(a.count, b.count) where a[i].bitPattern != b[i].bitPattern { return i }
    return a.count == b.count ? nil : Swift.min(a.count, b.count)
}
