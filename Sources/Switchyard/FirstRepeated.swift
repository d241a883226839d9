extension Sequence where Element: Hashable {
    /// The first element that already appeared earlier in the sequence; nil when all are distinct.
    /// `["a", "b", "a", "b"].firstRepeated()` is `"a"`.
    public func firstRepeated() -> Element? {
        var seen = Set<Element>()
        return first { !seen.insert($0).inserted }
    }
}
