import Foundation
import Testing

@testable import Switchyard

/// tokenizer_config.json and model.safetensors.index.json go through the strict JSON reader:
/// the right fields are read, and a malformed one is an error naming the file and the field.
@Suite struct TokenizerConfigTests {
    private func directory(_ files: [String: String]) throws -> URL {
        let dir = try FixturePaths.temporaryDirectory()
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
        return dir
    }

    @Test func readsTokensAndTheDefaultNamedTemplate() throws {
        let dir = try directory([
            "tokenizer_config.json": #"""
            {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}
            """#
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try #require(try TokenizerConfig.load(directory: dir))
        #expect(config.bosToken == "<s>" && config.eosToken == "</s>")
        #expect(config.chatTemplate == "D")
        #expect(try ChatTemplate.load(model: dir) != nil)
    }

    @Test func absentFileIsNoConfig() throws {
        let dir = try directory([:])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try TokenizerConfig.load(directory: dir) == nil)
        #expect(try ChatTemplate.load(model: dir) == nil)
    }

    @Test(arguments: [
        (#"{"eos_token": 2}"#, "eos_token", "expected a string, found 2"),
        (#"{"bos_token": {"content": true}}"#, "bos_token.content", "expected a string, found true"),
        (
            #"{"chat_template": [{"name": "default", "template": 7}]}"#, "chat_template[0].template",
            "expected a string, found 7"
        ),
        (#"{"chat_template": ["x"]}"#, "chat_template[0]", "expected an object"),
        (#"{"eos_token": "a", "eos_token": "b"}"#, "(root)", "duplicate"),
        (#"[1]"#, "(root)", "not a JSON object")
    ])
    func malformedFieldsAreNamed(json: String, field: String, reason: String) throws {
        let dir = try directory(["tokenizer_config.json": json])
        defer { try? FileManager.default.removeItem(at: dir) }
        let message = String(
            describing: #expect(throws: SwitchyardError.self) { try TokenizerConfig.load(directory: dir) })
        #expect(message.contains("tokenizer_config.json"), "\(message)")
        #expect(message.contains(field), "\(message)")
        #expect(message.lowercased().contains(reason.lowercased()), "\(message)")
    }

    @Test func shardIndexWeightMapMustNameFiles() throws {
        let dir = try directory(["model.safetensors.index.json": #"{"weight_map": {"model.norm.weight": 3}}"#])
        defer { try? FileManager.default.removeItem(at: dir) }
        let message = String(
            describing: #expect(throws: SwitchyardError.self) { _ = try CheckpointDirectory(directory: dir) })
        #expect(
            message.contains("model.safetensors.index.json") && message.contains("weight_map.model.norm.weight"),
            "\(message)")
    }
}
