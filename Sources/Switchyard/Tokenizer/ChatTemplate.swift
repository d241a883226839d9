import Foundation

/// A model's chat template (Jinja, as in `tokenizer_config.json`, `chat_template.jinja` or GGUF
/// `tokenizer.chat_template`) rendered the way transformers' `apply_chat_template` does
/// (jinja2 with `trim_blocks` and `lstrip_blocks`).
///
/// Supports the subset the common templates use (SmolLM2/ChatML, Qwen2, Llama 3, Mistral):
/// text, `{{ … }}`, `{% if/elif/else %}`, `{% for x in … %}` (with `loop.index/index0/first/
/// last/length`), `{% set %}`, comments, `-` whitespace control; literals, names, `.attr`,
/// `[index]`, `+ - * / % ~`, comparisons, `in`, `and/or/not`, `is defined/none/string/…`,
/// inline `a if c else b`, filters `trim length upper lower tojson string default first last`,
/// the methods `strip lstrip rstrip startswith endswith upper lower split items`, and
/// `raise_exception`. Anything else is refused when the template is parsed, naming the construct.
public struct ChatTemplate: Sendable {
    /// One conversation turn, seen by the template as `message['role']` / `message['content']`.
    public struct Message: Sendable, Equatable {
        /// The speaker, as the template compares it: usually "system", "user" or "assistant".
        public var role: String
        /// The turn's text, inserted verbatim (templates may trim it).
        public var content: String
        /// A turn of `role` saying `content`.
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    let nodes: [Node]
    /// The template's Jinja text, as given.
    public let source: String

    /// Parses `source` once; throws `TemplateError` naming the first unsupported construct or
    /// syntax error.
    public init(_ source: String) throws {
        self.source = source
        var parser = Parser(tokens: try Lexer.tokens(source))
        nodes = try parser.parseBody(until: [])
    }

    /// Renders `messages`; `bos_token`/`eos_token` are available to the template.
    public func render(messages: [Message], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "")
        throws -> String
    {
        var scope: [String: Value] = [
            "messages": .array(messages.map { .dict(["role": .string($0.role), "content": .string($0.content)]) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken), "eos_token": .string(eosToken)
        ]
        var out = ""
        try Self.run(nodes, &scope, &out)
        return out
    }

    /// Renders with the tokenizer's BOS and EOS token strings, the variables templates use.
    public func render(messages: [Message], addGenerationPrompt: Bool, tokenizer: Tokenizer) throws -> String {
        try render(
            messages: messages, addGenerationPrompt: addGenerationPrompt,
            bosToken: tokenizer.bosTokenID.flatMap(tokenizer.token(forID:)) ?? "",
            eosToken: tokenizer.eosTokenID.flatMap(tokenizer.token(forID:)) ?? "")
    }

    // MARK: - Values

    enum Value: Equatable, Sendable {
        case undefined, none, bool(Bool), int(Int), double(Double), string(String), array([Value]), dict(
            [String: Value])

        var truthy: Bool {
            switch self {
            case .undefined, .none: return false
            case let .bool(b): return b
            case let .int(i): return i != 0
            case let .double(d): return d != 0
            case let .string(s): return !s.isEmpty
            case let .array(a): return !a.isEmpty
            case let .dict(d): return !d.isEmpty
            }
        }

        var text: String {
            switch self {
            case .undefined: return ""
            case .none: return "None"
            case let .bool(b): return b ? "True" : "False"
            case let .int(i): return String(i)
            case let .double(d): return String(d)
            case let .string(s): return s
            case .array, .dict: return json
            }
        }

        var json: String {
            switch self {
            case .undefined, .none: return "null"
            case let .bool(b): return b ? "true" : "false"
            case let .int(i): return String(i)
            case let .double(d): return String(d)
            case let .string(s):
                // transformers' `tojson` is json.dumps(…, ensure_ascii=False): non-ASCII stays.
                return "\"" + EscapedText.json(s) + "\""
            case let .array(a): return "[" + a.map(\.json).joined(separator: ", ") + "]"
            case let .dict(d):
                return "{" + d.keys.sorted().map { Value.string($0).json + ": " + d[$0]!.json }.joined(separator: ", ")
                    + "}"
            }
        }
    }

    // MARK: - Syntax

    indirect enum Expr: Sendable {
        case literal(Value), name(String), attribute(Expr, String), index(Expr, Expr)
        case unary(String, Expr), binary(String, Expr, Expr), test(Expr, String, negated: Bool)
        case conditional(Expr, Expr, Expr?), filter(Expr, String, [Expr]), call(Expr, [Expr]), list([Expr])
    }

    indirect enum Node: Sendable {
        case text(String), output(Expr)
        case ifBlock([(Expr, [Node])], [Node])
        case forBlock(String, Expr, [Node])
        case set(String, Expr)
    }

    enum Token: Equatable {
        case text(String), exprStart, exprEnd, stmtStart, stmtEnd
        case name(String), string(String), number(Double, isInt: Bool), op(String)
    }

    /// A template that cannot be parsed or rendered (including `raise_exception` from the template).
    public struct TemplateError: Error, CustomStringConvertible {
        /// One line starting "chat template:" saying what failed.
        public let description: String
    }

    static func fail(_ s: String) -> TemplateError { TemplateError(description: "chat template: \(s)") }

    // MARK: - Lexer

    enum Lexer {
        static func tokens(_ src: String) throws -> [Token] {
            let s = Array(src.unicodeScalars)
            var out: [Token] = []
            var i = 0
            var text = ""
            var trimNextLeading = false  // `-%}`/`-}}` or trim_blocks after `%}`
            var afterBlock = false
            func flushText() {
                if !text.isEmpty { out.append(.text(text)) }
                text = ""
            }
            func at(_ p: String) -> Bool {
                let u = Array(p.unicodeScalars)
                return i + u.count <= s.count && Array(s[i..<(i + u.count)]) == u
            }
            while i < s.count {
                if at("{{") || at("{%") || at("{#") {
                    let kind = s[i + 1]
                    let strip = i + 2 < s.count && s[i + 2] == "-"
                    // lstrip_blocks: whitespace from the start of the line before a block tag goes.
                    if kind != "{" {
                        var j = text.unicodeScalars.count
                        let u = Array(text.unicodeScalars)
                        while j > 0 && (u[j - 1] == " " || u[j - 1] == "\t") { j -= 1 }
                        if j == 0 ? (out.isEmpty || lastEndsLine(out, afterBlock: afterBlock)) : u[j - 1] == "\n" {
                            text = String(String.UnicodeScalarView(u[0..<j]))
                        }
                    }
                    if strip {
                        text = String(
                            text.unicodeScalars.reversed().drop(while: { $0.properties.isWhitespace }).reversed().map(
                                Character.init))
                    }
                    flushText()
                    i += strip ? 3 : 2
                    if kind == "#" {
                        while i < s.count && !(at("#}") || at("-#}")) { i += 1 }
                        guard i < s.count else { throw fail("unterminated comment") }
                        trimNextLeading = at("-#}")
                        i += trimNextLeading ? 3 : 2
                        afterBlock = true
                        if !trimNextLeading, i < s.count, s[i] == "\n" { i += 1 }
                        continue
                    }
                    out.append(kind == "{" ? .exprStart : .stmtStart)
                    let close = kind == "{" ? "}}" : "%}"
                    while true {
                        while i < s.count && s[i].properties.isWhitespace { i += 1 }
                        guard i < s.count else { throw fail("unterminated \(kind == "{" ? "{{" : "{%")") }
                        if at("-" + close) || at(close) {
                            let stripAfter = s[i] == "-"
                            i += stripAfter ? 3 : 2
                            out.append(kind == "{" ? .exprEnd : .stmtEnd)
                            trimNextLeading = stripAfter
                            afterBlock = kind == "%"
                            // trim_blocks: the first newline after a block tag goes.
                            if kind == "%", !stripAfter, i < s.count, s[i] == "\n" { i += 1 }
                            break
                        }
                        out.append(try token(s, &i))
                    }
                    continue
                }
                if trimNextLeading {
                    while i < s.count && s[i].properties.isWhitespace { i += 1 }
                    trimNextLeading = false
                    continue
                }
                text.unicodeScalars.append(s[i])
                i += 1
            }
            flushText()
            return out
        }

        /// lstrip_blocks applies only when the tag starts a line.
        static func lastEndsLine(_ out: [Token], afterBlock: Bool) -> Bool {
            if case let .text(t)? = out.last { return t.hasSuffix("\n") }
            return false
        }

        static func token(_ s: [Unicode.Scalar], _ i: inout Int) throws -> Token {
            let c = s[i]
            if c == "'" || c == "\"" {
                var v = ""
                i += 1
                while i < s.count && s[i] != c {
                    if s[i] == "\\", i + 1 < s.count {
                        i += 1
                        switch s[i] {
                        case "n": v += "\n"
                        case "t": v += "\t"
                        case "r": v += "\r"
                        default: v.unicodeScalars.append(s[i])
                        }
                    } else {
                        v.unicodeScalars.append(s[i])
                    }
                    i += 1
                }
                guard i < s.count else { throw fail("unterminated string literal") }
                i += 1
                return .string(v)
            }
            if c.properties.numericType != nil, c.isASCII {
                var v = ""
                while i < s.count && (s[i].isASCII && (s[i].properties.numericType != nil || s[i] == ".")) {
                    v.unicodeScalars.append(s[i]); i += 1
                }
                guard let d = Double(v) else { throw fail("bad number '\(v)'") }
                return .number(d, isInt: !v.contains("."))
            }
            if c.properties.isAlphabetic || c == "_" {
                var v = ""
                while i < s.count
                    && (s[i].properties.isAlphabetic || s[i] == "_"
                        || (s[i].isASCII && s[i].properties.numericType != nil))
                {
                    v.unicodeScalars.append(s[i]); i += 1
                }
                return .name(v)
            }
            for op in ["==", "!=", "<=", ">=", "//", "**"]
            where i + 1 < s.count && String(String.UnicodeScalarView([s[i], s[i + 1]])) == op {
                i += 2
                return .op(op)
            }
            if "+-*/%~<>()[].,:|=".unicodeScalars.contains(c) {
                i += 1
                return .op(String(c))
            }
            throw fail("unexpected character '\(c)'")
        }
    }

    // MARK: - Parser

    struct Parser {
        let tokens: [Token]
        var p = 0

        var peek: Token? { p < tokens.count ? tokens[p] : nil }
        mutating func next() -> Token? { defer { p += 1 }; return peek }
        mutating func expect(_ t: Token) throws {
            guard next() == t else { throw fail("expected \(t) near token \(p)") }
        }
        func isName(_ n: String) -> Bool { if case .name(n)? = peek { return true }; return false }
        func isOp(_ o: String) -> Bool { if case .op(o)? = peek { return true }; return false }

        /// Parses nodes until a `{% name %}` in `until` (left unconsumed: the caller reads it).
        mutating func parseBody(until: Set<String>) throws -> [Node] {
            var nodes: [Node] = []
            while let t = peek {
                switch t {
                case let .text(s):
                    p += 1
                    nodes.append(.text(s))
                case .exprStart:
                    p += 1
                    nodes.append(.output(try expression()))
                    try expect(.exprEnd)
                case .stmtStart:
                    guard case let .name(keyword)? = (p + 1 < tokens.count ? tokens[p + 1] : nil) else {
                        throw fail("empty {% %}")
                    }
                    if until.contains(keyword) { return nodes }
                    p += 2
                    nodes.append(try statement(keyword))
                default:
                    throw fail("unexpected \(t)")
                }
            }
            guard until.isEmpty else { throw fail("missing {% \(until.sorted().joined(separator: " or ")) %}") }
            return nodes
        }

        mutating func endTag(_ name: String) throws {
            try expect(.stmtStart)
            try expect(.name(name))
        }

        mutating func statement(_ keyword: String) throws -> Node {
            switch keyword {
            case "if":
                var branches: [(Expr, [Node])] = []
                var cond = try expression()
                try expect(.stmtEnd)
                while true {
                    let body = try parseBody(until: ["elif", "else", "endif"])
                    branches.append((cond, body))
                    try expect(.stmtStart)
                    guard case let .name(k)? = next() else { throw fail("bad if block") }
                    if k == "elif" { cond = try expression(); try expect(.stmtEnd); continue }
                    if k == "else" {
                        try expect(.stmtEnd)
                        let other = try parseBody(until: ["endif"])
                        try endTag("endif")
                        try expect(.stmtEnd)
                        return .ifBlock(branches, other)
                    }
                    try expect(.stmtEnd)
                    return .ifBlock(branches, [])
                }
            case "for":
                guard case let .name(v)? = next() else { throw fail("for: expected a loop variable") }
                guard isName("in") else { throw fail("for: only 'for NAME in EXPR' is supported") }
                p += 1
                let seq = try expression(noConditional: true)
                guard peek == .stmtEnd else {
                    throw fail("for: unsupported construct after the sequence (loop filters, recursive)")
                }
                p += 1
                let body = try parseBody(until: ["endfor", "else"])
                if isNextStmt("else") { throw fail("for … else is not supported") }
                try endTag("endfor")
                try expect(.stmtEnd)
                return .forBlock(v, seq, body)
            case "set":
                guard case let .name(v)? = next() else { throw fail("set: expected a name") }
                guard isOp("=") else {
                    throw fail("set: only 'set NAME = EXPR' is supported (no block set, no namespace attributes)")
                }
                p += 1
                let e = try expression()
                try expect(.stmtEnd)
                return .set(v, e)
            default:
                throw fail("unsupported statement '{% \(keyword) %}'")
            }
        }

        func isNextStmt(_ name: String) -> Bool {
            p + 1 < tokens.count && tokens[p] == .stmtStart && tokens[p + 1] == .name(name)
        }

        mutating func expression(noConditional: Bool = false) throws -> Expr {
            let e = try orExpr()
            if !noConditional, isName("if") {
                p += 1
                let cond = try orExpr()
                var other: Expr? = nil
                if isName("else") { p += 1; other = try expression() }
                return .conditional(e, cond, other)
            }
            return e
        }

        mutating func orExpr() throws -> Expr {
            var e = try andExpr()
            while isName("or") { p += 1; e = .binary("or", e, try andExpr()) }
            return e
        }

        mutating func andExpr() throws -> Expr {
            var e = try notExpr()
            while isName("and") { p += 1; e = .binary("and", e, try notExpr()) }
            return e
        }

        mutating func notExpr() throws -> Expr {
            if isName("not") { p += 1; return .unary("not", try notExpr()) }
            return try comparison()
        }

        mutating func comparison() throws -> Expr {
            var e = try concat()
            while true {
                if case let .op(o)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                    p += 1; e = .binary(o, e, try concat()); continue
                }
                if isName("in") { p += 1; e = .binary("in", e, try concat()); continue }
                if isName("not"), p + 1 < tokens.count, tokens[p + 1] == .name("in") {
                    p += 2; e = .unary("not", .binary("in", e, try concat())); continue
                }
                if isName("is") {
                    p += 1
                    var negated = false
                    if isName("not") { p += 1; negated = true }
                    guard case let .name(t)? = next() else { throw fail("is: expected a test name") }
                    e = .test(e, t, negated: negated)
                    continue
                }
                return e
            }
        }

        mutating func concat() throws -> Expr {
            var e = try additive()
            while isOp("~") { p += 1; e = .binary("~", e, try additive()) }
            return e
        }

        mutating func additive() throws -> Expr {
            var e = try multiplicative()
            while case let .op(o)? = peek, o == "+" || o == "-" { p += 1; e = .binary(o, e, try multiplicative()) }
            return e
        }

        mutating func multiplicative() throws -> Expr {
            var e = try unary()
            while case let .op(o)? = peek, ["*", "/", "%", "//"].contains(o) { p += 1; e = .binary(o, e, try unary()) }
            return e
        }

        mutating func unary() throws -> Expr {
            if isOp("-") { p += 1; return .unary("-", try unary()) }
            return try filtered()
        }

        mutating func filtered() throws -> Expr {
            var e = try postfix()
            while isOp("|") {
                p += 1
                guard case let .name(f)? = next() else { throw fail("expected a filter name after '|'") }
                var args: [Expr] = []
                if isOp("(") { args = try arguments() }
                e = .filter(e, f, args)
            }
            return e
        }

        mutating func arguments() throws -> [Expr] {
            try expect(.op("("))
            var args: [Expr] = []
            while !isOp(")") {
                if case .name? = peek, p + 1 < tokens.count, tokens[p + 1] == .op("=") {
                    throw fail("keyword arguments are not supported")
                }
                args.append(try expression())
                if isOp(",") { p += 1 }
            }
            p += 1
            return args
        }

        mutating func postfix() throws -> Expr {
            var e = try primary()
            while true {
                if isOp(".") {
                    p += 1
                    guard case let .name(n)? = next() else { throw fail("expected a name after '.'") }
                    e = .attribute(e, n)
                } else if isOp("[") {
                    p += 1
                    if isOp(":") || isOp("::") { throw fail("slices are not supported") }
                    let i = try expression()
                    if isOp(":") { throw fail("slices are not supported") }
                    try expect(.op("]"))
                    e = .index(e, i)
                } else if isOp("(") {
                    e = .call(e, try arguments())
                } else {
                    return e
                }
            }
        }

        mutating func primary() throws -> Expr {
            guard let t = next() else { throw fail("unexpected end of expression") }
            switch t {
            case let .string(s):
                var v = s
                while case let .string(more)? = peek { v += more; p += 1 }
                return .literal(.string(v))
            case let .number(d, isInt): return .literal(isInt ? .int(Int(d)) : .double(d))
            case let .name(n):
                switch n {
                case "true", "True": return .literal(.bool(true))
                case "false", "False": return .literal(.bool(false))
                case "none", "None": return .literal(.none)
                default: return .name(n)
                }
            case .op("("):
                let e = try expression()
                try expect(.op(")"))
                return e
            case .op("["):
                var items: [Expr] = []
                while !isOp("]") { items.append(try expression()); if isOp(",") { p += 1 } }
                p += 1
                return .list(items)
            default:
                throw fail("unexpected \(t) in an expression")
            }
        }
    }

    // MARK: - Evaluation

    static func run(_ nodes: [Node], _ scope: inout [String: Value], _ out: inout String) throws {
        for n in nodes {
            switch n {
            case let .text(t): out += t
            case let .output(e): out += try eval(e, scope).text
            case let .set(name, e): scope[name] = try eval(e, scope)
            case let .ifBlock(branches, other):
                if let hit = try branches.first(where: { try eval($0.0, scope).truthy }) {
                    try run(hit.1, &scope, &out)
                } else {
                    try run(other, &scope, &out)
                }
            case let .forBlock(name, seqExpr, body):
                let seq: [Value]
                switch try eval(seqExpr, scope) {
                case let .array(a): seq = a
                case let .dict(d): seq = d.keys.sorted().map { .string($0) }
                case let .string(s): seq = s.map { .string(String($0)) }
                case .undefined, .none: seq = []
                case let v: throw fail("cannot loop over \(v.json)")
                }
                let saved = scope
                for (i, item) in seq.enumerated() {
                    scope[name] = item
                    scope["loop"] = .dict([
                        "index": .int(i + 1), "index0": .int(i), "first": .bool(i == 0),
                        "last": .bool(i == seq.count - 1),
                        "length": .int(seq.count), "revindex": .int(seq.count - i), "revindex0": .int(seq.count - i - 1)
                    ])
                    try run(body, &scope, &out)
                }
                // Jinja scoping: assignments inside a loop do not leak out of it.
                scope = saved
            }
        }
    }

    static func eval(_ e: Expr, _ scope: [String: Value]) throws -> Value {
        switch e {
        case let .literal(v): return v
        case let .name(n): return scope[n] ?? .undefined
        case let .list(items): return .array(try items.map { try eval($0, scope) })
        case let .attribute(base, name):
            let b = try eval(base, scope)
            if case let .dict(d) = b { return d[name] ?? .undefined }
            return .undefined
        case let .index(base, i):
            let b = try eval(base, scope), k = try eval(i, scope)
            switch (b, k) {
            case let (.dict(d), .string(s)): return d[s] ?? .undefined
            case let (.array(a), .int(j)):
                let idx = j < 0 ? a.count + j : j
                return a.indices.contains(idx) ? a[idx] : .undefined
            case let (.string(s), .int(j)):
                let chars = Array(s), idx = j < 0 ? chars.count + j : j
                return chars.indices.contains(idx) ? .string(String(chars[idx])) : .undefined
            default: return .undefined
            }
        case let .unary(op, x):
            let v = try eval(x, scope)
            if op == "not" { return .bool(!v.truthy) }
            switch v {
            case let .int(i): return .int(-i)
            case let .double(d): return .double(-d)
            default: throw fail("cannot negate \(v.json)")
            }
        case let .conditional(a, cond, other):
            return try eval(cond, scope).truthy
                ? try eval(a, scope) : try other.map { try eval($0, scope) } ?? .undefined
        case let .test(x, name, negated):
            let v = try eval(x, scope)
            let r: Bool
            switch name {
            case "defined": r = v != .undefined
            case "undefined": r = v == .undefined
            case "none": r = v == .none
            case "string": if case .string = v { r = true } else { r = false }
            case "number":
                switch v {
                case .int, .double: r = true;
                default: r = false
                }
            case "mapping": if case .dict = v { r = true } else { r = false }
            case "sequence", "iterable":
                switch v {
                case .array, .string, .dict: r = true;
                default: r = false
                }
            case "true": r = v == .bool(true)
            case "false": r = v == .bool(false)
            default: throw fail("unsupported test 'is \(name)'")
            }
            return .bool(negated ? !r : r)
        case let .binary(op, l, r):
            if op == "and" { let a = try eval(l, scope); return a.truthy ? try eval(r, scope) : a }
            if op == "or" { let a = try eval(l, scope); return a.truthy ? a : try eval(r, scope) }
            let a = try eval(l, scope), b = try eval(r, scope)
            switch op {
            case "==": return .bool(equal(a, b))
            case "!=": return .bool(!equal(a, b))
            case "~": return .string(a.text + b.text)
            case "in":
                switch b {
                case let .string(s): return .bool(s.contains(a.text))
                case let .array(arr): return .bool(arr.contains { equal($0, a) })
                case let .dict(d): return .bool(d[a.text] != nil)
                default: return .bool(false)
                }
            case "+":
                if case let .string(x) = a, case let .string(y) = b { return .string(x + y) }
                if case let .array(x) = a, case let .array(y) = b { return .array(x + y) }
                return try arithmetic(op, a, b)
            default:
                return try arithmetic(op, a, b)
            }
        case let .filter(x, name, args):
            let v = try eval(x, scope)
            let argv = try args.map { try eval($0, scope) }
            switch name {
            case "trim": return .string(v.text.trimmingCharacters(in: .whitespacesAndNewlines))
            case "upper": return .string(v.text.uppercased())
            case "lower": return .string(v.text.lowercased())
            case "string": return .string(v.text)
            case "tojson": return .string(v.json)
            case "default": return v == .undefined ? argv.first ?? .string("") : v
            case "length", "count":
                switch v {
                case let .string(s): return .int(s.count)
                case let .array(a): return .int(a.count)
                case let .dict(d): return .int(d.count)
                default: return .int(0)
                }
            case "first": if case let .array(a) = v { return a.first ?? .undefined }; return .undefined
            case "last": if case let .array(a) = v { return a.last ?? .undefined }; return .undefined
            default: throw fail("unsupported filter '| \(name)'")
            }
        case let .call(callee, args):
            let argv = try args.map { try eval($0, scope) }
            if case let .name(n) = callee {
                if n == "raise_exception" { throw fail("the template raised: \(argv.first?.text ?? "")") }
                throw fail("unsupported function '\(n)()'")
            }
            guard case let .attribute(base, method) = callee else { throw fail("unsupported call") }
            let v = try eval(base, scope)
            switch (v, method) {
            case let (.string(s), "strip"): return .string(s.trimmingCharacters(in: .whitespacesAndNewlines))
            case let (.string(s), "lstrip"): return .string(String(s.drop(while: { $0.isWhitespace })))
            case let (.string(s), "rstrip"):
                return .string(String(s.reversed().drop(while: { $0.isWhitespace }).reversed()))
            case let (.string(s), "upper"): return .string(s.uppercased())
            case let (.string(s), "lower"): return .string(s.lowercased())
            case let (.string(s), "startswith"): return .bool(s.hasPrefix(argv.first?.text ?? ""))
            case let (.string(s), "endswith"): return .bool(s.hasSuffix(argv.first?.text ?? ""))
            case let (.string(s), "split"):
                let sep = argv.first?.text
                let parts =
                    sep.map { s.components(separatedBy: $0) }
                    ?? s.split(whereSeparator: \.isWhitespace).map(String.init)
                return .array(parts.map { .string($0) })
            case let (.dict(d), "items"): return .array(d.keys.sorted().map { .array([.string($0), d[$0]!]) })
            case let (.dict(d), "get"): return d[argv.first?.text ?? ""] ?? (argv.count > 1 ? argv[1] : .none)
            default: throw fail("unsupported method '.\(method)()'")
            }
        }
    }

    static func equal(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case let (.int(x), .double(y)): return Double(x) == y
        case let (.double(x), .int(y)): return x == Double(y)
        case (.undefined, .none), (.none, .undefined): return false
        default: return a == b
        }
    }

    static func arithmetic(_ op: String, _ a: Value, _ b: Value) throws -> Value {
        func num(_ v: Value) throws -> Double {
            switch v {
            case let .int(i): return Double(i)
            case let .double(d): return d
            case let .bool(b): return b ? 1 : 0
            default: throw fail("'\(op)' needs numbers, got \(v.json)")
            }
        }
        if case let .int(x) = a, case let .int(y) = b {
            switch op {
            case "+": return .int(x + y)
            case "-": return .int(x - y)
            case "*": return .int(x * y)
            case "%": guard y != 0 else { throw fail("modulo by zero") }; return .int(((x % y) + y) % y)
            case "//":
                guard y != 0 else { throw fail("division by zero") };
                return .int(Int((Double(x) / Double(y)).rounded(.down)))
            default: break
            }
        }
        let x = try num(a), y = try num(b)
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/": guard y != 0 else { throw fail("division by zero") }; return .double(x / y)
        case "%": return .double(x.truncatingRemainder(dividingBy: y))
        default: throw fail("unsupported operator '\(op)'")
        }
    }
}

extension ChatTemplate {
    /// The chat template of a model: GGUF metadata `tokenizer.chat_template`, or in a Hugging Face
    /// directory `chat_template.jinja`, else `tokenizer_config.json`'s `chat_template` (a string, or
    /// a list of named templates: the one named "default"). nil when the model has none.
    public static func load(model path: URL) throws -> ChatTemplate? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw SwitchyardError.io(path: path.path, reason: "model not found")
        }
        if !isDirectory.boolValue {
            guard GGUFFile.isGGUF(path) else { return nil }
            return try GGUFFile(url: path).metadata["tokenizer.chat_template"]?.string.map(ChatTemplate.init)
        }
        let jinja = path.appendingPathComponent("chat_template.jinja")
        if let text = try? String(contentsOf: jinja, encoding: .utf8) { return try ChatTemplate(text) }
        return try TokenizerConfig.load(directory: path)?.chatTemplate.map(ChatTemplate.init)
    }
}
