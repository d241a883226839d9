import Foundation

/// Which modules of the base model a LoRA adapter targets (`target_modules` in PEFT).
public enum TargetModules: Sendable, Equatable {
    /// Module names or name suffixes (`["q_proj", "v_proj"]`): a module matches when its full
    /// name equals an entry or ends with `"." + entry`.
    case names([String])
    /// A regular expression that must match the whole module name (PEFT's `re.fullmatch`).
    case regex(String)
    /// Every linear layer except the output head (PEFT's `"all-linear"`).
    case allLinear

    /// Whether the module `model.layers.N.<path>` is targeted. Throws when a regex needs more
    /// than its step limit (`PatternMatch`).
    public func matches(_ moduleName: String) throws -> Bool {
        switch self {
        case let .names(list):
            return list.contains { moduleName == $0 || moduleName.hasSuffix("." + $0) }
        case let .regex(pattern):
            return try PatternMatch.fullMatch(pattern, moduleName, field: "target_modules")
        case .allLinear:
            return true
        }
    }
}

/// Python-`re`-compatible helpers for PEFT's pattern keys (ICU regular expressions; the subset PEFT
/// configs use — alternations, classes, anchors — behaves the same).
///
/// The patterns come from adapter files: they are compiled once (`RegexCache`), refused when
/// they do not compile (`AdapterConfig.parse`), and matched with a step limit
/// (`BoundedRegex`), so a pattern such as `(.*a){25}` is an error naming the key, not a hang.
enum PatternMatch {
    /// Steps allowed per match against a module name (tens of characters): about 10–30 ms of
    /// backtracking; PEFT-style patterns use none.
    static let steps = 100

    /// The whole-name pattern PEFT's `re.fullmatch(pattern, name)` applies.
    static func fullPattern(_ pattern: String) -> String { "^(?:\(pattern))$" }

    /// The pattern PEFT's `get_pattern_key` applies for a `rank_pattern`/`alpha_pattern` key:
    /// `re.match(rf"(.*\.)?({key})$", name)`.
    static func keyPattern(_ key: String) -> String { "^(?:.*\\.)?(?:\(key))$" }

    /// Compiles `pattern` (for parse-time validation), throwing a config error naming `field`.
    static func compile(_ pattern: String, field: String, path: String) throws {
        do { _ = try RegexCache.regex(pattern) } catch {
            throw SwitchyardError.config(path: path, field: field, reason: "\(error)")
        }
    }

    static func matches(_ pattern: String, _ s: String, field: String) throws -> Bool {
        do {
            return try RegexCache.regex(pattern).firstMatch(
                in: s, stepLimit: BoundedRegex.stepLimit(base: steps, textLength: s.utf16.count)) != nil
        } catch {
            throw SwitchyardError.invalidArgument(
                "\(field): pattern \(EscapedText.quoted(pattern, limit: 80)) on \(EscapedText.quoted(s)): \(error)")
        }
    }

    static func fullMatch(_ pattern: String, _ s: String, field: String) throws -> Bool {
        try matches(fullPattern(pattern), s, field: field)
    }

    /// PEFT's `get_pattern_key`: the first key equal to the module name, else the first key `k`
    /// for which `(.*\.)?(k)$` matches the module name from its start (`re.match`).
    static func patternKey(_ keys: [String], for moduleName: String, field: String) throws -> String? {
        if let exact = keys.first(where: { $0 == moduleName }) { return exact }
        for key in keys where try matches(keyPattern(key), moduleName, field: "\(field).\(key)") { return key }
        return nil
    }
}

/// A PEFT `adapter_config.json` for a LoRA adapter, restricted to what Switchyard implements.
///
/// Loading refuses, naming the key, anything that changes the computation and is not implemented
/// (DoRA, `modules_to_save`, bias training, …): every key PEFT writes is either understood,
/// harmless at inference (dropout, init scheme, bookkeeping), or must hold its null/false/empty default.
public struct AdapterConfig: Sendable, Equatable {
    /// Default LoRA rank `r` (`r`), > 0; `rankPattern` overrides it per module.
    public var rank: Int
    /// Default `lora_alpha`; the module scale is alpha / r (alpha / √r with rsLoRA).
    public var alpha: Float
    /// `use_rslora`: scale by alpha / √r instead of alpha / r.
    public var useRSLoRA: Bool
    /// `target_modules`: which projections the adapter may adapt.
    public var targetModules: TargetModules
    /// Module-name pattern → rank override.
    public var rankPattern: [String: Int]
    /// Module-name pattern → alpha override.
    public var alphaPattern: [String: Float]
    /// Only these layer indices are adapted (nil: all).
    public var layersToTransform: [Int]?
    /// `base_model_name_or_path`: informational, what the adapter was trained on (not checked).
    public var baseModelNameOrPath: String?
    /// Ordered keys of the patterns, as written (PEFT matches in dict order).
    var rankPatternOrder: [String] = []
    var alphaPatternOrder: [String] = []

    /// A config from its values (no validation; loading an adapter checks it against the weights).
    public init(
        rank: Int, alpha: Float, useRSLoRA: Bool = false, targetModules: TargetModules,
        rankPattern: [String: Int] = [:], alphaPattern: [String: Float] = [:],
        layersToTransform: [Int]? = nil, baseModelNameOrPath: String? = nil
    ) {
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        self.targetModules = targetModules
        self.rankPattern = rankPattern
        self.alphaPattern = alphaPattern
        self.layersToTransform = layersToTransform
        self.baseModelNameOrPath = baseModelNameOrPath
        rankPatternOrder = rankPattern.keys.sorted()
        alphaPatternOrder = alphaPattern.keys.sorted()
    }

    /// Keys that do not affect inference, whatever their value.
    static let inert: Set<String> = [
        "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping",
        "peft_version", "lora_dropout", "init_lora_weights", "runtime_config", "megatron_core",
        "layers_pattern", "fan_in_fan_out", "bias", "r", "lora_alpha", "use_rslora", "target_modules",
        "rank_pattern", "alpha_pattern", "layers_to_transform", "exclude_modules", "ensure_weight_tying",
        "qalora_group_size"
    ]

    /// The module's rank: `rank_pattern` override or `r`. Throws when a pattern exceeds its step
    /// limit on this name.
    public func rank(forModule name: String) throws -> Int {
        try PatternMatch.patternKey(rankPatternOrder, for: name, field: "rank_pattern").flatMap { rankPattern[$0] }
            ?? rank
    }

    /// The module's scale: alpha / r, or alpha / sqrt(r) with rsLoRA (with pattern overrides).
    public func scale(forModule name: String) throws -> Float {
        let r = Float(try rank(forModule: name))
        let a =
            try PatternMatch.patternKey(alphaPatternOrder, for: name, field: "alpha_pattern").flatMap {
                alphaPattern[$0]
            } ?? alpha
        return useRSLoRA ? a / r.squareRoot() : a / r
    }

    /// Whether a decoder-layer module (`model.layers.N.self_attn.q_proj`) is adapted.
    public func targets(layer: Int, moduleName: String) throws -> Bool {
        if let layers = layersToTransform, !layers.contains(layer) { return false }
        return try targetModules.matches(moduleName)
    }

    /// Parses `adapter_config.json`; `path` names the file in errors.
    ///
    /// Types are strict (`"r": 16.5` or `"r": true` is an error, not 16 or 1) and pattern
    /// dictionaries keep the file's key order, which decides which pattern wins, as in PEFT.
    public static func parse(_ data: Data, path: String) throws -> AdapterConfig {
        try parse(JSONFields(data: data, path: path))
    }

    static func parse(_ obj: JSONFields) throws -> AdapterConfig {
        let path = obj.path
        func isDefault(_ v: StrictJSON.Value) -> Bool {
            switch v {
            case .null, .bool(false): return true
            case let .array(a): return a.isEmpty
            case let .object(o): return o.isEmpty
            case let .string(s): return s.isEmpty
            default: return false
            }
        }
        func unsupported(_ key: String, _ detail: String) -> SwitchyardError {
            .unsupported(
                path: path, what: "\(EscapedText.quoted(key)) = \(JSONFields.describe(obj.raw(key) ?? .null))\(detail)")
        }
        if let type = try obj.string("peft_type"), type != "LORA" {
            throw SwitchyardError.unsupported(
                path: path, what: "peft_type \(EscapedText.quoted(type)) (only LORA adapters are experts)")
        }
        // Features that change the computation and are not implemented.
        for (key, v) in obj.entries where !inert.contains(key) {
            guard isDefault(v) else {
                throw unsupported(key, " (Switchyard loads plain LoRA; found a non-default value for this feature)")
            }
        }
        if case let .string(initKind)? = obj.value("init_lora_weights"),
            ["pissa", "olora", "corda", "loftq", "lora_ga"].contains(where: { initKind.lowercased().hasPrefix($0) })
        {
            throw unsupported(
                "init_lora_weights",
                " (this initialisation modifies the base weights; convert the adapter to plain LoRA first)")
        }
        if try obj.bool("ensure_weight_tying") == true {
            throw unsupported("ensure_weight_tying", " (tied embedding targets)")
        }
        if let bias = try obj.string("bias"), bias != "none" {
            throw unsupported("bias", " (only \"none\": trained biases are not loaded)")
        }
        if let pattern = obj.value("layers_pattern"), !isDefault(pattern) {
            let names = pattern.arrayValue?.map(\.stringValue) ?? [pattern.stringValue]
            guard names == ["layers"] else {
                throw unsupported("layers_pattern", " (Llama-family models use \"layers\")")
            }
        }
        if let excluded = obj.value("exclude_modules"), !isDefault(excluded) {
            throw unsupported("exclude_modules", "")
        }
        guard let r = try obj.int("r") else { throw obj.error("r", "missing (expected a positive integer)") }
        guard r > 0, r <= maxRank else { throw obj.error("r", "must be in 1...\(maxRank), found \(r)") }
        let alpha = try obj.double("lora_alpha") ?? 8
        let alphaF = Float(alpha)
        guard alphaF.isFinite else {
            throw obj.error("lora_alpha", "\(alpha) does not fit a 32-bit float")
        }
        let targets: TargetModules
        switch obj.value("target_modules") {
        case let .string(s)?:
            targets = s == "all-linear" ? .allLinear : .regex(s)
        case let .array(list)?:
            let names = list.compactMap(\.stringValue)
            guard names.count == list.count else { throw obj.error("target_modules", "expected a list of strings") }
            guard !names.isEmpty else { throw obj.error("target_modules", "empty list") }
            targets = .names(names)
        case let v?:
            throw obj.error(
                "target_modules",
                "expected a list of module names, a regex string or \"all-linear\", found \(JSONFields.describe(v))")
        case nil:
            throw obj.error(
                "target_modules", "missing (expected a list of module names, a regex string or \"all-linear\")")
        }
        var ranks: [String: Int] = [:], rankOrder: [String] = []
        if let rp = try obj.object("rank_pattern") {
            for (k, v) in rp.entries {
                guard let n = JSONFields.integer(v), n > 0, n <= maxRank else {
                    throw rp.error(k, "must map to an integer in 1...\(maxRank), found \(JSONFields.describe(v))")
                }
                ranks[k] = n
                rankOrder.append(k)
            }
        }
        var alphas: [String: Float] = [:], alphaOrder: [String] = []
        if let ap = try obj.object("alpha_pattern") {
            for (k, _) in ap.entries {
                guard let n = try ap.double(k), Float(n).isFinite else {
                    throw ap.error(k, "must map to a finite number, found \(JSONFields.describe(ap.raw(k) ?? .null))")
                }
                alphas[k] = Float(n)
                alphaOrder.append(k)
            }
        }
        var layers: [Int]? = nil
        if let v = obj.value("layers_to_transform") {
            let items = v.arrayValue ?? [v]
            layers = try items.map { item in
                guard let i = JSONFields.integer(item), i >= 0 else {
                    throw obj.error(
                        "layers_to_transform",
                        "expected a non-negative integer or a list of them, found \(JSONFields.describe(v))")
                }
                return i
            }
        }
        // Patterns are regular expressions (PEFT uses Python's `re`): one that does not compile
        // is an error naming it, not a key that silently never matches.
        if case let .regex(pattern) = targets {
            try PatternMatch.compile(PatternMatch.fullPattern(pattern), field: "target_modules", path: path)
        }
        for key in rankOrder {
            try PatternMatch.compile(PatternMatch.keyPattern(key), field: "rank_pattern.\(key)", path: path)
        }
        for key in alphaOrder {
            try PatternMatch.compile(PatternMatch.keyPattern(key), field: "alpha_pattern.\(key)", path: path)
        }
        var config = AdapterConfig(
            rank: r, alpha: alphaF, useRSLoRA: try obj.bool("use_rslora") ?? false, targetModules: targets,
            rankPattern: ranks, alphaPattern: alphas, layersToTransform: layers,
            baseModelNameOrPath: try obj.string("base_model_name_or_path"))
        // PEFT tries pattern keys in dict (file) order.
        config.rankPatternOrder = rankOrder
        config.alphaPatternOrder = alphaOrder
        return config
    }

    /// The largest rank accepted (far above any published adapter; keeps every size product small).
    public static let maxRank = 1 << 16

    /// The JSON PEFT writes for this configuration (what `PeftModel.from_pretrained` reads).
    public func peftJSON() -> [String: Any] {
        var target: Any
        switch targetModules {
        case let .names(list): target = list
        case let .regex(s): target = s
        case .allLinear: target = "all-linear"
        }
        return [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "use_rslora": useRSLoRA,
            "target_modules": target, "rank_pattern": rankPattern, "alpha_pattern": alphaPattern,
            "layers_to_transform": layersToTransform as Any? ?? NSNull(), "bias": "none", "lora_dropout": 0.0,
            "fan_in_fan_out": false, "use_dora": false, "modules_to_save": NSNull(), "inference_mode": true,
            "base_model_name_or_path": baseModelNameOrPath ?? NSNull(), "init_lora_weights": true,
            "layers_pattern": NSNull()
        ]
    }
}
