import Foundation

/// COBYLA (Powell 1994, "A direct search optimization method that models the objective and
/// constraint functions by linear interpolation") for a box: the deterministic trust-region method
/// that nevergrad's `NGOpt` picks for LoraHub (8 weights, budget 40).
///
/// It keeps a simplex of n + 1 evaluated points, the best one as the pole. The linear function
/// interpolating the simplex is the model; each iteration moves from the pole to the minimum of
/// the model within the trust-region radius ρ and the box (a step to the ball's edge along the
/// projected steepest descent). The new point replaces the vertex whose removal keeps the simplex
/// best shaped. When the simplex has become flat or too long for ρ, a vertex is moved by ρ/2 to
/// repair it; when steps stop paying, ρ halves. The control flow, constants (α = 1/4, β = 2.1,
/// γ = 1/2, δ = 1.1) and tie-breaking follow Powell's `cobylb` with no nonlinear constraints;
/// the bounds are linear constraints, so its LP subproblem is solved exactly here and every point
/// evaluated lies in the box. When ρ reaches `finalRadius` before the budget is spent, the search
/// restarts from the best point with `initialRadius` (as nevergrad restarts scipy's COBYLA), so
/// exactly `budget` evaluations are made.
public struct Cobyla: Sendable {
    /// Number of variables (the length of `start`).
    public var dimension: Int
    /// ρ at the start: the initial simplex's edge and the first steps' length.
    public var initialRadius: Float
    /// The smallest ρ; reaching it restarts the search.
    public var finalRadius: Float
    /// The box every coordinate stays in (default unbounded); every evaluated point lies inside it.
    public var bounds: ClosedRange<Float>

    /// An optimiser over `dimension` variables; defaults ρ 0.5 → 1e-6 and no bounds.
    public init(
        dimension: Int, initialRadius: Float = 0.5, finalRadius: Float = 1e-6,
        bounds: ClosedRange<Float> = -Float.infinity...Float.infinity
    ) {
        self.dimension = dimension
        self.initialRadius = initialRadius
        self.finalRadius = finalRadius
        self.bounds = bounds
    }

    /// Minimises `objective` from `start` (clipped into the bounds) with exactly `budget` evaluations,
    /// calling `onEvaluation(evaluations, best)` after each.
    public func minimize(
        start: [Float], budget: Int, objective: ([Float]) throws -> Float,
        onEvaluation: ((Int, Float) -> Void)? = nil
    ) rethrows -> OptimizationResult {
        var ledger = EvaluationLedger(budget: budget, onEvaluation: onEvaluation)
        try minimize(start: start, ledger: &ledger, objective: objective)
        return ledger.result
    }

    /// Minimises from `start` until `ledger`'s budget is spent, recording into it (a ledger that
    /// already holds evaluations is continued: its best is a restart point, its count the budget spent).
    func minimize(start: [Float], ledger: inout EvaluationLedger, objective: ([Float]) throws -> Float) rethrows {
        precondition(start.count == dimension, "start has \(start.count) values, dimension is \(dimension)")
        precondition(
            initialRadius > 0 && finalRadius > 0 && finalRadius <= initialRadius,
            "radii must satisfy 0 < final ≤ initial")
        var search = Search(
            n: dimension, lower: Double(bounds.lowerBound), upper: Double(bounds.upperBound),
            rhoBegin: Double(initialRadius), rhoEnd: Double(finalRadius))
        var from = start.map { Double(min(max($0, bounds.lowerBound), bounds.upperBound)) }
        while !ledger.exhausted {
            try search.run(from: from, ledger: &ledger, objective: objective)
            from = ledger.best.map(Double.init)
        }
    }

    /// One COBYLA run from a point until ρ reaches its end or the budget is spent.
    struct Search {
        let n: Int
        let lower: Double, upper: Double
        let rhoBegin: Double, rhoEnd: Double
        // Powell's constants: simplex acceptability (α, β), geometry step (γ), edge limit (δ).
        let alpha = 0.25, beta = 2.1, gamma = 0.5, delta = 1.1
        /// The best vertex, its value, and the other vertices as displacements from it (`sim`).
        var pole: [Double] = [], fPole = 0.0
        var sim: [[Double]] = [], fSim: [Double] = []

        init(n: Int, lower: Double, upper: Double, rhoBegin: Double, rhoEnd: Double) {
            self.n = n; self.lower = lower; self.upper = upper; self.rhoBegin = rhoBegin; self.rhoEnd = rhoEnd
        }

        func clip(_ x: [Double]) -> [Double] { x.map { min(max($0, lower), upper) } }

        mutating func run(from start: [Double], ledger: inout EvaluationLedger, objective: ([Float]) throws -> Float)
            rethrows
        {
            func f(_ x: [Double]) throws -> Double { Double(try ledger.evaluate(x.map { Float($0) }, objective)) }
            var rho = rhoBegin
            // The initial simplex: the start, then a step of ρ along each axis from the best point
            // so far (towards the side with room when the upper bound is near).
            pole = clip(start)
            fPole = try f(pole)
            sim = []; fSim = []
            for j in 0..<n {
                if ledger.exhausted { return }
                let step =
                    pole[j] + rho <= upper
                    ? rho
                    : (pole[j] - rho >= lower
                        ? -rho : (upper - pole[j] >= pole[j] - lower ? upper - pole[j] : lower - pole[j]))
                var x = pole
                x[j] += step
                let value = try f(x)
                var d = [Double](repeating: 0, count: n)
                if value < fPole {
                    // The new point becomes the pole; the old pole is −step along axis j from it.
                    for k in 0..<j { sim[k][j] -= step }
                    d[j] = -step
                    sim.append(d); fSim.append(fPole)
                    pole = x; fPole = value
                } else {
                    d[j] = step
                    sim.append(d); fSim.append(value)
                }
            }
            var branch = true  // Powell's IBRNCH: false only after a failed step from an unacceptable simplex.
            while !ledger.exhausted {
                // The best vertex becomes the pole.
                if let (nbest, _) = fSim.enumerated().filter({ $0.element < fPole }).min(by: { $0.element < $1.element }
                ) {
                    let shift = sim[nbest]
                    for k in 0..<n { pole[k] += shift[k] }
                    for j in 0..<n where j != nbest { for k in 0..<n { sim[j][k] -= shift[k] } }
                    sim[nbest] = shift.map { -$0 }
                    swap(&fPole, &fSim[nbest])
                }
                // A degenerate simplex: restart around the best point.
                guard let simi = Self.inverse(sim, n: n) else { return }
                // The model's gradient: g = simiᵀ · (f(vertex) − f(pole)).
                var g = [Double](repeating: 0, count: n)
                for j in 0..<n { for i in 0..<n { g[i] += (fSim[j] - fPole) * simi[j][i] } }
                let parsig = alpha * rho, pareta = beta * rho
                let vsig = simi.map { 1 / $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
                let veta = sim.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
                let acceptable = (0..<n).allSatisfy { vsig[$0] >= parsig && veta[$0] <= pareta }

                var reduce = true
                if !branch && !acceptable {
                    // Geometry step: move the vertex that is too far, else the one closest to the
                    // opposite face, by γρ normal to that face, on the side the model prefers.
                    var jdrop = veta.indices.filter { veta[$0] > pareta }.max { veta[$0] < veta[$1] }
                    if jdrop == nil { jdrop = vsig.indices.min { vsig[$0] < vsig[$1] } }
                    let j = jdrop!
                    let t = gamma * rho * vsig[j]
                    var dx = simi[j].map { t * $0 }
                    if zip(g, dx).reduce(0, { $0 + $1.0 * $1.1 }) > 0 { dx = dx.map { -$0 } }
                    dx = feasibleGeometryStep(dx, row: simi[j])
                    let value = try f(zip(pole, dx).map(+))
                    sim[j] = dx; fSim[j] = value
                    branch = true
                    continue
                }
                // Trust-region step: the model's minimum within ρ and the box.
                let dx = trustRegionStep(g, rho: rho)
                if dx.reduce(0, { $0 + $1 * $1 }) >= 0.25 * rho * rho {
                    let predicted = -zip(g, dx).reduce(0) { $0 + $1.0 * $1.1 }
                    let value = try f(zip(pole, dx).map(+))
                    let actual = fPole - value
                    // The vertex to replace: mandatory when the point improves on the pole.
                    var ratio = actual <= 0 ? 1.0 : 0.0
                    var jdrop: Int? = nil
                    var sigbar = [Double](repeating: 0, count: n)
                    for j in 0..<n {
                        let t = abs(zip(simi[j], dx).reduce(0) { $0 + $1.0 * $1.1 })
                        if t > ratio { jdrop = j; ratio = t }
                        sigbar[j] = t * vsig[j]
                    }
                    var edgmax = delta * rho
                    for j in 0..<n where sigbar[j] >= parsig || sigbar[j] >= vsig[j] {
                        let t =
                            actual > 0
                            ? zip(dx, sim[j]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() : veta[j]
                        if t > edgmax { jdrop = j; edgmax = t }
                    }
                    if let j = jdrop {
                        sim[j] = dx; fSim[j] = value
                        if actual > 0 && actual >= 0.1 * predicted { reduce = false }
                    }
                }
                branch = true
                guard reduce else { continue }
                if !acceptable { branch = false; continue }
                guard rho > rhoEnd else { return }
                rho *= 0.5
                if rho <= 1.5 * rhoEnd { rho = rhoEnd }
            }
        }

        /// The minimiser of `g·d` over `|d| ≤ ρ` and `lower ≤ pole + d ≤ upper`:
        /// `d_i = clamp(−λ·g_i)` with the largest λ that keeps `|d| ≤ ρ` (the KKT conditions of
        /// this convex problem), found by bisection.
        func trustRegionStep(_ g: [Double], rho: Double) -> [Double] {
            func step(_ lambda: Double) -> [Double] {
                (0..<n).map { i in
                    let d =
                        lambda.isInfinite
                        ? (g[i] > 0 ? -Double.infinity : (g[i] < 0 ? Double.infinity : 0)) : -lambda * g[i]
                    return min(max(d, lower - pole[i]), upper - pole[i])
                }
            }
            func length(_ d: [Double]) -> Double { d.reduce(0) { $0 + $1 * $1 }.squareRoot() }
            let gNorm = length(g)
            guard gNorm > 0 else { return [Double](repeating: 0, count: n) }
            let far = step(.infinity)
            if length(far) <= rho { return far }
            var lo = 0.0, hi = rho / gNorm
            while length(step(hi)) < rho { lo = hi; hi *= 2 }
            for _ in 0..<100 {
                let mid = 0.5 * (lo + hi)
                if length(step(mid)) < rho { lo = mid } else { hi = mid }
            }
            return step(hi).map { $0 * min(1, rho / max(length(step(hi)), .leastNonzeroMagnitude)) }
        }

        /// A geometry step that stays in the box: `dx`, else `−dx`, else whichever clipped one
        /// keeps the simplex least flat (the larger |row·d|).
        func feasibleGeometryStep(_ dx: [Double], row: [Double]) -> [Double] {
            let minus = dx.map { -$0 }
            for d in [dx, minus] where zip(pole, d).allSatisfy({ $0 + $1 >= lower && $0 + $1 <= upper }) { return d }
            let clipped = [dx, minus].map { d in zip(pole, d).map { min(max($0 + $1, lower), upper) - $0 } }
            func weight(_ d: [Double]) -> Double { abs(zip(row, d).reduce(0) { $0 + $1.0 * $1.1 }) }
            return weight(clipped[0]) >= weight(clipped[1]) ? clipped[0] : clipped[1]
        }

        /// `simi` with `simi[j]·sim[k] = δ_jk` (rows of the inverse of the matrix whose columns are
        /// the displacements), by Gauss–Jordan elimination with partial pivoting; nil when singular.
        static func inverse(_ sim: [[Double]], n: Int) -> [[Double]]? {
            // m = the matrix with sim[k] as column k, augmented by the identity.
            var m = (0..<n).map { i in (0..<n).map { k in sim[k][i] } + (0..<n).map { $0 == i ? 1.0 : 0.0 } }
            let scale = sim.map { $0.map(abs).max() ?? 0 }.max() ?? 0
            for c in 0..<n {
                let p = (c..<n).max { abs(m[$0][c]) < abs(m[$1][c]) }!
                guard abs(m[p][c]) > 1e-12 * max(scale, 1e-300) else { return nil }
                m.swapAt(c, p)
                let pivot = m[c][c]
                m[c] = m[c].map { $0 / pivot }
                for r in 0..<n where r != c && m[r][c] != 0 {
                    let factor = m[r][c]
                    for k in 0..<(2 * n) { m[r][k] -= factor * m[c][k] }
                }
            }
            return m.map { Array($0[n...]) }
        }
    }
}
