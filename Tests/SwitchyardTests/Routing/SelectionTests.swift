import Testing

@testable import Switchyard

@Suite struct SelectionTests {
    // softmax([2, 1, 0, 1]) ≈ [0.5344, 0.1966, 0.0723, 0.1966]
    let scores: [Float] = [2, 1, 0, 1]

    @Test func topKBreaksTiesByLowerIndexAndRenormalises() {
        let mix = Selection(mode: .topK, topK: 2).select(scores)
        #expect(mix.entries.map(\.expert) == [0, 1])
        #expect(abs(mix.entries[0].weight - 0.5344 / (0.5344 + 0.1966)) < 1e-3)
        #expect(abs(mix.entries.map(\.weight).reduce(0, +) - 1) < 1e-6)
    }

    @Test func topPTakesTheSmallestPrefixReachingP() {
        #expect(Selection(mode: .topP, topP: 0.4).select(scores).entries.map(\.expert) == [0])
        #expect(Selection(mode: .topP, topP: 0.6).select(scores).entries.map(\.expert) == [0, 1])
        #expect(Selection(mode: .topP, topP: 0.8).select(scores).entries.map(\.expert) == [0, 1, 3])
        #expect(Selection(mode: .topP, topP: 1).select(scores).entries.count == 4)
    }

    @Test func thresholdKeepsAtLeastTheBest() {
        #expect(Selection(mode: .threshold, threshold: 0.15).select(scores).entries.map(\.expert) == [0, 1, 3])
        #expect(Selection(mode: .threshold, threshold: 0.9).select(scores).entries.map(\.expert) == [0])
    }

    @Test func denseKeepsProbabilitiesAndTemperatureSharpens() {
        let dense = Selection(mode: .dense).select(scores)
        #expect(dense.entries.count == 4 && abs(dense.entries[2].weight - 0.0723) < 1e-3)
        let sharp = Selection(mode: .dense, temperature: 0.1).select(scores)
        #expect(sharp.entries[0].weight > 0.99)
    }

    @Test func expertMapTranslatesLocalIndices() {
        let mix = Selection(mode: .topK, topK: 1).select([0, 3], expertMap: [4, 7])
        #expect(mix == .single(7))
    }
}
