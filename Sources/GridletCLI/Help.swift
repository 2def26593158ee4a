import Glibc

extension CommandLineParser {
    /// The help of the last command of `path`, wrapped to `width` columns (no final newline).
    public func helpText(_ path: [Command], width: Int = terminalWidth()) -> String {
        let command = path.last!
        var abstract = command.abstract
        if !command.discussion.isEmpty {
            if !abstract.isEmpty { abstract += "\n" }
            abstract += "\n" + command.discussion
        }
        var arguments: [(String, String)] = []
        var options: [(String, String)] = []
        for spec in command.args {
            var text = spec.help
            if let d = spec.defaultValue, !d.isEmpty { text += (text.isEmpty ? "" : " ") + "(default: \(d))" }
            if spec.role == .positional { arguments.append((spec.label, text)) } else { options.append((spec.label, text)) }
        }
        options.append(("--version", "Show the version."))
        if !command.isHelp { options.append(("-h, --help", "Show help information.")) }
        let subcommands = command.subcommands.filter { !$0.hidden }.map { ($0.name, $0.abstract) }
        let sections = [("ARGUMENTS", arguments), ("OPTIONS", options), ("SUBCOMMANDS", subcommands)]
            .filter { !$0.1.isEmpty }
            .map { title, rows in title + ":\n" + rows.map { Self.row($0.0, $0.1, width: width) }.joined() }
            .joined(separator: "\n")
        var text = abstract.isEmpty ? "" : wrap("OVERVIEW: \(abstract)", to: width) + "\n\n"
        text += "USAGE: \(usage(path))\n\n" + sections
        if !subcommands.isEmpty {
            var names = path.map(\.name)
            names.insert("help", at: 1)
            text += "\n  See '\(names.joined(separator: " ")) <subcommand>' for detailed help."
        }
        return text
    }

    /// `  label` and the wrapped text from column 26 (on the next line when the label is wider).
    static func row(_ label: String, _ abstract: String, width: Int) -> String {
        let padded = "  " + label
        guard !abstract.isEmpty else { return padded + "\n" }
        let wrapped = wrap(abstract, to: width, indent: 26)
        return padded + (padded.count < 26 ? String(wrapped.dropFirst(padded.count)) : "\n" + wrapped) + "\n"
    }
}

/// COLUMNS when set, else the terminal's width on standard output, else 80.
public func terminalWidth() -> Int {
    if let c = getenv("COLUMNS"), let n = Int(String(cString: c)) { return n }
    var w = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 { return Int(w.ws_col) }
    return 80
}

/// Word-wraps `text` to `columns`, every line indented by `indent` spaces: lines break at the
/// last space that fits (a longer word stays whole), and at the text's own newlines.
func wrap(_ text: String, to columns: Int, indent: Int = 0) -> String {
    let width = columns - indent
    guard width > 0 else { return "" }
    var lines: [Substring] = []
    var rest = text[...]
    while true {
        let chunk = rest.prefix(width)
        if let nl = chunk.lastIndex(of: "\n") {
            lines.append(contentsOf: rest[..<nl].split(separator: "\n", omittingEmptySubsequences: false))
            rest = rest[rest.index(after: nl)...]
        } else if chunk.endIndex == rest.endIndex {
            lines.append(rest)
            break
        } else if let sp = chunk.lastIndex(of: " ") {
            lines.append(rest[..<sp])
            rest = rest[rest.index(after: sp)...]
        } else if let sp = rest.firstIndex(of: " ") {
            lines.append(rest[..<sp])
            rest = rest[rest.index(after: sp)...]
        } else {
            lines.append(rest)
            break
        }
    }
    let pad = String(repeating: " ", count: indent)
    return lines.map { $0.isEmpty ? "" : pad + $0 }.joined(separator: "\n")
}
