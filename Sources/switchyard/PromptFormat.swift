import Foundation
import Switchyard

/// How prompts become token ids everywhere in the CLI: the tokenizer's own post-processor
/// (which prepends BOS when the tokenizer.json template says so).
enum PromptFormat {
    static func encode(_ text: String, _ tokenizer: Tokenizer) throws -> [Int] {
        try tokenizer.encodeChecked(text, addSpecialTokens: true)
    }
}
