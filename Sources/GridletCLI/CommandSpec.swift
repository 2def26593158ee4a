/// gridlet's command-line parser: subcommands, `--name value` / `--name=value` options, flags,
/// positional arguments, `-h`/`--help`, `help <subcommand>`, `--version`, and help texts and usage
/// errors in the same format as swift-argument-parser 1.8.2, which it replaced (that package
/// links FoundationEssentials, 2.7 MB of code: docs/benchmarks.md "Binary size"). No reflection:
/// every command lists its arguments in a `Command` and reads them back from `Parsed` by name.

/// The type of an option's or positional argument's value, checked while parsing.
public enum ValueKind: Sendable {
    case string, int, double

    func accepts(_ s: String) -> Bool {
        switch self {
        case .string: return true
        case .int: return Int(s) != nil
        case .double: return Double(s) != nil
        }
    }
}

/// One argument of a command, in the order the command declares them (which is the order of the
/// usage line and the help).
public struct ArgSpec: Sendable {
    public enum Role: Sendable { case flag, option, positional }
    public var role: Role
    /// The long name without `--` (options, flags) or the value name (positional arguments).
    public var name: String
    public var help: String
    public var kind: ValueKind
    /// Used when the argument is absent, and shown in the help as `(default: ...)`.
    public var defaultValue: String?
    /// Absent is an error ("Missing expected argument").
    public var required: Bool
    /// A positional argument taking every remaining value, or an option taking the values up to
    /// the next option.
    public var repeating: Bool

    /// `--name`: true when given.
    public static func flag(_ name: String, _ help: String) -> ArgSpec {
        ArgSpec(role: .flag, name: name, help: help, kind: .string, defaultValue: nil, required: false, repeating: false)
    }

    /// `--name VALUE`: optional unless `required`; `default` when absent.
    public static func option(_ name: String, _ kind: ValueKind, _ help: String, default d: String? = nil,
                              required: Bool = false, repeating: Bool = false) -> ArgSpec {
        ArgSpec(role: .option, name: name, help: help, kind: kind, defaultValue: d, required: required, repeating: repeating)
    }

    /// `--name STRING`.
    public static func option(_ name: String, _ help: String, default d: String? = nil, required: Bool = false,
                              repeating: Bool = false) -> ArgSpec {
        option(name, .string, help, default: d, required: required, repeating: repeating)
    }

    /// A positional argument; `repeating` takes all remaining values.
    public static func positional(_ name: String, _ kind: ValueKind, _ help: String, required: Bool = false,
                                  repeating: Bool = false) -> ArgSpec {
        ArgSpec(role: .positional, name: name, help: help, kind: kind, defaultValue: nil, required: required, repeating: repeating)
    }

    /// A positional string argument.
    public static func positional(_ name: String, _ help: String, required: Bool = false, repeating: Bool = false) -> ArgSpec {
        positional(name, .string, help, required: required, repeating: repeating)
    }

    var isOptional: Bool { !required }

    /// `--name <name>`, `--name` or `<name>`.
    var label: String {
        switch role {
        case .flag: return "--\(name)"
        case .option: return "--\(name) <\(name)>"
        case .positional: return "<\(name)>"
        }
    }

    /// As in the usage line: `[--name <name>]`, `<values> ...`.
    var synopsis: String {
        var s = label
        if repeating { s += " ..." }
        return isOptional ? "[\(s)]" : s
    }
}

/// A command: a leaf with `run`, or a group of subcommands (which prints its help when run).
public final class Command: Sendable {
    public let name: String
    public let abstract: String
    public let discussion: String
    public let args: [ArgSpec]
    public let subcommands: [Command]
    /// Left out of its parent's SUBCOMMANDS list (still runs, and `help NAME` shows it).
    public let hidden: Bool
    public let run: (@Sendable (Parsed) throws -> Void)?
    let isHelp: Bool

    public init(_ name: String, abstract: String, discussion: String = "", args: [ArgSpec] = [],
                subcommands: [Command] = [], hidden: Bool = false, run: (@Sendable (Parsed) throws -> Void)? = nil) {
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.args = args
        self.subcommands = subcommands
        self.hidden = hidden
        self.run = run
        self.isHelp = false
    }

    /// The built-in `help [<subcommands> ...]` of the root command.
    init(help: ()) {
        name = "help"
        abstract = "Show subcommand help information."
        discussion = ""
        args = [.positional("subcommands", "", repeating: true)]
        subcommands = []
        hidden = false
        run = nil
        isHelp = true
    }

    func child(named n: String) -> Command? { subcommands.first { $0.name == n } }
}

/// The values of one command's arguments after parsing: given ones, else the defaults. Values
/// were checked against their `ValueKind` while parsing, so the typed accessors cannot fail.
public struct Parsed: Sendable {
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    let specs: [ArgSpec]

    public init(specs: [ArgSpec], values: [String: [String]] = [:], flags: Set<String> = []) {
        self.specs = specs
        self.values = values
        self.flags = flags
    }

    private func spec(_ name: String) -> ArgSpec {
        guard let s = specs.first(where: { $0.name == name }) else { preconditionFailure("no argument \(name)") }
        return s
    }

    public func flag(_ name: String) -> Bool {
        precondition(spec(name).role == .flag)
        return flags.contains(name)
    }

    /// Every value given (repeating arguments), else the default's, else none.
    public func strings(_ name: String) -> [String] {
        if let v = values[name] { return v }
        return spec(name).defaultValue.map { [$0] } ?? []
    }

    /// The last value given (a repeated option: the last one wins), else the default.
    public func optionalString(_ name: String) -> String? { strings(name).last }
    public func string(_ name: String) -> String {
        guard let v = optionalString(name) else { preconditionFailure("\(name) has no value and no default") }
        return v
    }
    public func optionalInt(_ name: String) -> Int? { optionalString(name).flatMap { Int($0) } }
    public func int(_ name: String) -> Int {
        guard let v = optionalInt(name) else { preconditionFailure("\(name) has no integer value") }
        return v
    }
    public func optionalDouble(_ name: String) -> Double? { optionalString(name).flatMap { Double($0) } }
    public func double(_ name: String) -> Double {
        guard let v = optionalDouble(name) else { preconditionFailure("\(name) has no number value") }
        return v
    }
    public func doubles(_ name: String) -> [Double] { strings(name).compactMap { Double($0) } }
}
