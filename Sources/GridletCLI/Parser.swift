/// What the command line asks for.
public enum Outcome {
    /// Run this command (the last of `path`) with these values.
    case run(path: [Command], Parsed)
    /// Print the help of the last command of `path` to standard output, exit 0.
    case help(path: [Command])
    /// Print the version, exit 0.
    case version
    /// A usage error: print `text` to standard error, exit 2 (SPEC §5).
    case usageError(text: String)
}

/// An option's name as typed: `--name`, `-x`, or `-name` (several short options, or none).
enum OptionName: Equatable {
    case long(String), short(Character), longSingleDash(String)

    var synopsis: String {
        switch self {
        case let .long(n): return "--\(n)"
        case let .short(c): return "-\(c)"
        case let .longSingleDash(n): return "-\(n)"
        }
    }
}

/// One element of the command line. `sub` marks the single letters of a `-abc` group; the group
/// itself is an element too.
struct Token: Equatable {
    enum Kind: Equatable {
        case value(String)
        case option(OptionName, value: String?)
        case terminator
    }
    var index: Int
    var sub: Int?
    var kind: Kind

    var isValue: Bool { if case .value = kind { return true } else { return false } }
}

enum ParseError: Error {
    case invalidOption(String)
    case unknownOption(OptionName)
    case missingValue(ArgSpec, OptionName)
    case unexpectedValue(OptionName, String)
    case invalidValue(ArgSpec, OptionName?, String)
    case missingArgument(ArgSpec)
    case extraValues([String])
}

public struct CommandLineParser: Sendable {
    public let root: Command
    public let version: String
    let helpCommand = Command(help: ())

    public init(root: Command, version: String) {
        self.root = root
        self.version = version
    }

    /// Splits the arguments into tokens; everything after `--` is a value.
    static func tokenize(_ arguments: [String]) throws -> [Token] {
        var tokens: [Token] = []
        var terminated = false
        for (i, arg) in arguments.enumerated() {
            if terminated {
                tokens.append(Token(index: i, kind: .value(arg)))
                continue
            }
            let dashes = arg.prefix(while: { $0 == "-" }).count
            let rest = arg.dropFirst(dashes)
            if rest.isEmpty {
                switch dashes {
                case 0, 1: tokens.append(Token(index: i, kind: .value(arg)))
                case 2:
                    tokens.append(Token(index: i, kind: .terminator))
                    terminated = true
                default: throw ParseError.invalidOption(arg)
                }
                continue
            }
            switch dashes {
            case 0:
                tokens.append(Token(index: i, kind: .value(arg)))
            case 1:
                if let eq = rest.firstIndex(of: "=") {
                    let n = rest[..<eq]
                    guard !n.isEmpty else { throw ParseError.invalidOption("-" + rest) }
                    let name: OptionName = n.count == 1 ? .short(n.first!) : .longSingleDash(String(n))
                    tokens.append(Token(index: i, kind: .option(name, value: String(rest[rest.index(after: eq)...]))))
                } else if rest.count == 1 {
                    tokens.append(Token(index: i, kind: .option(.short(rest.first!), value: nil)))
                } else {
                    tokens.append(Token(index: i, kind: .option(.longSingleDash(String(rest)), value: nil)))
                    if rest.allSatisfy({ $0.isLetter || $0.isNumber }) {
                        for (j, c) in rest.enumerated() { tokens.append(Token(index: i, sub: j, kind: .option(.short(c), value: nil))) }
                    }
                }
            case 2:
                if let eq = rest.firstIndex(of: "=") {
                    let n = rest[..<eq]   // `--=x` is an (unknown) option named "" (as swift-argument-parser had it)
                    tokens.append(Token(index: i, kind: .option(.long(String(n)), value: String(rest[rest.index(after: eq)...]))))
                } else {
                    tokens.append(Token(index: i, kind: .option(.long(String(rest)), value: nil)))
                }
            default:
                throw ParseError.invalidOption(arg)
            }
        }
        return tokens
    }

    /// Parses `arguments` (without the program name).
    public func parse(_ arguments: [String]) -> Outcome {
        var path = [root]
        let tokens: [Token]
        do { tokens = try Self.tokenize(arguments) } catch { return .usageError(text: errorText(error, path: path)) }
        var rest = tokens
        var parsed = Parsed(specs: [])
        do {
            while true {
                let command = path.last!
                do {
                    parsed = try parseLevel(command, &rest)
                } catch let ParseError.missingArgument(spec) {
                    if let o = builtIn(rest, path: path) { return o }
                    throw ParseError.missingArgument(spec)
                }
                guard let first = rest.first, case let .value(v) = first.kind,
                      let next = command.child(named: v) ?? (command === root && v == "help" ? helpCommand : nil) else { break }
                rest.removeFirst()
                path.append(next)
            }
            if let o = builtIn(rest, path: path) { return o }
            for t in rest { if case let .option(name, _) = t.kind { throw ParseError.unknownOption(name) } }
            let extra = rest.compactMap { t -> String? in
                guard t.sub == nil, case let .value(v) = t.kind else { return nil }
                return v
            }
            if !extra.isEmpty { throw ParseError.extraValues(extra) }
        } catch {
            return .usageError(text: errorText(error, path: path))
        }
        let command = path.last!
        if command.isHelp {
            var stack = [root]
            for name in parsed.strings("subcommands") {
                guard let c = stack.last!.child(named: name) ?? (stack.count == 1 && name == "help" ? helpCommand : nil) else { break }
                stack.append(c)
            }
            return .help(path: stack)
        }
        guard command.run != nil else { return .help(path: path) }
        return .run(path: path, parsed)
    }

    /// `-h`/`--help`/`--help-hidden` (not inside `help`) anywhere in what is left, then `--version`.
    private func builtIn(_ rest: [Token], path: [Command]) -> Outcome? {
        let names = rest.compactMap { t -> OptionName? in
            if case let .option(n, _) = t.kind { return n }
            return nil
        }
        // `--help-hidden` would add hidden arguments: gridlet has none.
        if !path.last!.isHelp, names.contains(.short("h")) || names.contains(.long("help")) || names.contains(.long("help-hidden")) {
            return .help(path: path)
        }
        if names.contains(.long("version")) { return .version }
        return nil
    }

    /// One command's arguments: options wherever they are (unknown ones stay for later), then the
    /// positional values in order, then the required check. Removes what it used from `rest`.
    private func parseLevel(_ command: Command, _ rest: inout [Token]) throws -> Parsed {
        var p = Parsed(specs: command.args)
        var i = 0
        while i < rest.count {
            let t = rest[i]
            guard case let .option(name, attached) = t.kind else { i += 1; continue }
            if command.isHelp, name == .short("h") || name == .long("help") || name == .longSingleDash("help") {
                removeToken(at: i, from: &rest)
                continue
            }
            guard case let .long(n) = name, let spec = command.args.first(where: { $0.role != .positional && $0.name == n }) else {
                i += 1
                continue
            }
            if spec.role == .flag {
                if let v = attached { throw ParseError.unexpectedValue(name, v) }
                p.flags.insert(spec.name)
                removeToken(at: i, from: &rest)
                continue
            }
            removeToken(at: i, from: &rest)
            var got: [String] = []
            if let v = attached {
                guard !v.isEmpty else { throw ParseError.missingValue(spec, name) }
                got.append(v)
            } else if i < rest.count, case let .value(v) = rest[i].kind {
                got.append(v)
                rest.remove(at: i)
            } else {
                throw ParseError.missingValue(spec, name)
            }
            if spec.repeating {
                while i < rest.count, case let .value(v) = rest[i].kind {
                    got.append(v)
                    rest.remove(at: i)
                }
            }
            for v in got {
                guard spec.kind.accepts(v) else { throw ParseError.invalidValue(spec, name, v) }
            }
            p.values[spec.name] = spec.repeating ? (p.values[spec.name] ?? []) + got : [got.last!]
        }
        // Positional values, in order; options and `--` are skipped (and stay).
        var used: [Int] = []
        var candidates = rest.indices.filter { rest[$0].sub == nil && rest[$0].isValue }[...]
        for spec in command.args where spec.role == .positional {
            repeat {
                guard let k = candidates.popFirst(), case let .value(v) = rest[k].kind else { break }
                guard spec.kind.accepts(v) else { throw ParseError.invalidValue(spec, nil, v) }
                p.values[spec.name, default: []].append(v)
                used.append(k)
            } while spec.repeating
        }
        for k in used.reversed() { rest.remove(at: k) }
        for spec in command.args where spec.required && p.values[spec.name] == nil {
            throw ParseError.missingArgument(spec)
        }
        return p
    }

    /// Removes a token and, for a `-abc` group, its single letters.
    private func removeToken(at i: Int, from rest: inout [Token]) {
        let t = rest.remove(at: i)
        if t.sub == nil { while i < rest.count, rest[i].index == t.index, rest[i].sub != nil { rest.remove(at: i) } }
    }

    // MARK: Messages

    func errorText(_ error: Error, path: [Command]) -> String {
        let command = path.last!
        var message = ""
        var help = ""
        switch error as? ParseError {
        case let .invalidOption(s)?: message = "Invalid option: \(s)"
        case let .unknownOption(name)?:
            message = "Unknown option '\(name.synopsis)'"
            if case .short = name {} else {
                var best: (String, Int)?
                for spec in command.args where spec.role != .positional {
                    let candidate = "--" + spec.name
                    let d = editDistance(candidate, name.synopsis)
                    if d < 4, best == nil || d < best!.1 { best = (candidate, d) }
                }
                if let (s, _) = best { message += ". Did you mean '\(s)'?" }
            }
        case let .missingValue(spec, name)?:
            message = "Missing value for '\(name.synopsis) <\(spec.name)>'"
            help = "\(name.synopsis) <\(spec.name)>  \(spec.help)"
        case let .unexpectedValue(name, v)?:
            message = "The option '\(name.synopsis)' does not take any value, but '\(v)' was specified."
        case let .invalidValue(spec, name, v)?:
            let what = name.map { "\($0.synopsis) <\(spec.name)>" } ?? "<\(spec.name)>"
            message = "The value '\(v)' is invalid for '\(what)'"
            if !spec.help.isEmpty { help = "\(what)  \(spec.help)" }
        case let .missingArgument(spec)?:
            var s = spec.label
            if spec.repeating { s += " ..." }
            message = "Missing expected argument '\(s)'"
            if !spec.help.isEmpty { help = "\(spec.label)  \(spec.help)" }
        case let .extraValues(v)?:
            message = v.count == 1 ? "Unexpected argument '\(v[0])'" : "\(v.count) unexpected arguments: '\(v.joined(separator: "', '"))'"
        case nil: message = "\(error)"
        }
        var text = "Error: \(message)\n"
        if !help.isEmpty { text += "Help:  \(help)\n" }
        text += "Usage: \(usage(path))"
        if !command.isHelp { text += "\n  See '\(path.map(\.name).joined(separator: " ")) --help' for more information." }
        return text
    }

    /// The usage line: the arguments' synopses; with more than 12, only the required ones.
    func usage(_ path: [Command]) -> String {
        let command = path.last!
        let tool = path.map(\.name).joined(separator: " ")
        var usage: String
        if command.args.isEmpty {
            usage = tool
        } else if command.args.count > 12 {
            let kept = command.args.filter { $0.role == .positional || $0.required }
            usage = kept.isEmpty ? "\(tool) <options>" : "\(tool) [<options>] " + kept.map(\.synopsis).joined(separator: " ")
        } else {
            usage = tool + " " + command.args.map(\.synopsis).joined(separator: " ")
        }
        if !command.subcommands.isEmpty || command === root {
            if usage.last != " " { usage += " " }
            usage += "<subcommand>"
        }
        return usage
    }
}

/// Levenshtein distance (for "Did you mean").
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var previous = Array(0...b.count)
    var current = previous
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] : 1 + min(previous[j - 1], previous[j], current[j - 1])
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
