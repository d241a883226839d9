import Foundation
import Testing

@testable import Switchyard

/// Regular expressions from files run with a step limit (issue 13: a tokenizer Split pattern
/// like `(.*a){25}` took seconds on 40 characters; rank_pattern keys that were not valid regexes
/// silently never matched).
@Suite struct RegexLimitTests {
    /// Wall time of `body`, in seconds.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test func catastrophicBacktrackingStopsAtTheLimitWithAClearError() throws {
        let regex = try BoundedRegex("(.*a){25}")
        let text = String(repeating: "a", count: 40)
        var failure: (any Error)? = nil
        // Unbounded, this takes tens of seconds in ICU (measured 25 s).
        let elapsed = Self.seconds {
            do { _ = try regex.matches(in: text, stepLimit: 200) } catch { failure = error }
        }
        #expect(failure as? BoundedRegex.Failure == .limitExceeded(steps: 200))
        #expect(elapsed < 5, "stopped after \(elapsed) s")
        // The same regex on text it handles easily.
        #expect(try regex.matches(in: "b", stepLimit: 200).isEmpty)
    }

    @Test func ordinaryPatternsAreUnaffectedAndMatchLikeNSRegularExpression() throws {
        let pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        let text = String(repeating: "Hello world, it's 123 a test!  \n", count: 2000)  // 64K characters
        let ours = try BoundedRegex(pattern).matches(
            in: text, stepLimit: BoundedRegex.stepLimit(base: 1000, textLength: text.utf16.count))
        let ns = try NSRegularExpression(pattern: pattern).matches(
            in: text, range: NSRange(location: 0, length: text.utf16.count))
        #expect(ours == ns.map { $0.range.location..<($0.range.location + $0.range.length) })
        // Empty matches and empty text behave as in NSRegularExpression.
        #expect(try BoundedRegex("x*").matches(in: "ab", stepLimit: 10) == [0..<0, 1..<1, 2..<2])
        #expect(try BoundedRegex("x*").matches(in: "", stepLimit: 10) == [0..<0])
    }

    @Test func invalidPatternsAreCompileErrors() {
        #expect { _ = try BoundedRegex("q_proj[") } throws: { error in
            guard case .invalid(let reason)? = error as? BoundedRegex.Failure else { return false }
            return reason.contains("offset")
        }
    }

    static func splitTokenizer(_ regex: String) throws -> Tokenizer {
        let json = TokenizerFixtures.makeJSON(preTokenizer: [
            "type": "Sequence",
            "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]
            ]
        ])
        return try Tokenizer(json: json, source: "hostile/tokenizer.json")
    }

    /// A hostile tokenizer.json: encodeChecked reports the pattern; encode (which cannot throw)
    /// stays bounded and returns valid ids.
    @Test func aHostileTokenizerSplitPatternIsBounded() throws {
        let tokenizer = try Self.splitTokenizer("(.*a){25}")
        let text = String(repeating: "a", count: 40)
        var message = ""
        let checked = Self.seconds {
            #expect(throws: TokenizerError.self) { _ = try tokenizer.encodeChecked(text) }
            do { _ = try tokenizer.encodeChecked(text) } catch { message = "\(error)" }
        }
        #expect(
            message.contains("hostile/tokenizer.json") && message.contains("pre_tokenizer")
                && message.contains("(.*a){25}"), "\(message)")
        #expect(message.contains("too long"), "\(message)")
        var ids: [Int] = []
        let lenient = Self.seconds { ids = tokenizer.encode(text) }
        #expect(checked < 10 && lenient < 10, "\(checked) s, \(lenient) s")
        #expect(ids.count == 40 && ids.allSatisfy { $0 == Int(UInt8(ascii: "a")) })
        // An ordinary Split regex keeps working through the same path.
        let words = try Self.splitTokenizer(#"\s+"#)
        #expect(try words.encodeChecked("a b").count == 3)
    }

    @Test func aHugeCountedRepeatIsBounded() throws {
        let tokenizer = try Self.splitTokenizer("a{1000000}")
        let text = String(repeating: "a", count: 5000)
        let elapsed = Self.seconds { _ = try? tokenizer.encodeChecked(text) }
        #expect(elapsed < 10, "\(elapsed) s")
    }

    static func adapterError(_ key: String, _ value: String) throws -> String {
        let dir = try FixturePaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = try MisreportedInputTests.adapter(in: dir) { text in
            var obj = try! JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            obj[key] = nil
            let rest = String(
                decoding: try! JSONSerialization.data(withJSONObject: obj, options: .sortedKeys), as: UTF8.self)
            return String(rest.dropLast()) + ", \"\(key)\": \(value)}"
        }
        let config = try ModelConfig.load(from: FixturePaths.url("models/llama-gqa/config.json"))
        do { _ = try LoRAAdapter.load(directory: adapter, base: config); return "no error" } catch { return "\(error)" }
    }

    /// rank_pattern / alpha_pattern keys and a target_modules regex that do not compile are
    /// errors naming the key (they used to never match, silently).
    @Test(arguments: [
        ("rank_pattern", #"{"q_proj[": 2}"#, "rank_pattern.q_proj["),
        ("alpha_pattern", #"{"(?<": 2}"#, "alpha_pattern.(?<"),
        ("target_modules", #""model.*(q_proj""#, "target_modules")
    ])
    func invalidPatternsInAdapterConfigsAreRefused(key: String, value: String, expected: String) throws {
        let message = try Self.adapterError(key, value)
        #expect(message.contains(expected) && message.contains("not a valid regular expression"), "\(message)")
    }

    /// A pattern that backtracks catastrophically on module names is an error naming it, quickly.
    @Test func catastrophicAdapterPatternsAreBounded() throws {
        var message = ""
        let elapsed = try Self.seconds { message = try Self.adapterError("rank_pattern", #"{"(.*.)*X": 2}"#) }
        #expect(message.contains("rank_pattern") && message.contains("too long"), "\(message)")
        #expect(elapsed < 10, "\(elapsed) s")
        // Valid patterns still apply as PEFT does.
        #expect(try Self.adapterError("rank_pattern", #"{"self_attn\\.(q|v)_proj": 4}"#) == "no error")
    }
}
