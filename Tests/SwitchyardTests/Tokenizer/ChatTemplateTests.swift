import Foundation
import Testing

@testable import Switchyard

/// Chat templates against transformers' `apply_chat_template` (Scripts/fixtures/gguf_fixtures.py).
@Suite struct ChatTemplateTests {
    @Test func rendersLikeTransformers() throws {
        let ref = try FixturePaths.json("reference/chat-templates.json")
        let templates = ref["templates"] as! [String: String]
        let conversations = (ref["conversations"] as! [[[String: String]]]).map {
            $0.map { ChatTemplate.Message(role: $0["role"]!, content: $0["content"]!) }
        }
        let bos = ref["bos_token"] as! String, eos = ref["eos_token"] as! String
        var checked = 0
        for case let c as [String: Any] in ref["cases"] as! [Any] {
            let name = c["template"] as! String
            let template = try ChatTemplate(templates[name]!)
            let conv = conversations[c["conversation"] as! Int], gen = c["add_generation_prompt"] as! Bool
            let label = "\(name) conversation \(c["conversation"]!) generation prompt \(gen)"
            if let expected = c["text"] as? String {
                #expect(
                    try template.render(messages: conv, addGenerationPrompt: gen, bosToken: bos, eosToken: eos)
                        == expected, "\(label)")
            } else {
                #expect(throws: ChatTemplate.TemplateError.self, "\(label) should raise") {
                    try template.render(messages: conv, addGenerationPrompt: gen, bosToken: bos, eosToken: eos)
                }
            }
            checked += 1
        }
        #expect(checked == 30)
    }

    @Test func unsupportedConstructsAreNamed() {
        func error(_ source: String) -> String {
            do { _ = try ChatTemplate(source).render(messages: [], addGenerationPrompt: true); return "" } catch {
                return "\(error)"
            }
        }
        #expect(error("{% macro f() %}{% endmacro %}").contains("macro"))
        #expect(error("{{ messages[1:] }}").contains("slices"))
        #expect(error("{{ x | wordwrap }}").contains("wordwrap"))
        #expect(error("{% if true %}unterminated").contains("endif"))
        #expect(error("{{ 'a' ").contains("unterminated"))
        #expect(error("{{ strftime_now('%d') }}").contains("strftime_now"))
    }

    @Test(.enabled(if: GGUFTests.realModel != nil, Comment(rawValue: GGUFTests.absent)))
    func theGGUFCarriesItsTemplate() throws {
        let t = try #require(try ChatTemplate.load(model: GGUFTests.realModel!))
        let text = try t.render(messages: [.init(role: "user", content: "Hi")], addGenerationPrompt: true)
        #expect(text.hasSuffix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
    }
}
