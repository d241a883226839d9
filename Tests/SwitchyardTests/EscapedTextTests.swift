import Foundation
import Testing

@testable import Switchyard

/// Untrusted strings (tensor names, expert and router names, JSON keys, CLI values) never split
/// the one error line or inject terminal escapes (issue 13: "untrusted strings printed raw").
@Suite struct EscapedTextTests {
    @Test func controlCharactersBecomeVisibleEscapes() {
        #expect(EscapedText.escaped("a\nb\rc\td") == #"a\nb\rc\td"#)
        #expect(EscapedText.escaped("\u{1B}[31mred") == #"\u{1B}[31mred"#)
        #expect(EscapedText.escaped("x\u{0}y\u{7F}z\u{85}") == #"x\u{0}y\u{7F}z\u{85}"#)
        #expect(EscapedText.escaped("line\u{2028}sep\u{202E}rlo\u{200B}") == #"line\u{2028}sep\u{202E}rlo\u{200B}"#)
        // A literal backslash-n stays distinguishable from an escaped newline.
        #expect(EscapedText.escaped(#"a\nb"#) == #"a\\nb"#)
        // Printable text, non-ASCII included, is kept.
        #expect(EscapedText.escaped("q_proj é 日本 🙂") == "q_proj é 日本 🙂")
        #expect(EscapedText.quoted("it's") == "'it's'")
        #expect(EscapedText.escaped(String(repeating: "x", count: 500), limit: 10) == "xxxxxxxxxx…")
    }

    @Test func oneLineIsIdempotentAndKeepsBackslashes() {
        let once = EscapedText.oneLine("a\nb \\ c\u{1B}")
        #expect(once == #"a\nb \ c\u{1B}"#)
        #expect(EscapedText.oneLine(once) == once)
        #expect(EscapedText.json("\"q\"\n\u{1}") == #"\"q\"\n\u0001"#)
    }

    static func isOneSafeLine(_ s: String) -> Bool {
        !s.unicodeScalars.contains(where: EscapedText.needsEscape)
    }

    /// Every error type escapes what it carries.
    @Test func errorDescriptionsAreOneLine() {
        let hostile = "evil\nname\u{1B}[2J"
        let errors: [any Error] = [
            SwitchyardError.safetensors(path: "/p\n", tensor: hostile, reason: "bad"),
            SwitchyardError.missingTensor(path: "p", tensor: hostile),
            SwitchyardError.shapeMismatch(path: "p", tensor: hostile, expected: [1], found: [2]),
            SwitchyardError.config(path: "p", field: hostile, reason: "r\n"),
            SwitchyardError.unsupported(path: "p", what: hostile),
            SwitchyardError.invalidArgument(hostile),
            SwitchyardError.io(path: hostile, reason: "x"),
            RouterError.expertMismatch(expert: hostile, reason: "sha256 \(hostile)"),
            RouterError.invalid(field: hostile, reason: "x"),
            RouterError.decode(path: hostile, reason: "x"),
            TokenizerError.unknownToken(source: "t.json", path: "p", token: hostile),
            TokenizerError.invalidRegex(source: "t.json", path: "p", pattern: hostile, reason: "r\n")
        ]
        for e in errors {
            let message = "\(e)"
            #expect(Self.isOneSafeLine(message), "\(message.debugDescription)")
            #expect(message.contains(#"evil\nname\u{1B}[2J"#), "\(message.debugDescription)")
        }
    }

    /// End to end: an adapter whose tensor name carries a newline and an escape sequence.
    @Test func aHostileTensorNameIsEscapedInTheLoadError() throws {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = try MisreportedInputTests.adapter(in: dir) {
            $0
        } tensors: { entries in
            entries[0].name =
                "base_model.model.model.layers.0.self_attn.q_proj\nerror: forged line\u{1B}[0m.lora_A.weight"
        }
        let config = try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
        #expect { _ = try LoRAAdapter.load(directory: adapter, base: config) } throws: { error in
            let message = "\(error)"
            return Self.isOneSafeLine(message) && message.contains(#"q_proj\nerror: forged line\u{1B}[0m"#)
        }
    }
}
