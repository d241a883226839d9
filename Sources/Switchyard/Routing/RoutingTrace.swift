/// Routing decisions recorded during a run (for `switchyard route --trace` and heatmaps).
public final class RoutingTrace: @unchecked Sendable {
    /// One decision: the token at `position` of the request, at decoder `layer` (nil: the whole
    /// request / every layer), got `mix` (indices into the router's experts).
    public struct Decision: Sendable, Equatable {
        public var position: Int
        public var layer: Int?
        public var mix: ExpertMix
    }

    public private(set) var decisions: [Decision] = []
    public init() {}

    func record(position: Int, layer: Int?, mix: ExpertMix) {
        decisions.append(Decision(position: position, layer: layer, mix: mix))
    }
}
