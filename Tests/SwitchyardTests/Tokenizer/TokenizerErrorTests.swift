import Foundation
import Testing

@testable import Switchyard

/// Every load error names the file and says what is wrong.
@Suite struct TokenizerErrorTests {
    private func loadError(_ json: String, path: String = "/models/bad/tokenizer.json") -> TokenizerError? {
        do {
            _ = try Tokenizer(json: Data(json.utf8), source: path)
            return nil
        } catch {
            return error as? TokenizerError
        }
    }

    private func model(_ fields: String) -> String {
        #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]\#(fields)}}"#
    }

    private func expectError(
        _ json: String, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error = loadError(json) else {
            Issue.record("expected a TokenizerError", sourceLocation: sourceLocation)
            return
        }
        let text = error.description
        #expect(text.contains("/models/bad/tokenizer.json"), "\(text)", sourceLocation: sourceLocation)
        for word in words {
            #expect(text.contains(word), "\(text) should mention \(word)", sourceLocation: sourceLocation)
        }
    }

    /// A post-processor id outside the vocabulary (issue 13: `-1` reached the embedding lookup).
    @Test func postProcessorIDsMustBeTokens() {
        for id in ["-1", "3", "99999"] {
            let json =
                #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [\#(id)], "tokens": ["<s>"]}}}}"#
            expectError(json, mentions: ["post_processor", "found id \(id)"])
        }
        let roberta =
            #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "post_processor": {"type": "RobertaProcessing", "cls": ["<s>", -1], "sep": ["</s>", 2]}}"#
        expectError(roberta, mentions: ["post_processor", "found id -1"])
        let fine =
            #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "post_processor": {"type": "RobertaProcessing", "cls": ["a", 0], "sep": ["ab", 2]}}"#
        #expect(loadError(fine) == nil)
    }

    @Test func malformedJSON() {
        expectError(#"{"model": {"type": "BPE", "vocab": {"#, mentions: ["malformed JSON"])
        expectError("[1, 2]", mentions: ["not a JSON object"])
        expectError("", mentions: ["malformed JSON"])
    }

    @Test func unsupportedModelTypes() {
        for type in ["WordPiece", "Unigram", "WordLevel"] {
            expectError(#"{"model": {"type": "\#(type)", "vocab": {}}}"#, mentions: [type, "BPE"])
        }
    }

    @Test func mergesWithUnknownTokens() {
        expectError(
            #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}"#,
            mentions: ["merges[0]", "\"ab\""])
        expectError(
            #"{"model": {"type": "BPE", "vocab": {"a": 0, "ab": 1}, "merges": [["a", "z"]]}}"#,
            mentions: ["merges[0]", "\"z\""])
        expectError(
            #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["nospace"]}}"#,
            mentions: ["merges[0]", "nospace"])
    }

    @Test func unsupportedComponents() {
        expectError(
            model("").replacingOccurrences(
                of: "{\"model\"", with: #"{"normalizer": {"type": "BertNormalizer"}, "model""#),
            mentions: ["normalizer", "BertNormalizer"])
        expectError(
            model("").replacingOccurrences(
                of: "{\"model\"",
                with: #"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Metaspace"}]}, "model""#),
            mentions: ["pre_tokenizer.pretokenizers[0]", "Metaspace"])
        expectError(
            model("").replacingOccurrences(of: "{\"model\"", with: #"{"decoder": {"type": "WordPiece"}, "model""#),
            mentions: ["decoder", "WordPiece"])
        expectError(
            model("").replacingOccurrences(of: "{\"model\"", with: #"{"post_processor": {"type": "Mystery"}, "model""#),
            mentions: ["post_processor", "Mystery"])
    }

    @Test func unsupportedOptions() {
        expectError(model(#", "byte_fallback": true"#), mentions: ["byte_fallback"])
        expectError(model(###", "continuing_subword_prefix": "##""###), mentions: ["continuing_subword_prefix"])
        expectError(model(#", "unk_token": "<unk>""#), mentions: ["unk_token", "<unk>"])
        expectError(
            model("").replacingOccurrences(
                of: "{\"model\"",
                with:
                    #"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, "model""#
            ),
            mentions: ["pre_tokenizer.pattern", "(unclosed"])
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}"#, mentions: ["model.vocab"])
        expectError(#"{"nomodel": 1}"#, mentions: ["`model`"])
    }

    @Test func unreadableFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent/dir/tokenizer.json")
        #expect(throws: TokenizerError.self) { try Tokenizer(contentsOf: url) }
        do {
            _ = try Tokenizer.load(modelDirectory: URL(fileURLWithPath: "/nonexistent/dir"))
        } catch let error as TokenizerError {
            #expect(error.description.contains("/nonexistent/dir/tokenizer.json"))
        }
    }

    /// A minimal valid file loads; a template naming an unknown special token does not.
    @Test func templates() throws {
        let ok = try Tokenizer(json: Data(model("").utf8), source: "ok.json")
        #expect(ok.encode("ab") == [2])
        #expect(ok.bosTokenID == nil && ok.eosTokenID == nil)
        expectError(
            model("").replacingOccurrences(
                of: "{\"model\"",
                with:
                    #"{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}, "model""#
            ),
            mentions: ["<s>", "post_processor.single[0]"])
    }
}
