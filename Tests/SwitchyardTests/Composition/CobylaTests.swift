import Foundation
import Testing

@testable import Switchyard

@Suite struct CobylaTests {
    static func quadratic(_ target: [Float]) -> ([Float]) -> Float {
        { x in zip(x, target).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
    }

    @Test func minimisesAShiftedQuadraticWithExactlyTheBudget() {
        let target: [Float] = [0.7, -1.1, 0.3, 1.2, -0.4]
        var calls = 0
        let result = Cobyla(dimension: 5, initialRadius: 0.5).minimize(
            start: [Float](repeating: 0, count: 5), budget: 300
        ) { x in
            calls += 1
            return Self.quadratic(target)(x)
        }
        #expect(result.bestValue < 1e-6, "best \(result.bestValue) at \(result.best)")
        #expect(calls == 300 && result.evaluations == 300 && result.history.count == 300)
        #expect(result.history == result.history.sorted(by: >), "best-so-far never increases")
        #expect(result.bestValue == Self.quadratic(target)(result.best))
    }

    @Test func followsRosenbrocksValley() {
        // 2-D Rosenbrock from (−1.2, 1): a curved valley a linear model must follow step by step.
        func rosenbrock(_ x: [Float]) -> Float {
            100 * (x[1] - x[0] * x[0]) * (x[1] - x[0] * x[0]) + (1 - x[0]) * (1 - x[0])
        }
        // (A linear-model method is slow here: scipy's COBYLA reaches 2e-5 after 5000 evaluations.)
        let result = Cobyla(dimension: 2, initialRadius: 0.5, bounds: -1.5...1.5).minimize(
            start: [-1.2, 1], budget: 5000, objective: rosenbrock)
        #expect(result.bestValue < 1e-2, "best \(result.bestValue) at \(result.best)")
        #expect(abs(result.best[0] - 1) < 0.1 && abs(result.best[1] - 1) < 0.2)
    }

    @Test func respectsBoundsAndStopsOnThem() {
        var outside = 0
        let bounded = Cobyla(dimension: 3, bounds: -1.5...1.5).minimize(start: [0, 0, 0], budget: 120) { x in
            if x.contains(where: { abs($0) > 1.5 }) { outside += 1 }
            return Self.quadratic([3, 0.2, -4])(x)
        }
        #expect(outside == 0, "every evaluated point lies in the box")
        #expect(bounded.best[0] == 1.5 && bounded.best[2] == -1.5, "active bounds are reached exactly: \(bounded.best)")
        #expect(abs(bounded.best[1] - 0.2) < 1e-3)
        // A start outside the box is clipped into it.
        let clipped = Cobyla(dimension: 1, bounds: -1...1).minimize(start: [5], budget: 30) { x in abs(x[0] - 3) }
        #expect(clipped.best == [1])
    }

    @Test func isDeterministicAndRestartsToSpendTheBudget() {
        let f = Self.quadratic([0.25, -0.5])
        let a = Cobyla(dimension: 2, finalRadius: 1e-2).minimize(start: [0, 0], budget: 200, objective: f)
        let b = Cobyla(dimension: 2, finalRadius: 1e-2).minimize(start: [0, 0], budget: 200, objective: f)
        #expect(a == b)
        #expect(
            a.evaluations == 200, "a coarse final radius converges early; the search restarts until the budget is spent"
        )
        #expect(a.bestValue < 1e-4)
        // A budget smaller than the initial simplex still returns the best point evaluated.
        let tiny = Cobyla(dimension: 4).minimize(
            start: [0, 0, 0, 0], budget: 3, objective: Self.quadratic([1, 1, 1, 1]))
        #expect(tiny.evaluations == 3 && tiny.best == [0.5, 0.5, 0, 0])
    }
}
