/// A weighted set of experts: `[(expert index, weight)]`, the unit a router produces for one token
/// (or one whole request, for sentence-level routing). Indices refer to the adapter list of the
/// `LoRAMixDelta` that applies it.
public struct ExpertMix: Sendable, Equatable, CustomStringConvertible {
    /// The experts and their weights, in order.
    public var entries: [Entry]

    /// One expert of a mix.
    public struct Entry: Sendable, Equatable {
        /// Index of the expert in the request's expert list.
        public var expert: Int
        /// Its weight: the update added is weight · scale · B·A.
        public var weight: Float
        /// An entry for expert index `expert` with `weight`.
        public init(expert: Int, weight: Float) {
            self.expert = expert
            self.weight = weight
        }
    }

    /// A mix of `entries` (empty: the base model).
    public init(_ entries: [Entry] = []) { self.entries = entries }

    /// One expert at weight 1.
    public static func single(_ expert: Int) -> ExpertMix { ExpertMix([Entry(expert: expert, weight: 1)]) }
    /// No expert: the base model.
    public static let base = ExpertMix()

    /// `expert:weight` pairs, for logs and traces.
    public var description: String {
        entries.isEmpty ? "base" : entries.map { "\($0.expert)=\($0.weight)" }.joined(separator: ",")
    }
}
