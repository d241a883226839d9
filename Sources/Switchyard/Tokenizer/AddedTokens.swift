/// One entry of `added_tokens` in `tokenizer.json` (without its id: see `AddedVocabulary`).
struct AddedToken: Sendable {
    let content: String
    /// Special tokens (BOS, EOS, PAD, chat markers) can be dropped by `decode(skipSpecialTokens:)`.
    let special: Bool
    /// Only match when not inside a word (no word character touching either side).
    let singleWord: Bool
    /// Also swallow the whitespace to the left of the match.
    let lstrip: Bool
    /// Also swallow the whitespace to the right of the match.
    let rstrip: Bool
    /// Match on the normalized text (true) or on the raw input (false).
    let normalized: Bool
}

extension AddedToken: Hashable {
    /// Equal when the content is the same byte for byte (see `TokenKey`) and so are the flags,
    /// like HF's derived `PartialEq`.
    static func == (lhs: AddedToken, rhs: AddedToken) -> Bool {
        TokenKey(lhs.content) == TokenKey(rhs.content) && lhs.special == rhs.special
            && lhs.singleWord == rhs.singleWord && lhs.lstrip == rhs.lstrip && lhs.rstrip == rhs.rstrip
            && lhs.normalized == rhs.normalized
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(TokenKey(content))
        hasher.combine(special)
    }
}

extension AddedToken {
    /// Parses one `added_tokens` entry; returns the token and the id written in the file.
    static func parse(_ json: TokenizerJSON) throws -> (token: AddedToken, id: Int) {
        let id = try json.int("id")
        guard id >= 0, id <= Int(Int32.max) else { throw json.invalid("id", "a non-negative integer id") }
        let special = try json.bool("special", default: false)
        let token = AddedToken(
            content: try json.string("content"),
            special: special,
            singleWord: try json.bool("single_word", default: false),
            lstrip: try json.bool("lstrip", default: false),
            rstrip: try json.bool("rstrip", default: false),
            // HF's default: special tokens are matched on the raw text.
            normalized: try json.bool("normalized", default: !special))
        return (token, id)
    }
}

/// The added tokens of a tokenizer, reproducing HF's `AddedVocabulary`.
///
/// Ids: HF does not trust the ids written in `added_tokens`; it adds the tokens one by one in
/// file order. A token whose content is already known (an earlier added token, or a model
/// vocabulary entry) takes that id; any other token gets the next free id after the model
/// vocabulary and the added tokens so far. For files HF wrote itself this gives back the ids in
/// the file; for hand-edited files it can differ, and HF's assignment is what HF encodes with.
///
/// Decoding: a `normalized` token decodes as its *normalized* content (HF's `id_to_token`).
struct AddedVocabulary: Sendable {
    /// Content → id, for `id(forToken:)` and encoding.
    let idByContent: [TokenKey: Int]
    /// Id → the token whose flags apply to matches of that id.
    let tokenByID: [Int: AddedToken]
    /// Id → the string `decode` and `token(forID:)` use.
    let stringByID: [Int: String]
    /// Contents of special tokens; `decode(skipSpecialTokens: true)` drops tokens spelled so.
    let specialContents: Set<TokenKey>
    /// Added tokens looked for in the raw text (`normalized: false`).
    let rawMatcher: AddedTokenMatcher
    /// Added tokens looked for in normalized text (`normalized: true`).
    let normalizedMatcher: AddedTokenMatcher

    init(entries: [AddedToken], modelVocab: [TokenKey: Int], normalizer: (any Normalizer)?) {
        var specialTokens: [AddedToken] = []
        var specialContents: Set<TokenKey> = []
        var classicTokens: [AddedToken] = []
        var idByContent: [TokenKey: Int] = [:]
        var tokenByID: [Int: AddedToken] = [:]
        var present: Set<AddedToken> = []
        var largestAddedID: Int?
        let modelSize = modelVocab.count
        for token in entries {
            if token.special, !token.content.isEmpty, !specialContents.contains(TokenKey(token.content)) {
                specialTokens.append(token)
                specialContents.insert(TokenKey(token.content))
            }
            if token.content.isEmpty || present.contains(token) { continue }
            let id: Int
            let key = TokenKey(token.content)
            if let known = idByContent[key] ?? modelVocab[key] {
                id = known
            } else if let largest = largestAddedID {
                id = largest >= modelSize || modelSize == 0 ? largest + 1 : modelSize
            } else {
                id = modelSize
            }
            idByContent[key] = id
            largestAddedID = max(largestAddedID ?? id, id)
            if let replaced = tokenByID[id] { present.remove(replaced) }
            tokenByID[id] = token
            present.insert(token)
            if !specialContents.contains(key) { classicTokens.append(token) }
        }
        self.idByContent = idByContent
        self.tokenByID = tokenByID
        self.specialContents = specialContents

        func normalize(_ content: String) -> [Unicode.Scalar] {
            let scalars = Array(content.unicodeScalars)
            return normalizer?.normalize(scalars) ?? scalars
        }
        stringByID = tokenByID.mapValues { token in
            token.normalized ? String(String.UnicodeScalarView(normalize(token.content))) : token.content
        }
        // Special tokens first, then the others, each in the order they were added.
        let ordered = (specialTokens + classicTokens).map { ($0, idByContent[TokenKey($0.content)]!) }
        let raw = ordered.filter { !$0.0.normalized }
        let normalized = ordered.filter { $0.0.normalized }
        rawMatcher = AddedTokenMatcher(
            patterns: raw.map { (Array($0.0.content.unicodeScalars), $0.1) }, tokenByID: tokenByID)
        normalizedMatcher = AddedTokenMatcher(
            patterns: normalized.map { (normalize($0.0.content), $0.1) }, tokenByID: tokenByID)
    }

    /// Ids of the special tokens.
    var specialIDs: Set<Int> { Set(specialContents.compactMap { idByContent[$0] }) }
}

/// A piece of input after added tokens are split out: either an added token's id, or text that
/// still has to go through the rest of the pipeline.
enum AddedTokenSegment: Equatable {
    case token(Int)
    case text([Unicode.Scalar])
}

/// Finds added tokens in text, as HF's `AddedVocabulary::find_matches` does: leftmost-longest
/// matching of all patterns (an Aho-Corasick automaton in HF, a trie here), then the
/// `single_word`, `lstrip` and `rstrip` rules of the matched id's token.
struct AddedTokenMatcher: Sendable {
    private struct Node: Sendable {
        var children: [Unicode.Scalar: Int32] = [:]
        /// Id of the token whose pattern ends here, or -1.
        var id: Int = -1
    }
    private var nodes: [Node] = [Node()]
    private let tokenByID: [Int: AddedToken]

    /// `patterns`: the text to find and the id it stands for, in priority order (for equal
    /// patterns the first wins, like the first Aho-Corasick pattern).
    init(patterns: [([Unicode.Scalar], Int)], tokenByID: [Int: AddedToken]) {
        self.tokenByID = tokenByID
        for (pattern, id) in patterns where !pattern.isEmpty {
            var node = 0
            for scalar in pattern {
                if let child = nodes[node].children[scalar] {
                    node = Int(child)
                } else {
                    nodes.append(Node())
                    nodes[node].children[scalar] = Int32(nodes.count - 1)
                    node = nodes.count - 1
                }
            }
            if nodes[node].id < 0 { nodes[node].id = id }
        }
    }

    var isEmpty: Bool { nodes[0].children.isEmpty }

    /// The longest pattern starting at `start`: (id, end offset).
    private func longestMatch(in text: [Unicode.Scalar], at start: Int) -> (id: Int, end: Int)? {
        var node = 0
        var best: (id: Int, end: Int)?
        var position = start
        while position < text.count, let child = nodes[node].children[text[position]] {
            node = Int(child)
            position += 1
            if nodes[node].id >= 0 { best = (nodes[node].id, position) }
        }
        return best
    }

    /// Cuts `text` into added tokens and the text between them (empty text is dropped).
    func split(_ text: [Unicode.Scalar]) -> [AddedTokenSegment] {
        if text.isEmpty { return [] }
        if isEmpty { return [.text(text)] }
        var out: [AddedTokenSegment] = []
        var startOffset = 0  // end of the last emitted segment
        var position = 0
        while position < text.count {
            guard let match = longestMatch(in: text, at: position) else {
                position += 1
                continue
            }
            var start = position
            var stop = match.end
            // The automaton resumes after the raw match whatever the rules below decide.
            position = match.end
            guard let token = tokenByID[match.id] else { continue }
            if token.singleWord {
                let startIsBoundary = start == 0 || !Self.isWordCharacter(text[start - 1])
                let stopIsBoundary = stop == text.count || !Self.isWordCharacter(text[stop])
                if !startIsBoundary || !stopIsBoundary { continue }
            }
            if token.lstrip {
                var newStart = start
                while newStart > 0, text[newStart - 1].properties.isWhitespace { newStart -= 1 }
                start = max(newStart, startOffset)
            }
            if token.rstrip {
                while stop < text.count, text[stop].properties.isWhitespace { stop += 1 }
            }
            // HF would emit overlapping pieces when an rstrip swallowed the start of this match
            // (only possible for tokens that begin with whitespace); never go backwards instead.
            start = max(start, startOffset)
            stop = max(stop, start)
            if startOffset < start { out.append(.text(Array(text[startOffset..<start]))) }
            out.append(.token(match.id))
            startOffset = stop
            position = max(position, stop)
        }
        if startOffset < text.count { out.append(.text(Array(text[startOffset...]))) }
        return out
    }

    /// Rust `regex`'s Unicode `\w`: Alphabetic, marks, decimal digits, connector punctuation,
    /// Join_Control.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .decimalNumber, .connectorPunctuation, .nonspacingMark, .spacingMark, .enclosingMark:
            return true
        default:
            return false
        }
    }
}
