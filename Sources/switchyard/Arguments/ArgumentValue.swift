import Foundation
import Switchyard
import SwitchyardServer

/// A type an option or positional argument can hold, read from one command-line word.
protocol ArgumentValue {
    /// The value `argument` stands for, or nil when it is not a valid one.
    init?(argument: String)
    /// The placeholder help shows after an option of this type (`N`, `X`, `TEXT`, `a|b`).
    static var placeholder: String { get }
    /// What a valid value looks like, for the error that names a bad one ("an integer").
    static var expectation: String { get }
    /// How help shows this value as a default.
    var argumentDescription: String { get }
}

extension ArgumentValue {
    var argumentDescription: String { "\(self)" }
}

extension Int: ArgumentValue {
    init?(argument: String) { self.init(argument) }
    static var placeholder: String { "N" }
    static var expectation: String { "an integer" }
}

extension Float: ArgumentValue {
    /// Finite numbers only: `nan` and `inf` are refused like any other non-number.
    init?(argument: String) {
        guard let v = Float(argument), v.isFinite else { return nil }
        self = v
    }
    static var placeholder: String { "X" }
    static var expectation: String { "a number" }
}

extension String: ArgumentValue {
    init?(argument: String) { self = argument }
    static var placeholder: String { "TEXT" }
    static var expectation: String { "text" }
}

/// A value from a fixed set of names: the placeholder lists them (`text|json`) and a bad value
/// is refused naming them all.
protocol ChoiceArgument: ArgumentValue, CaseIterable {
    /// The command-line name of this choice.
    var argumentName: String { get }
}

extension ChoiceArgument {
    init?(argument: String) {
        guard let match = Self.allCases.first(where: { $0.argumentName == argument }) else { return nil }
        self = match
    }
    static var placeholder: String { allCases.map(\.argumentName).joined(separator: "|") }
    static var expectation: String { "one of " + allCases.map(\.argumentName).joined(separator: ", ") }
    var argumentDescription: String { argumentName }
}

extension ChoiceArgument where Self: RawRepresentable, RawValue == String {
    var argumentName: String { rawValue }
}

/// `--format text|json`.
enum OutputFormat: String, ChoiceArgument {
    case text, json
}

extension GGUFModel.WeightFormat: ChoiceArgument {}
extension KVCache.Precision: ChoiceArgument {}
extension BF16Activations: ChoiceArgument {}
extension CombinationType: ChoiceArgument {}

extension RouterSpec.Pooling: ChoiceArgument {
    /// The pooling choices the command line accepts, in help order (public: it witnesses `CaseIterable`).
    public static var allCases: [Self] { [.mean, .last] }
    var argumentName: String { self == .mean ? "mean" : "last" }
}

extension RouterSpec.CentroidContext: ChoiceArgument {
    /// The centroid-context choices the command line accepts, in help order (public: it witnesses `CaseIterable`).
    public static var allCases: [Self] { [.mean, .token] }
    var argumentName: String { self == .mean ? "mean" : "token" }
}

/// A comma-separated list of names (`a,b,c`), none empty.
struct NameList: ArgumentValue {
    var names: [String]

    init?(argument: String) {
        names = argument.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !names.isEmpty, !names.contains(where: \.isEmpty) else { return nil }
    }
    static var placeholder: String { "a,b,…" }
    static var expectation: String { "comma-separated names" }
    var argumentDescription: String { names.joined(separator: ",") }
}

/// Experts with weights: `name[=weight],…` (weight 1 when left out; finite numbers only).
struct WeightedExperts: ArgumentValue {
    var entries: [(name: String, weight: Float)]

    init?(argument: String) {
        var entries: [(name: String, weight: Float)] = []
        for spec in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = spec.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let name = parts.first, !name.isEmpty else { return nil }
            if parts.count == 1 {
                entries.append((name, 1))
            } else {
                guard let w = Float(argument: parts[1]) else { return nil }
                entries.append((name, w))
            }
        }
        self.entries = entries
    }
    static var placeholder: String { "NAME[=WEIGHT]" }
    static var expectation: String { "NAME[=WEIGHT],… with finite weights" }

    /// Refuses an expert named twice in `entries` (its weights would silently add up: most often
    /// a typo for another expert), naming `option` and the expert.
    static func requireDistinct(_ entries: [(name: String, weight: Float)], option: String) throws {
        if let twice = entries.map(\.name).firstRepeated() {
            throw UsageError("\(option) names expert '\(twice)' twice; give it once, with the sum of its weights")
        }
    }
    var argumentDescription: String { entries.map { "\($0.name)=\($0.weight)" }.joined(separator: ",") }
}

extension ServerOptions.LogFormat: ChoiceArgument {
    /// The log formats the command line accepts, in help order (public: it witnesses `CaseIterable`).
    public static var allCases: [Self] { [.text, .json, .off] }
}

extension Selection.PromptRouting: ChoiceArgument {
    /// The prompt-routing choices the command line accepts, in help order (public: it witnesses `CaseIterable`).
    public static var allCases: [Self] { [.perToken, .whole] }
    var argumentName: String { self == .perToken ? "per-token" : "whole" }
}
extension CompositionOptimizer: ChoiceArgument {}
extension CompositionStart: ChoiceArgument {}
extension CompositionCombination: ChoiceArgument {}
extension CompositionSelection: ChoiceArgument {}
