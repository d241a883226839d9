import Foundation
import Synchronization

/// The `model` stage for `"type": "BPE"`: turns one pre-tokenized piece into token ids by
/// starting from single characters and applying merges, lowest rank first (ties: leftmost), as
/// HF's `Word::merge_all` does.
struct BPEModel: Sendable {
    /// Token string → id.
    let vocab: [TokenKey: Int]
    /// Id → token string, for ids in the model vocabulary.
    let tokensByID: [Int: String]
    /// Ids of single-scalar tokens (the starting symbols of every word).
    private let scalarIDs: [Unicode.Scalar: Int32]
    /// `(left << 32) | right` → `(rank << 32) | merged id`.
    private let merges: [UInt64: UInt64]
    /// `ignore_merges`: a piece that is itself in the vocabulary is emitted as that one token.
    let ignoreMerges: Bool
    /// The id of `unk_token`, used for characters not in the vocabulary (else they are dropped,
    /// as HF does).
    let unknownID: Int32?
    /// `fuse_unk`: consecutive unknown characters become one unknown token.
    let fuseUnknown: Bool
    private let cache = BPECache()

    /// Parses the `model` object of `tokenizer.json`.
    init(json: TokenizerJSON) throws {
        let source = json.source
        let type = json.isNull("type") ? "BPE" : try json.type()
        guard type == "BPE" else {
            throw TokenizerError.unsupportedModel(source: source, type: type)
        }
        if try json.bool("byte_fallback", default: false) {
            throw TokenizerError.unsupportedOption(
                source: source, path: json.childPath("byte_fallback"),
                detail: "byte_fallback = true is not supported (byte-level BPE never needs it)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] where !json.isNull(key) {
            let value = (try? json.string(key)) ?? "?"
            // An empty prefix/suffix changes nothing; anything else is word-piece style BPE.
            if !value.isEmpty {
                throw TokenizerError.unsupportedOption(
                    source: source, path: json.childPath(key),
                    detail: "\(key) = \(value.debugDescription) is not supported (only null)")
            }
        }
        if let dropout = TokenizerJSON.double(json.fields["dropout"]), dropout > 0 {
            throw TokenizerError.unsupportedOption(
                source: source, path: json.childPath("dropout"),
                detail: "BPE dropout \(dropout) is not supported (tokenization would be random)")
        }
        ignoreMerges = try json.bool("ignore_merges", default: false)
        fuseUnknown = try json.bool("fuse_unk", default: false)

        guard let rawVocab = json.fields["vocab"] as? [String: Any] else {
            throw json.invalid("vocab", "a JSON object mapping token strings to ids")
        }
        var vocab: [TokenKey: Int] = [:]
        vocab.reserveCapacity(rawVocab.count)
        var tokensByID: [Int: String] = [:]
        tokensByID.reserveCapacity(rawVocab.count)
        var scalarIDs: [Unicode.Scalar: Int32] = [:]
        for (token, value) in rawVocab {
            guard let id = TokenizerJSON.integer(value), id >= 0, id <= Int(Int32.max) else {
                throw TokenizerError.invalidField(
                    source: source, path: "\(json.childPath("vocab")).\(token.debugDescription)",
                    expected: "a non-negative integer id")
            }
            vocab[TokenKey(token)] = id
            tokensByID[id] = token
            var scalars = token.unicodeScalars.makeIterator()
            if let first = scalars.next(), scalars.next() == nil {
                scalarIDs[first] = Int32(id)
            }
        }
        self.vocab = vocab
        self.tokensByID = tokensByID
        self.scalarIDs = scalarIDs

        if let unk = try json.optionalString("unk_token") {
            guard let id = vocab[TokenKey(unk)] else {
                throw TokenizerError.unknownToken(source: source, path: json.childPath("unk_token"), token: unk)
            }
            unknownID = Int32(id)
        } else {
            unknownID = nil
        }

        let rawMerges = json.isNull("merges") ? [] : try json.array("merges")
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(rawMerges.count)
        for (rank, entry) in rawMerges.enumerated() {
            let (left, right) = try Self.parseMerge(entry, index: rank, source: source)
            let mergeText = "\(left) \(right)"
            guard let leftID = vocab[TokenKey(left)] else {
                throw TokenizerError.mergeWithUnknownToken(source: source, index: rank, merge: mergeText, token: left)
            }
            guard let rightID = vocab[TokenKey(right)] else {
                throw TokenizerError.mergeWithUnknownToken(source: source, index: rank, merge: mergeText, token: right)
            }
            guard let mergedID = vocab[TokenKey(left + right)] else {
                throw TokenizerError.mergeWithUnknownToken(
                    source: source, index: rank, merge: mergeText, token: left + right)
            }
            // Like HF's HashMap collect, a repeated pair keeps its last rank.
            merges[Self.pairKey(Int32(leftID), Int32(rightID))] = UInt64(rank) << 32 | UInt64(mergedID)
        }
        self.merges = merges
    }

    /// A merge as `"left right"` (split at the first space) or `["left", "right"]`.
    static func parseMerge(_ entry: Any, index: Int, source: String) throws -> (String, String) {
        if let line = entry as? String {
            guard let space = line.firstIndex(of: " ") else {
                throw TokenizerError.malformedMerge(source: source, index: index, merge: line)
            }
            let left = String(line[..<space])
            let right = String(line[line.index(after: space)...])
            if left.isEmpty || right.isEmpty || right.contains(" ") {
                throw TokenizerError.malformedMerge(source: source, index: index, merge: line)
            }
            return (left, right)
        }
        if let pair = entry as? [Any], pair.count == 2, let left = pair[0] as? String, let right = pair[1] as? String {
            return (left, right)
        }
        throw TokenizerError.malformedMerge(source: source, index: index, merge: "\(entry)")
    }

    @inline(__always)
    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the ids of `word` (one pre-tokenized piece) to `ids`.
    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int]) {
        if word.isEmpty { return }
        let key = TokenKey(word)
        if ignoreMerges, let id = vocab[key] {
            ids.append(id)
            return
        }
        if let cached = cache.lookup(key) {
            ids.append(contentsOf: cached.lazy.map { Int($0) })
            return
        }
        let result = merge(word)
        if word.count <= BPECache.maxWordLength { cache.store(key, result) }
        ids.append(contentsOf: result.lazy.map { Int($0) })
    }

    /// HF's `merge_word` + `merge_all`.
    private func merge(_ word: [Unicode.Scalar]) -> [Int32] {
        // Initial symbols: one per character; unknown characters become `unk` (fused if asked)
        // or are dropped when there is no `unk_token`.
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false
        for scalar in word {
            if let id = scalarIDs[scalar] {
                if pendingUnknown, let unk = unknownID { symbols.append(unk) }
                pendingUnknown = false
                symbols.append(id)
            } else if let unk = unknownID {
                if pendingUnknown && !fuseUnknown { symbols.append(unk) }
                pendingUnknown = true
            }
        }
        if pendingUnknown, let unk = unknownID { symbols.append(unk) }
        if symbols.count < 2 || merges.isEmpty { return symbols }

        // Doubly linked list over `symbols`; a merged-away symbol is marked dead.
        let count = symbols.count
        var next = [Int](1...count)  // `count` means "none"
        var previous = [Int](-1..<(count - 1))
        var alive = [Bool](repeating: true, count: count)
        var queue = MergeQueue()
        for position in 0..<(count - 1) {
            if let merge = merges[Self.pairKey(symbols[position], symbols[position + 1])] {
                queue.push(rank: UInt32(merge >> 32), position: position, newID: Int32(truncatingIfNeeded: merge))
            }
        }
        while let top = queue.pop() {
            let position = top.position
            guard alive[position] else { continue }
            let right = next[position]
            guard right < count else { continue }
            // Skip entries made stale by earlier merges.
            guard let merge = merges[Self.pairKey(symbols[position], symbols[right])],
                Int32(truncatingIfNeeded: merge) == top.newID
            else { continue }
            symbols[position] = top.newID
            alive[right] = false
            let afterRight = next[right]
            next[position] = afterRight
            if afterRight < count { previous[afterRight] = position }
            let before = previous[position]
            if before >= 0, let m = merges[Self.pairKey(symbols[before], symbols[position])] {
                queue.push(rank: UInt32(m >> 32), position: before, newID: Int32(truncatingIfNeeded: m))
            }
            if afterRight < count, let m = merges[Self.pairKey(symbols[position], symbols[afterRight])] {
                queue.push(rank: UInt32(m >> 32), position: position, newID: Int32(truncatingIfNeeded: m))
            }
        }
        var result: [Int32] = []
        result.reserveCapacity(count)
        for position in 0..<count where alive[position] { result.append(symbols[position]) }
        return result
    }
}

/// A binary min-heap of pending merges ordered by (rank, position): lowest rank first, and
/// among equal ranks the leftmost pair, exactly HF's `Merge` ordering.
struct MergeQueue {
    struct Entry {
        let rank: UInt32
        let position: Int
        let newID: Int32

        @inline(__always)
        func precedes(_ other: Entry) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }
    private var heap: [Entry] = []

    var isEmpty: Bool { heap.isEmpty }

    mutating func push(rank: UInt32, position: Int, newID: Int32) {
        heap.append(Entry(rank: rank, position: position, newID: newID))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let first = heap.first else { return nil }
        let last = heap.removeLast()
        if heap.isEmpty { return first }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            if left >= heap.count { break }
            var best = left
            if left + 1 < heap.count, heap[left + 1].precedes(heap[left]) { best = left + 1 }
            guard heap[best].precedes(heap[parent]) else { break }
            heap.swapAt(best, parent)
            parent = best
        }
        return first
    }
}

/// Word → ids cache shared by all threads using one tokenizer. Bounded like HF's (10,000 words,
/// words of at most 256 scalars); once full, new words are computed but not stored.
final class BPECache: Sendable {
    static let capacity = 10_000
    static let maxWordLength = 256
    private let storage = Mutex<[TokenKey: [Int32]]>([:])

    func lookup(_ word: TokenKey) -> [Int32]? {
        storage.withLock { $0[word] }
    }

    func store(_ word: TokenKey, _ ids: [Int32]) {
        storage.withLock { cache in
            if cache.count < Self.capacity { cache[word] = ids }
        }
    }
}

extension TokenizerJSON {
    /// A JSON number as `Double`, nil for anything else.
    static func double(_ value: Any?) -> Double? {
        if value is NSNull { return nil }
        if let double = value as? Double { return double }
        return (value as? NSNumber)?.doubleValue
    }
}
