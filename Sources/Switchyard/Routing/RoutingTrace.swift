/// Routing decisions recorded during a run (for `switchyard route --trace` and heatmaps).
public final class RoutingTrace: @unchecked Sendable {
    /// One decision: the token at `position` of the request, at decoder `layer` (nil: the whole
    /// request / every layer), got `mix` (indices into the router's experts).
    public struct Decision: Sendable, Equatable {
        /// 0-based token position in the request (prompt first, then generated tokens).
        public var position: Int
        /// Decoder layer, 0-based; nil for a whole-request or all-layer decision.
        public var layer: Int?
        /// The selected experts and their renormalised weights.
        public var mix: ExpertMix
    }

    /// One rank-level (SMoRA) decision: at the projection `site`, the token at `position` ran the
    /// ranks `ranks` (highest gate score first) with activation values `values`.
    public struct RankDecision: Sendable, Equatable {
        /// 0-based token position in the request.
        public var position: Int
        /// The projection whose ranks were chosen.
        public var site: ProjectionSite
        /// Indices of the selected ranks, highest gate score first.
        public var ranks: [Int]
        /// The activation value of each of `ranks`, in the same order.
        public var values: [Float]
    }

    /// Expert-mix decisions in the order they were made.
    public private(set) var decisions: [Decision] = []
    /// Rank-level (SMoRA) decisions in the order they were made.
    public private(set) var rankDecisions: [RankDecision] = []
    /// An empty trace; pass it to a run to record that run's decisions.
    public init() {}

    func record(position: Int, layer: Int?, mix: ExpertMix) {
        decisions.append(Decision(position: position, layer: layer, mix: mix))
    }

    func record(position: Int, site: ProjectionSite, ranks: [Int], values: [Float]) {
        rankDecisions.append(RankDecision(position: position, site: site, ranks: ranks, values: values))
    }
}
