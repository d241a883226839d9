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

    @Test func rejectsNonsenseParameters() {
        #expect(throws: SwitchyardError.self) { try SamplingParameters(temperature: -1).validate() }
        #expect(throws: SwitchyardError.self) { try SamplingParameters(topP: 0).validate() }
        #expect(throws: SwitchyardError.self) { try SamplingParameters(repetitionPenalty: 0).validate() }
    }
}
