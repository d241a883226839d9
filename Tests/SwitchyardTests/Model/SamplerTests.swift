import Foundation
import Testing

@testable import Switchyard

@Suite struct SamplerTests {
    @Test func greedyTakesArgmaxWithLowestIndexOnTies() {
        var s = Sampler(.greedy)
        #expect(s.next(logits: [0, 3, 3, 1], context: []) == 1)
    }

    @Test func repetitionPenaltyFollowsTransformers() {
        // Token 0 (logit 2.0) is in context: 2.0 / 2 = 1.0 < 1.5, so token 1 wins.
        var s = Sampler(SamplingParameters(repetitionPenalty: 2))
        #expect(s.next(logits: [2.0, 1.5, -1], context: [0]) == 1)
        // Negative logits are multiplied: -1 * 2 = -2 falls below -1.5.
        var t = Sampler(SamplingParameters(repetitionPenalty: 2))
        #expect(t.next(logits: [-1.0, -1.5], context: [0]) == 1)
    }

    @Test func samplingIsSeededAndRespectsTopK() {
        let logits: [Float] = [1, 1.1, 0.9, 1.05, -5]
        func draw(_ seed: UInt64, topK: Int = 0, topP: Float = 1) -> [Int] {
            var s = Sampler(SamplingParameters(temperature: 1, topK: topK, topP: topP, seed: seed))
            return (0..<200).map { _ in s.next(logits: logits, context: []) }
        }
        #expect(draw(42) == draw(42))
        #expect(draw(42) != draw(43))
        #expect(Set(draw(1, topK: 2)) == [1, 3])
        #expect(Set(draw(1)).count >= 4)
    }

    @Test func topPKeepsTheSmallestSetReachingP() {
        // Probabilities ≈ [0.64, 0.24, 0.09, 0.03]: p = 0.7 keeps the first two.
        let logits: [Float] = [3, 2, 1, 0]
        var s = Sampler(SamplingParameters(temperature: 1, topP: 0.7, seed: 3))
        let seen = Set((0..<300).map { _ in s.next(logits: logits, context: []) })
        #expect(seen == [0, 1])
    }

    /// A temperature so small that logits / temperature overflow to infinity draws the argmax
    /// (its limit), not the lowest id among the infinities.
    @Test func vanishingTemperatureIsGreedy() {
        for t in [Float.leastNonzeroMagnitude, 1e-38] {
            var s = Sampler(SamplingParameters(temperature: t, seed: 1))
            #expect((0..<20).map { _ in s.next(logits: [1, 3, 2, -1], context: []) } == Array(repeating: 1, count: 20))
        }
    }

    @Test func rejectsNonsenseParameters() {
        #expect(throws: SwitchyardError.self) { try SamplingParameters(temperature: -1).validate() }
        #expect(throws: SwitchyardError.self) { try SamplingParameters(topP: 0).validate() }
        #expect(throws: SwitchyardError.self) { try SamplingParameters(repetitionPenalty: 0).validate() }
    }

    /// The draw as it was first written (every logit sorted, then top-k, top-p and the walk):
    /// the lazily ordered sampler must give the same tokens for the same seed. With top-k the
    /// arithmetic is the same, so every draw must match; without it the normaliser is summed in
    /// another order (in double), so a draw may differ only where u lands within rounding of a
    /// boundary.
    @Test func lazyOrderDrawsWhatAFullSortDraws() {
        func reference(_ logits: [Float], _ p: SamplingParameters, _ rng: inout SeededRandom) -> Int {
            let inv = 1 / p.temperature
            var candidates = logits.indices.map { ($0, logits[$0] * inv) }
            candidates.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            if p.topK > 0, p.topK < candidates.count { candidates.removeSubrange(p.topK...) }
            let m = candidates[0].1
            var probs = candidates.map { Foundation.exp($0.1 - m) }
            let total = probs.reduce(0, +)
            for i in probs.indices { probs[i] /= total }
            var keep = probs.count
            if p.topP < 1 {
                var cumulative: Float = 0
                for (i, q) in probs.enumerated() {
                    cumulative += q
                    if cumulative >= p.topP { keep = i + 1; break }
                }
            }
            let kept = probs[0..<keep].reduce(0, +)
            var u = rng.nextUnitFloat() * kept
            for i in 0..<keep {
                u -= probs[i]
                if u < 0 { return candidates[i].0 }
            }
            return candidates[keep - 1].0
        }
        var data = SeededRandom(seed: 8)
        // A vocabulary with ties (logits rounded to 0.25) for top-k: the same arithmetic, every draw.
        let tied = (0..<2000).map { _ in (data.nextUnitFloat() * 12).rounded() / 4 - 1 }
        // Logits spread as a model's are (most of the mass on a few ids) for the full vocabulary.
        let spread = (0..<2000).map { _ in Foundation.pow(data.nextUnitFloat(), 3) * 14 - 2 }
        let cases: [([Float], Float, Int, Float)] = [
            (tied, 1, 40, 1), (tied, 0.7, 50, 0.9), (tied, 1.3, 400, 0.5),
            (spread, 1, 0, 1), (spread, 0.8, 0, 0.95), (spread, 1.2, 0, 0.5)
        ]
        for (logits, t, k, topP) in cases {
            let p = SamplingParameters(temperature: t, topK: k, topP: topP, seed: 77)
            var sampler = Sampler(p)
            var rng = SeededRandom(seed: 77)
            let got = (0..<400).map { _ in sampler.next(logits: logits, context: []) }
            let expected = (0..<400).map { _ in reference(logits, p, &rng) }
            let same = zip(got, expected).filter { $0 == $1 }.count
            // Where they differ, the two ids must be neighbours in the order (u within rounding
            // of the boundary between them).
            let rank = Dictionary(
                uniqueKeysWithValues: logits.indices.sorted {
                    logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1
                }
                .enumerated().map { ($1, $0) })
            let far = zip(got, expected).filter { abs(rank[$0]! - rank[$1]!) > 1 }
            #expect(
                k > 0 ? same == 400 : same >= 390 && far.isEmpty,
                "t \(t) top-k \(k) top-p \(topP): \(same)/400 equal, not neighbours: \(far)")
        }
        // Ties go to the lower id: of four equal logits, top-k 2 keeps ids 0 and 1.
        var s = Sampler(SamplingParameters(temperature: 1, topK: 2, seed: 5))
        #expect(Set((0..<200).map { _ in s.next(logits: [1, 1, 1, 1, 0], context: []) }) == [0, 1])
    }

    /// `LogitOrder` pops every id in the order of a full sort (descending, ties to the lower id),
    /// through its second heap too: values spread over 100 (most far beyond its gap of 16), ties,
    /// −∞; a row whose largest value is +∞.
    @Test func logitOrderIsAFullSort() {
        var rng = SeededRandom(seed: 21)
        let rows: [[Float]] = [
            (0..<3000).map { _ in (rng.nextUnitFloat() * 100).rounded() - 90 } + [-.infinity, 10, 10],
            [1, .infinity, 3, .infinity, -.infinity],
            [5]
        ]
        for values in rows {
            let expected = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
            let got = values.withUnsafeBufferPointer { p -> [Int] in
                var order = LogitOrder(p)
                var ids: [Int] = []
                while let id = order.pop() { ids.append(id) }
                return ids
            }
            #expect(got == expected, "\(values.count) values")
        }
    }

    /// Over the whole vocabulary (no top-k), the draws follow the softmax: frequencies of 40,000
    /// draws within 0.01 of each probability, and with top-p 0.8 the smallest prefix reaching it,
    /// renormalised.
    @Test func drawsFollowTheSoftmax() {
        let logits: [Float] = [2, 1, 0.5, 0, -1, -3]
        let e = logits.map { Foundation.exp(Double($0)) }, z = e.reduce(0, +)
        let probabilities = e.map { $0 / z }
        for topP: Float in [1, 0.8] {
            var s = Sampler(SamplingParameters(temperature: 1, topP: topP, seed: 9))
            var counts = [Int](repeating: 0, count: logits.count)
            for _ in 0..<40000 { counts[s.next(logits: logits, context: [])] += 1 }
            var want = probabilities
            if topP < 1 {
                // The smallest prefix whose mass reaches p, renormalised.
                var cumulative = 0.0, keep = 0
                while cumulative < Double(topP) { cumulative += probabilities[keep]; keep += 1 }
                want = probabilities.indices.map { $0 < keep ? probabilities[$0] / cumulative : 0 }
            }
            for (i, c) in counts.enumerated() {
                #expect(
                    abs(Double(c) / 40000 - want[i]) <= 0.01, "top-p \(topP), id \(i): \(c) of 40000, want \(want[i])")
            }
        }
    }
}
