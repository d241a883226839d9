import Foundation
import Switchyard

/// One declared option, flag or positional argument: what the parser and the help need to know.
/// The property wrappers below are its typed faces; a declaration is read through its property,
/// so an accessor cannot be misspelt.
class ArgumentSlot {
    enum Kind { case option, flag, positional }

    let kind: Kind
    /// The name given in the declaration; otherwise the property's name in kebab case.
    let explicitName: String?
    let help: String
    let placeholder: String
    /// The default as help shows it (nil: none shown).
    let defaultText: String?
    let isRequired: Bool
    let isRepeatable: Bool
    /// The command-line name (without `--`), bound when the declaration is first reflected.
    fileprivate(set) var name = ""
    fileprivate(set) var wasSet = false

    init(
        kind: Kind, name: String?, help: String, placeholder: String, defaultText: String?, isRequired: Bool,
        isRepeatable: Bool
    ) {
        self.kind = kind
        explicitName = name
        self.help = help
        self.placeholder = placeholder
        self.defaultText = defaultText
        self.isRequired = isRequired
        self.isRepeatable = isRepeatable
    }

    /// How the slot appears in help and errors: `--top-k N`, `--trace`, `<prompt>`.
    var synopsis: String {
        switch kind {
        case .option: return "--\(name) \(placeholder)"
        case .flag: return "--\(name)"
        case .positional: return "<\(name)>" + (isRepeatable ? "…" : "")
        }
    }

    /// Takes one value from the command line (an option's value or a positional).
    func take(_ raw: String) throws {
        wasSet = true
        try store(raw)
    }

    /// Sets a flag.
    func raise() { wasSet = true }

    fileprivate func bind(_ propertyName: String) {
        name = explicitName ?? ArgumentSlot.kebabCase(propertyName)
    }

    /// Overridden by the typed wrappers.
    func store(_ raw: String) throws { preconditionFailure("\(type(of: self)) stores no values") }

    /// `maxTokens` → `max-tokens`, `tokenIDs` → `token-ids` (swift-argument-parser's convention).
    static func kebabCase(_ s: String) -> String {
        var out = ""
        var previous: Character? = nil
        for c in s {
            if c.isUppercase, let p = previous, p.isLowercase || p.isNumber { out.append("-") }
            out += c.lowercased()
            previous = c
        }
        return out
    }

    /// The error for a value this slot cannot take.
    func badValue(_ raw: String, expected: String) -> UsageError {
        let what = kind == .positional ? "<\(name)>" : "--\(name)"
        return UsageError("\(what) expects \(expected), got \(EscapedText.quoted(raw))")
    }
}

/// `--name VALUE`: one value (`var n: Int = 64`, last one given wins), an optional one
/// (`var router: String?`), a required one (`var out: String`, no default) or a repeatable one
/// (`var expert: [String]`, every occurrence in order).
@propertyWrapper
final class Option<Value>: ArgumentSlot {
    private var storage: Value?
    private let parse: (String, Value?) -> Value?
    private let expectation: String

    /// The parsed value (only read after a successful parse, which fills every required one).
    var wrappedValue: Value { storage! }

    private init(
        storage: Value?, name: String?, help: String, placeholder: String, expectation: String,
        defaultText: String?, required: Bool, repeatable: Bool, parse: @escaping (String, Value?) -> Value?
    ) {
        self.storage = storage
        self.parse = parse
        self.expectation = expectation
        super.init(
            kind: .option, name: name, help: help, placeholder: placeholder, defaultText: defaultText,
            isRequired: required, isRepeatable: repeatable)
    }

    override func store(_ raw: String) throws {
        guard let v = parse(raw, storage) else { throw badValue(raw, expected: expectation) }
        storage = v
    }
}

extension Option where Value: ArgumentValue {
    /// An option with a default (shown in help unless `showDefault` is false).
    convenience init(
        wrappedValue: Value, name: String? = nil, placeholder: String? = nil, help: String, showDefault: Bool = true
    ) {
        self.init(
            storage: wrappedValue, name: name, help: help, placeholder: placeholder ?? Value.placeholder,
            expectation: Value.expectation, defaultText: showDefault ? wrappedValue.argumentDescription : nil,
            required: false, repeatable: false, parse: { raw, _ in Value(argument: raw) })
    }

    /// A required option: parsing fails, naming it, when it is missing.
    convenience init(name: String? = nil, placeholder: String? = nil, help: String) {
        self.init(
            storage: nil, name: name, help: help, placeholder: placeholder ?? Value.placeholder,
            expectation: Value.expectation, defaultText: nil, required: true, repeatable: false,
            parse: { raw, _ in Value(argument: raw) })
    }
}

extension Option {
    /// An optional option: nil when not given (the default, if any, is the command's to describe).
    convenience init<T: ArgumentValue>(name: String? = nil, placeholder: String? = nil, help: String)
    where Value == T? {
        self.init(
            storage: .some(nil), name: name, help: help, placeholder: placeholder ?? T.placeholder,
            expectation: T.expectation, defaultText: nil, required: false, repeatable: false,
            parse: { raw, _ in T(argument: raw).map { .some($0) } })
    }

    /// A repeatable option: every value given, in order.
    convenience init<T: ArgumentValue>(
        wrappedValue: [T] = [], name: String? = nil, placeholder: String? = nil, help: String
    ) where Value == [T] {
        self.init(
            storage: wrappedValue, name: name, help: help, placeholder: placeholder ?? T.placeholder,
            expectation: T.expectation, defaultText: nil, required: false, repeatable: true,
            parse: { raw, previous in T(argument: raw).map { (previous ?? []) + [$0] } })
    }
}

/// `--name`: a switch, false unless given.
@propertyWrapper
final class Flag: ArgumentSlot {
    var wrappedValue: Bool { wasSet }

    init(name: String? = nil, help: String) {
        super.init(
            kind: .flag, name: name, help: help, placeholder: "", defaultText: nil, isRequired: false,
            isRepeatable: false)
    }
}

/// A positional argument: required (`var prompt: String`), optional (`var name: String?`) or
/// the rest of them (`var names: [String]`), taken in declaration order.
@propertyWrapper
final class Argument<Value>: ArgumentSlot {
    private var storage: Value?
    private let parse: (String, Value?) -> Value?
    private let expectation: String

    var wrappedValue: Value { storage! }

    private init(
        storage: Value?, name: String?, help: String, expectation: String, required: Bool, repeatable: Bool,
        parse: @escaping (String, Value?) -> Value?
    ) {
        self.storage = storage
        self.parse = parse
        self.expectation = expectation
        super.init(
            kind: .positional, name: name, help: help, placeholder: "", defaultText: nil,
            isRequired: required, isRepeatable: repeatable)
    }

    override func store(_ raw: String) throws {
        guard let v = parse(raw, storage) else { throw badValue(raw, expected: expectation) }
        storage = v
    }
}

extension Argument where Value: ArgumentValue {
    convenience init(name: String? = nil, help: String) {
        self.init(
            storage: nil, name: name, help: help, expectation: Value.expectation, required: true, repeatable: false,
            parse: { raw, _ in Value(argument: raw) })
    }
}

extension Argument {
    convenience init<T: ArgumentValue>(name: String? = nil, help: String) where Value == T? {
        self.init(
            storage: .some(nil), name: name, help: help, expectation: T.expectation, required: false, repeatable: false,
            parse: { raw, _ in T(argument: raw).map { .some($0) } })
    }

    convenience init<T: ArgumentValue>(name: String? = nil, help: String) where Value == [T] {
        self.init(
            storage: [], name: name, help: help, expectation: T.expectation, required: false, repeatable: true,
            parse: { raw, previous in T(argument: raw).map { (previous ?? []) + [$0] } })
    }
}

/// Options declared in another `ParsableArguments` type and shared between commands
/// (`@OptionGroup var model: ModelOptions`), as swift-argument-parser's `@OptionGroup`.
@propertyWrapper
final class OptionGroup<Group: ParsableArguments> {
    let wrappedValue: Group
    init() { wrappedValue = Group() }
}

/// An option group seen without its type, for reflection.
protocol AnyOptionGroup { var members: any ParsableArguments { get } }
extension OptionGroup: AnyOptionGroup { var members: any ParsableArguments { wrappedValue } }

/// The slots and groups of `arguments`, in declaration order (groups expanded in place).
func reflectDeclarations(_ arguments: any ParsableArguments) -> (slots: [ArgumentSlot], groups: [any ParsableArguments])
{
    var slots: [ArgumentSlot] = []
    var groups: [any ParsableArguments] = [arguments]
    for child in Mirror(reflecting: arguments).children {
        let property = child.label.map { $0.hasPrefix("_") ? String($0.dropFirst()) : $0 } ?? ""
        if let slot = child.value as? ArgumentSlot {
            slot.bind(property)
            slots.append(slot)
        } else if let group = child.value as? AnyOptionGroup {
            let inner = reflectDeclarations(group.members)
            slots += inner.slots
            groups += inner.groups
        }
    }
    return (slots, groups)
}
