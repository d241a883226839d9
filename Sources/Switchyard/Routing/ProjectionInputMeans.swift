/// A `ProjectionDelta` that changes nothing and records, for every projection it is shown, the
/// mean of its input over the rows of the forward pass: a base pass with it over a prompt gives a
/// rank gate with PROMPT_ROUTING_WHOLE the feature it scores for the whole prompt. One forward
/// pass (of one sequence) per recorder; not thread-safe.
final class ProjectionInputMeans: ProjectionDelta {
    /// Per projection, the mean input `[inFeatures]` over the pass's rows.
    private(set) var means: [ProjectionSite: [Float]] = [:]
    /// Only these projections are recorded.
    let sites: Set<ProjectionSite>

    init(sites: Set<ProjectionSite>) { self.sites = sites }

    func beginLayer(_ layer: Int, hidden: UnsafePointer<Float>, rows: Int, width: Int) {}

    func addDelta(
        at site: ProjectionSite, input: UnsafePointer<Float>, inFeatures: Int,
        output: UnsafeMutablePointer<Float>, outFeatures: Int, rows: Int
    ) {
        guard sites.contains(site), rows > 0 else { return }
        var sum = [Float](repeating: 0, count: inFeatures)
        for r in 0..<rows {
            let x = input + r * inFeatures
            for j in 0..<inFeatures { sum[j] += x[j] }
        }
        let n = Float(rows)
        means[site] = sum.map { $0 / n }
    }
}
