/// Routing decisions recorded during a run (for `switchyard route --trace` and heatmaps).
public final class RoutingTrace: @unchecked Sendable {
    /// One decision: the token at `position` of the request, at decoder `layer` (nil: the whole
    /// request / every layer), got `mix` (indices into the router's experts).
    public struct Decision: Sendable, Equatable {
        public var position: Int
        public var layer: Int?
        public var mix: ExpertMix
    }

    /// One rank-level (SMoRA) decision: at the projection `site`, the token at `position` ran the
    /// ranks `ranks` (highest gate score first) with activation values `values`.
    public struct RankDecision: Sendable, Equatable {
        public var position: Int
        public var site: ProjectionSite
        public var ranks: [Int]
        public var values: [Float]
    }

    public private(set) var decisions: [Decision] = []
    public private(set) var rankDecisions: [RankDecision] = []
    public init() {}

    func record(position: Int, layer: Int?, mix: ExpertMix) {
        decisions.append(Decision(position: position, layer: layer, mix: mix))
    }

    func record(position: Int, site: ProjectionSite, ranks: [Int], values: [Float]) {
        rankDecisions.append(RankDecision(position: position, site: site, ranks: ranks, values: values))
    }
}
