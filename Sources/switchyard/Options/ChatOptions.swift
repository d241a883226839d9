import Foundation
import Switchyard

/// `--chat` (and `--system TEXT`): the prompt becomes a user message rendered through the model's
/// chat template with the generation prompt, as transformers' `apply_chat_template` does.
struct ChatOptions: ParsableArguments {
    @Flag(
        help:
            "Treat the prompt as a user message and apply the model's chat template (tokenizer_config.json, chat_template.jinja or GGUF)."
    )
    var chat: Bool
    @Option(help: "With --chat: a system message first.")
    var system: String?

    func validate() throws {
        guard chat || system == nil else { throw UsageError("--system needs --chat") }
    }

    /// The chat messages for `prompt` (system first, when given).
    func messages(_ prompt: String) -> [ChatTemplate.Message] {
        (system.map { [ChatTemplate.Message(role: "system", content: $0)] } ?? []) + [
            .init(role: "user", content: prompt)
        ]
    }

    /// The prompt's token ids: chat-formatted with `--chat`, else as `PromptFormat` encodes it.
    func encode(_ prompt: String, modelPath: URL, tokenizer: Tokenizer) throws -> [Int] {
        guard chat else { return try PromptFormat.encode(prompt, tokenizer) }
        guard let template = try ChatTemplate.load(model: modelPath) else {
            throw UsageError("--chat: \(modelPath.path) has no chat template")
        }
        return try tokenizer.encodeChecked(
            try template.render(messages: messages(prompt), addGenerationPrompt: true, tokenizer: tokenizer))
    }
}
