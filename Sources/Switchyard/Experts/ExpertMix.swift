/// A weighted set of experts: `[(expert index, weight)]`, the unit a router produces for one token
/// (or one whole request, for sentence-level routing). Indices refer to the adapter list of the
/// `LoRAMixDelta` that applies it.
public struct ExpertMix: Sendable, Equatable, CustomStringConvertible {
    public var entries: [Entry]

    public struct Entry: Sendable, Equatable {
        public var expert: Int
        public var weight: Float
        public init(expert: Int, weight: Float) {
            self.expert = expert
            self.weight = weight
        }
    }

    public init(_ entries: [Entry] = []) { self.entries = entries }

    /// One expert at weight 1.
    public static func single(_ expert: Int) -> ExpertMix { ExpertMix([Entry(expert: expert, weight: 1)]) }
    /// No expert: the base model.
    public static let base = ExpertMix()

    public var description: String {
        entries.isEmpty ? "base" : entries.map { "\($0.expert)=\($0.weight)" }.joined(separator: ",")
    }
}
