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

    /// Whether the module `model.layers.N.<path>` is targeted.
    public func matches(_ moduleName: String) -> Bool {
        switch self {
        case let .names(list):
            return list.contains { moduleName == $0 || moduleName.hasSuffix("." + $0) }
        case let .regex(pattern):
            return PatternMatch.fullMatch(pattern, moduleName)
        case .allLinear:
            return true
        }
    }
}

/// Python-`re`-compatible helpers for PEFT's pattern keys (ICU regular expressions; the subset PEFT
/// configs use — alternations, classes, anchors — behaves the same).
enum PatternMatch {
    static func fullMatch(_ pattern: String, _ s: String) -> Bool {
        guard let re = try? NSRegularExpression(pattern: "^(?:\(pattern))$") else { return false }
        return re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// PEFT's `get_pattern_key`: the first key equal to the module name, else the first key `k`
    /// for which `(.*\.)?(k)$` matches the module name from its start (`re.match`).
    static func patternKey(_ keys: [String], for moduleName: String) -> String? {
        if let exact = keys.first(where: { $0 == moduleName }) { return exact }
        return keys.first { key in
            guard let re = try? NSRegularExpression(pattern: "^(?:.*\\.)?(?:\(key))$") else { return false }
            return re.firstMatch(in: moduleName, range: NSRange(moduleName.startIndex..., in: moduleName)) != nil
        }
    }
}

/// A PEFT `adapter_config.json` for a LoRA adapter, restricted to what Switchyard implements.
///
/// Loading refuses, naming the key, anything that changes the computation and is not implemented
/// (DoRA, `modules_to_save`, bias training, …): every key PEFT writes is either understood,
/// harmless at inference (dropout, init scheme, bookkeeping), or must hold its null/false/empty default.
public struct AdapterConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var useRSLoRA: Bool
    public var targetModules: TargetModules
    /// Module-name pattern → rank override.
    public var rankPattern: [String: Int]
    /// Module-name pattern → alpha override.
    public var alphaPattern: [String: Float]
    /// Only these layer indices are adapted (nil: all).
    public var layersToTransform: [Int]?
    public var baseModelNameOrPath: String?
    /// Ordered keys of the patterns, as written (PEFT matches in dict order).
    var rankPatternOrder: [String] = []
    var alphaPatternOrder: [String] = []

    public init(rank: Int, alpha: Float, useRSLoRA: Bool = false, targetModules: TargetModules,
                rankPattern: [String: Int] = [:], alphaPattern: [String: Float] = [:],
                layersToTransform: [Int]? = nil, baseModelNameOrPath: String? = nil) {
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
        "qalora_group_size", "__raw__",
    ]

    /// The module's rank: `rank_pattern` override or `r`.
    public func rank(forModule name: String) -> Int {
        PatternMatch.patternKey(rankPatternOrder, for: name).flatMap { rankPattern[$0] } ?? rank
    }

    /// The module's scale: alpha / r, or alpha / sqrt(r) with rsLoRA (with pattern overrides).
    public func scale(forModule name: String) -> Float {
        let r = Float(rank(forModule: name))
        let a = PatternMatch.patternKey(alphaPatternOrder, for: name).flatMap { alphaPattern[$0] } ?? alpha
        return useRSLoRA ? a / r.squareRoot() : a / r
    }

    /// Whether a decoder-layer module (`model.layers.N.self_attn.q_proj`) is adapted.
    public func targets(layer: Int, moduleName: String) -> Bool {
        if let layers = layersToTransform, !layers.contains(layer) { return false }
        return targetModules.matches(moduleName)
    }

    /// Parses `adapter_config.json`; `path` names the file in errors.
    public static func parse(_ data: Data, path: String) throws -> AdapterConfig {
        guard var obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SwitchyardError.config(path: path, field: "(root)", reason: "not a JSON object")
        }
        obj["__raw__"] = data
        return try parse(obj, path: path)
    }

    static func parse(_ obj: [String: Any], path: String) throws -> AdapterConfig {
        func bad(_ field: String, _ reason: String) -> SwitchyardError { .config(path: path, field: field, reason: reason) }
        func isDefault(_ v: Any) -> Bool {
            if v is NSNull { return true }
            if type(of: v) == Bool.self || String(describing: type(of: v)).contains("Bool") { return (v as? Bool) == false }
            if let a = v as? [Any] { return a.isEmpty }
            if let d = v as? [String: Any] { return d.isEmpty }
            if let s = v as? String { return s.isEmpty }
            return false
        }
        func describe(_ v: Any) -> String {
            if type(of: v) == Bool.self || String(describing: type(of: v)).contains("Bool") { return (v as? Bool) == true ? "true" : "false" }
            if let d = try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed, .sortedKeys]),
               let s = String(data: d, encoding: .utf8) { return s }
            return "\(v)"
        }
        if let type = obj["peft_type"] as? String, type != "LORA" {
            throw SwitchyardError.unsupported(path: path, what: "peft_type '\(type)' (only LORA adapters are experts)")
        }
        // Features that change the computation and are not implemented.
        for key in obj.keys.sorted() where !inert.contains(key) {
            let v = obj[key]!
            guard isDefault(v) else {
                throw SwitchyardError.unsupported(path: path, what: "'\(key)' = \(describe(v)) (Switchyard loads plain LoRA; found a non-default value for this feature)")
            }
        }
        if let initKind = obj["init_lora_weights"] as? String,
           ["pissa", "olora", "corda", "loftq", "lora_ga"].contains(where: { initKind.lowercased().hasPrefix($0) }) {
            throw SwitchyardError.unsupported(path: path, what: "'init_lora_weights' = \"\(initKind)\" (this initialisation modifies the base weights; convert the adapter to plain LoRA first)")
        }
        if let tying = obj["ensure_weight_tying"] as? Bool, tying {
            throw SwitchyardError.unsupported(path: path, what: "'ensure_weight_tying' = true (tied embedding targets)")
        }
        if let bias = obj["bias"] as? String, bias != "none" {
            throw SwitchyardError.unsupported(path: path, what: "'bias' = \"\(bias)\" (only \"none\": trained biases are not loaded)")
        }
        if let pattern = obj["layers_pattern"], !isDefault(pattern) {
            let names = (pattern as? [String]) ?? [(pattern as? String) ?? ""]
            guard names == ["layers"] else {
                throw SwitchyardError.unsupported(path: path, what: "'layers_pattern' = \(pattern) (Llama-family models use \"layers\")")
            }
        }
        if let excluded = obj["exclude_modules"], !isDefault(excluded) {
            throw SwitchyardError.unsupported(path: path, what: "'exclude_modules' = \(excluded)")
        }
        guard let r = (obj["r"] as? NSNumber)?.intValue, r > 0 else { throw bad("r", "missing or not a positive integer") }
        let alpha = (obj["lora_alpha"] as? NSNumber)?.floatValue ?? 8
        let targets: TargetModules
        switch obj["target_modules"] {
        case let s as String:
            targets = s == "all-linear" ? .allLinear : .regex(s)
        case let list as [String]:
            guard !list.isEmpty else { throw bad("target_modules", "empty list") }
            targets = .names(list)
        default:
            throw bad("target_modules", "missing (expected a list of module names, a regex string or \"all-linear\")")
        }
        var ranks: [String: Int] = [:]
        if let rp = obj["rank_pattern"], !(rp is NSNull) {
            guard let d = rp as? [String: Any] else { throw bad("rank_pattern", "expected an object") }
            for (k, v) in d {
                guard let n = (v as? NSNumber)?.intValue, n > 0 else { throw bad("rank_pattern", "'\(k)' must map to a positive integer") }
                ranks[k] = n
            }
        }
        var alphas: [String: Float] = [:]
        if let ap = obj["alpha_pattern"], !(ap is NSNull) {
            guard let d = ap as? [String: Any] else { throw bad("alpha_pattern", "expected an object") }
            for (k, v) in d {
                guard let n = (v as? NSNumber)?.floatValue else { throw bad("alpha_pattern", "'\(k)' must map to a number") }
                alphas[k] = n
            }
        }
        var layers: [Int]? = nil
        switch obj["layers_to_transform"] {
        case nil, is NSNull: break
        case let n as NSNumber: layers = [n.intValue]
        case let list as [NSNumber]: layers = list.map(\.intValue)
        default: throw bad("layers_to_transform", "expected an integer or a list of integers")
        }
        var config = AdapterConfig(
            rank: r, alpha: alpha, useRSLoRA: (obj["use_rslora"] as? Bool) ?? false, targetModules: targets,
            rankPattern: ranks, alphaPattern: alphas, layersToTransform: layers,
            baseModelNameOrPath: obj["base_model_name_or_path"] as? String)
        // JSONSerialization loses key order; PEFT tries pattern keys in dict (file) order.
        config.rankPatternOrder = JSONKeyOrder.keys(of: "rank_pattern", in: obj, fallback: ranks.keys.sorted())
        config.alphaPatternOrder = JSONKeyOrder.keys(of: "alpha_pattern", in: obj, fallback: alphas.keys.sorted())
        return config
    }

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
            "layers_pattern": NSNull(),
        ]
    }
}

/// Recovers key order of a nested object, which `JSONSerialization` does not keep. Used only for
/// PEFT pattern dictionaries, whose order decides which pattern wins.
enum JSONKeyOrder {
    static func keys(of field: String, in obj: [String: Any], fallback: [String]) -> [String] {
        guard let raw = obj["__raw__"] as? Data,
              let parsed = try? StrictJSON.parse(Array(raw)),
              let entries = parsed.objectEntries,
              let nested = entries.first(where: { $0.0 == field })?.1.objectEntries
        else { return fallback }
        return nested.map(\.0)
    }
}
