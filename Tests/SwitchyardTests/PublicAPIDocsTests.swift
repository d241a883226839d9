import Foundation
import Testing

/// Issue 13, section 4: a documented public API surface. Every `public`/`open` declaration under
/// `Sources/` carries a `///` doc comment (or ends a `/** … */` block) directly above it, past any
/// attributes; extensions and `public import`s are exempt. What need not be public is internal.
@Suite struct PublicAPIDocsTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func everyPublicDeclarationHasADocComment() throws {
        let sources = Self.packageRoot.appendingPathComponent("Sources")
        guard let walker = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil) else {
            Issue.record("cannot list \(sources.path)")
            return
        }
        let files = walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
            .sorted { $0.path < $1.path }
        #expect(files.count > 20, "found only \(files.count) .swift files under \(sources.path)")
        var offenders: [String] = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let relative = String(
                file.standardizedFileURL.path.dropFirst(Self.packageRoot.standardizedFileURL.path.count + 1))
            offenders += PublicDocScanner.undocumented(in: text).map { "\(relative):\($0.line): \($0.declaration)" }
        }
        #expect(
            offenders.isEmpty,
            """
            \(offenders.count) public declaration(s) without a /// doc comment (document them, or drop `public` \
            if nothing outside the module needs them):
            \(offenders.joined(separator: "\n"))
            """)
    }

    /// The scanner itself, on snippets: what it must flag and what it must leave alone.
    @Test func scannerRule() {
        func flagged(_ code: String) -> [Int] { PublicDocScanner.undocumented(in: code).map(\.line) }

        #expect(flagged("public func f() {}") == [1])
        #expect(flagged("/// Does f.\npublic func f() {}") == [])
        #expect(flagged("/// Does f.\n\npublic func f() {}") == [3], "a blank line detaches the comment")
        #expect(flagged("// Not a doc comment.\npublic func f() {}") == [2])
        #expect(flagged("struct S {\n    open var x = 1\n}") == [2])
        // Attributes, on the declaration's line or above it, single- or multi-line.
        #expect(flagged("@discardableResult public func f() -> Int { 1 }") == [1])
        #expect(flagged("/// Doc.\n@discardableResult\n@inline(__always)\npublic func f() -> Int { 1 }") == [])
        #expect(
            flagged("/// Doc.\n@available(*, deprecated,\n           message: \"use g()\")\npublic func f() {}") == [])
        #expect(flagged("@available(*, deprecated,\n           message: \"use g()\")\npublic func f() {}") == [3])
        // `/** … */` blocks count; other block comments do not.
        #expect(flagged("/**\n Doc.\n */\npublic func f() {}") == [])
        #expect(flagged("/* Not doc. */\npublic func f() {}") == [2])
        // Exempt: extensions and imports.
        #expect(
            flagged("public extension Foo {}\nextension Bar {}\npublic import Baz\n@_exported public import Qux") == [])
        // Not declarations: comments, block comments, multi-line string literals.
        #expect(flagged("// public func f() {}\n/// public func g() {}") == [])
        #expect(flagged("/*\npublic func f() {}\n*/\nlet x = 1") == [])
        #expect(flagged("let s = \"\"\"\n    public func f() {}\n    \"\"\"\nlet t = 1") == [])
        #expect(flagged("let s = #\"\"\"\n    public func f() {}\n    \"\"\"#\npublic func g() {}") == [4])
        // Access modifiers that merely mention public are still declarations.
        #expect(flagged("public private(set) var x = 0") == [1])
        #expect(flagged("internal func f() {}\nfunc publicThing() {}\nlet open = 1") == [])
    }
}

/// The rule of issue 13's `pubdoc.py` check: a line whose code, after optional attributes,
/// starts with `public ` or `open ` declares something public and needs a doc comment directly
/// above it (attribute lines in between are skipped).
enum PublicDocScanner {
    struct Finding: Equatable {
        var line: Int
        var declaration: String
    }

    static func undocumented(in text: String) -> [Finding] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        var findings: [Finding] = []
        var inBlockComment = false
        var inMultilineString = false
        for (i, line) in lines.enumerated() {
            if inBlockComment {
                if line.contains("*/") { inBlockComment = false }
                continue
            }
            if inMultilineString {
                if occurrences(of: "\"\"\"", in: line) % 2 == 1 { inMultilineString = false }
                continue
            }
            if line.hasPrefix("//") { continue }
            if line.hasPrefix("/*") {
                if let open = line.range(of: "/*", options: .backwards),
                    line.range(of: "*/", range: open.upperBound..<line.endIndex) == nil
                {
                    inBlockComment = true
                }
                continue
            }
            if occurrences(of: "\"\"\"", in: codePart(line)) % 2 == 1 { inMultilineString = true }
            guard declaresPublic(line), !isDocumented(lines, above: i) else { continue }
            findings.append(Finding(line: i + 1, declaration: String(line.prefix(100))))
        }
        return findings
    }

    /// True for `public …`/`open …` after optional attributes, except extensions and imports.
    static func declaresPublic(_ line: String) -> Bool {
        let rest = strippingAttributes(Substring(line))
        guard rest.hasPrefix("public ") || rest.hasPrefix("open ") else { return false }
        return !rest.hasPrefix("public extension ") && !rest.hasPrefix("public import ")
    }

    /// The line after leading `@attribute` / `@attribute(…)` tokens (parentheses balanced).
    static func strippingAttributes(_ line: Substring) -> Substring {
        var s = line
        while s.first == "@" {
            s = s.dropFirst().drop { $0.isLetter || $0.isNumber || $0 == "_" }
            if s.first == "(" {
                var depth = 0
                var end = s.startIndex
                for index in s.indices {
                    if s[index] == "(" { depth += 1 } else if s[index] == ")" { depth -= 1 }
                    if depth == 0 { end = s.index(after: index); break }
                }
                if depth != 0 { return "" }  // an attribute continued on the next line
                s = s[end...]
            }
            s = s.drop { $0 == " " || $0 == "\t" }
        }
        return s
    }

    /// Whether the nearest line above `index` that is not part of an attribute is a `///` line or
    /// closes a `/** … */` block.
    static func isDocumented(_ lines: [String], above index: Int) -> Bool {
        var j = index - 1
        while j >= 0 {
            let line = lines[j]
            if line.hasPrefix("@") {
                j -= 1
                continue
            }
            // The tail of a multi-line attribute: walk back to the `@` line that opens it.
            var balance = parenBalance(line)
            if balance < 0, !line.hasPrefix("//") {
                var k = j - 1
                while k >= 0, balance < 0 {
                    balance += parenBalance(lines[k])
                    if balance < 0 { k -= 1 }
                }
                if k >= 0, lines[k].hasPrefix("@") {
                    j = k - 1
                    continue
                }
            }
            break
        }
        guard j >= 0 else { return false }
        let line = lines[j]
        if line.hasPrefix("///") { return true }
        guard line.hasSuffix("*/") else { return false }
        var k = j
        while k >= 0, !lines[k].contains("/*") { k -= 1 }
        return k >= 0 && lines[k].hasPrefix("/**")
    }

    static func parenBalance(_ line: String) -> Int {
        codePart(line).reduce(0) { $0 + ($1 == "(" ? 1 : $1 == ")" ? -1 : 0) }
    }

    /// The line without a trailing `//` comment (a `//` inside a string literal is kept).
    static func codePart(_ line: String) -> Substring {
        var inString = false
        var previous: Character = " "
        for index in line.indices {
            let c = line[index]
            if c == "\"", previous != "\\" { inString.toggle() }
            if !inString, c == "/", previous == "/" { return line[..<line.index(before: index)] }
            previous = c
        }
        return Substring(line)
    }

    static func occurrences(of needle: String, in text: some StringProtocol) -> Int {
        text.components(separatedBy: needle).count - 1
    }
}
