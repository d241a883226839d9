import Foundation
import Switchyard

/// The hand-written form of `ChatOptions`, for commands not yet declared through `Command`.
enum ChatPrompt {
    static let switches: Set<String> = ["chat"]
    static let valued: Set<String> = ["system"]
    static let help = """
      --chat                    Treat the prompt as a user message and apply the model's chat
                                template (tokenizer_config.json, chat_template.jinja or GGUF).
      --system TEXT             With --chat: a system message first.
    """

    static func encode(_ prompt: String, args: ParsedArguments, modelPath: URL, tokenizer: Tokenizer) throws -> [Int] {
        guard args.flag("chat") else {
            guard args.string("system") == nil else { throw UsageError("--system needs --chat") }
            return try PromptFormat.encode(prompt, tokenizer)
        }
        guard let template = try ChatTemplate.load(model: modelPath) else {
            throw UsageError("--chat: \(modelPath.path) has no chat template")
        }
        var messages: [ChatTemplate.Message] = []
        if let system = args.string("system") { messages.append(.init(role: "system", content: system)) }
        messages.append(.init(role: "user", content: prompt))
        return try tokenizer.encodeChecked(try template.render(messages: messages, addGenerationPrompt: true, tokenizer: tokenizer))
    }
}
