import Foundation

extension LlamaModel {
    /// Logits at every position of `tokens` (`[tokens × vocab]`, row i predicts token i+1) under
    /// one routing choice, in a single forward pass with a fresh cache.
    public func scoreLogits(_ tokens: [Int], routing: RequestRouting = .base, workspace: ForwardWorkspace? = nil) throws
        -> Matrix
    {
        guard !tokens.isEmpty else { throw SwitchyardError.invalidArgument("token_ids: empty") }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw SwitchyardError.invalidArgument(
                "token_ids: token id \(bad) is outside the vocabulary (0..<\(config.vocabSize))")
        }
        guard tokens.count <= config.maxPositionEmbeddings else {
            throw SwitchyardError.invalidArgument(
                "token_ids: \(tokens.count) tokens; the model's context (max_position_embeddings) is \(config.maxPositionEmbeddings)"
            )
        }
        let delta = try StepDeltaBuilder().build([.init(routing: routing, firstPosition: 0, count: tokens.count)])
        return try forward(
            [SequenceInput(tokens: tokens, cache: makeCache(initialCapacity: tokens.count))], logits: .all,
            delta: delta, workspace: workspace)[0]
    }

    /// `log p(tokens[i+1] | tokens[0...i])` for every i (one fewer than `tokens`).
    public func scoreLogProbs(_ tokens: [Int], routing: RequestRouting = .base, workspace: ForwardWorkspace? = nil)
        throws -> [Float]
    {
        let logits = try scoreLogits(tokens, routing: routing, workspace: workspace)
        return (0..<(tokens.count - 1)).map { Engine.logSoftmax(logits.row($0), at: tokens[$0 + 1]) }
    }
}
