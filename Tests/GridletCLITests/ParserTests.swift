import Testing
@testable import GridletCLI

/// A small tree in the shape of gridlet's: a leaf with options, flags and positionals, a group.
private let leaf = Command("run", abstract: "Run it.", args: [
    .positional("device", "The device.", required: true),
    .positional("points", "Only these.", repeating: true),
    .option("config", "Configuration file.", default: "/etc/x.yaml"),
    .option("port", .int, "The port.", default: "1883"),
    .option("level", .double, "A level."),
    .option("many", "Several values.", repeating: true),
    .flag("json", "Print JSON."),
]) { _ in }
private let write = Command("write", abstract: "Write.", args: [
    .option("address", "Register address.", required: true),
    .positional("values", .double, "Values.", required: true, repeating: true),
]) { _ in }
private let group = Command("modbus", abstract: "Raw Modbus.", subcommands: [write])
private let secret = Command("secret", abstract: "Hidden.", hidden: true) { _ in }
private let root = Command("tool", abstract: "A tool.", subcommands: [leaf, group, secret])
private let parser = CommandLineParser(root: root, version: "1.2.3")

private func parse(_ line: String) -> Outcome { parser.parse(line.split(separator: " ").map(String.init)) }

private func error(_ line: String) -> String? {
    if case let .usageError(text) = parse(line) { return text }
    return nil
}

private func values(_ line: String) -> Parsed? {
    if case let .run(_, p) = parse(line) { return p }
    return nil
}

private func helpPath(_ line: String) -> [String]? {
    if case let .help(path) = parse(line) { return path.map(\.name) }
    return nil
}

@Suite struct ParserTests {
    @Test func valuesDefaultsAndForms() throws {
        let p = try #require(values("run meter a b --config=/c.yaml --port 99 --json --many x y --level 1.5"))
        #expect(p.string("device") == "meter")
        #expect(p.strings("points") == ["a", "b"])
        #expect(p.string("config") == "/c.yaml")
        #expect(p.int("port") == 99)
        #expect(p.flag("json"))
        #expect(p.strings("many") == ["x", "y"])
        #expect(p.optionalDouble("level") == 1.5)
        let d = try #require(values("run meter"))
        #expect(d.string("config") == "/etc/x.yaml" && d.int("port") == 1883 && !d.flag("json") && d.optionalDouble("level") == nil)
        #expect(d.strings("points").isEmpty)
        // A repeated option: the last value wins.
        #expect(values("run m --port 1 --port 2")?.int("port") == 2)
        // After `--` everything is a value.
        #expect(values("run -- --json")?.string("device") == "--json")
    }

    @Test func helpVersionAndGroups() {
        #expect(helpPath("") == ["tool"])
        #expect(helpPath("--help") == ["tool"])
        #expect(helpPath("run -h") == ["tool", "run"])
        #expect(helpPath("run --bogus --help") == ["tool", "run"])
        #expect(helpPath("run -hx") == ["tool", "run"])
        #expect(helpPath("help run") == ["tool", "run"])
        #expect(helpPath("help modbus write extra") == ["tool", "modbus", "write"])
        #expect(helpPath("help nothing") == ["tool"])
        #expect(helpPath("modbus") == ["tool", "modbus"])
        #expect(helpPath("modbus -h write") == ["tool", "modbus"])
        // A missing required argument yields to a help request.
        #expect(helpPath("modbus write -h") == ["tool", "modbus", "write"])
        if case .version = parse("run --version") {} else { Issue.record("run --version is not the version") }
        if case .version = parse("help --version") {} else { Issue.record("help --version is not the version") }
    }

    @Test func usageErrors() {
        let usage = "Usage: tool run <device> [<points> ...] [--config <config>] [--port <port>] [--level <level>] [--many <many> ...] [--json]\n  See 'tool run --help' for more information."
        #expect(error("run m --bogus") == "Error: Unknown option '--bogus'\n" + usage)
        #expect(error("run m --jsn") == "Error: Unknown option '--jsn'. Did you mean '--json'?\n" + usage)
        #expect(error("run m -x") == "Error: Unknown option '-x'\n" + usage)
        #expect(error("run m --port abc") == "Error: The value 'abc' is invalid for '--port <port>'\nHelp:  --port <port>  The port.\n" + usage)
        #expect(error("run m --port") == "Error: Missing value for '--port <port>'\nHelp:  --port <port>  The port.\n" + usage)
        #expect(error("run m --port --json") == "Error: Missing value for '--port <port>'\nHelp:  --port <port>  The port.\n" + usage)
        #expect(error("run m --config=") == "Error: Missing value for '--config <config>'\nHelp:  --config <config>  Configuration file.\n" + usage)
        #expect(error("run m --port -1") == "Error: Missing value for '--port <port>'\nHelp:  --port <port>  The port.\n" + usage)
        #expect(error("run m --json=1") == "Error: The option '--json' does not take any value, but '1' was specified.\n" + usage)
        #expect(error("run") == "Error: Missing expected argument '<device>'\nHelp:  <device>  The device.\n" + usage)
        // A value error comes before a help request (as swift-argument-parser did).
        #expect(error("run m --port abc --help")?.hasPrefix("Error: The value 'abc'") == true)
        #expect(error("frob") == "Error: Unexpected argument 'frob'\nUsage: tool <subcommand>\n  See 'tool --help' for more information.")
        #expect(error("modbus a b") == "Error: 2 unexpected arguments: 'a', 'b'\nUsage: tool modbus <subcommand>\n  See 'tool modbus --help' for more information.")
        #expect(error("run ---x") == "Error: Invalid option: ---x\nUsage: tool <subcommand>\n  See 'tool --help' for more information.")
        #expect(error("help run --bogus") == "Error: Unknown option '--bogus'\nUsage: tool help [<subcommands> ...]")
        let w = "Usage: tool modbus write --address <address> <values> ...\n  See 'tool modbus write --help' for more information."
        #expect(error("modbus write 1") == "Error: Missing expected argument '--address <address>'\nHelp:  --address <address>  Register address.\n" + w)
        #expect(error("modbus write --address 1") == "Error: Missing expected argument '<values> ...'\nHelp:  <values>  Values.\n" + w)
        #expect(error("modbus write --address 1 x") == "Error: The value 'x' is invalid for '<values>'\nHelp:  <values>  Values.\n" + w)
    }

    @Test func helpText() {
        let text = parser.helpText([root, leaf], width: 80)
        #expect(text == """
            OVERVIEW: Run it.

            USAGE: tool run <device> [<points> ...] [--config <config>] [--port <port>] [--level <level>] [--many <many> ...] [--json]

            ARGUMENTS:
              <device>                The device.
              <points>                Only these.

            OPTIONS:
              --config <config>       Configuration file. (default: /etc/x.yaml)
              --port <port>           The port. (default: 1883)
              --level <level>         A level.
              --many <many>           Several values.
              --json                  Print JSON.
              --version               Show the version.
              -h, --help              Show help information.

            """)
        let top = parser.helpText([root], width: 80)
        #expect(top.hasSuffix("SUBCOMMANDS:\n  run                     Run it.\n  modbus                  Raw Modbus.\n\n  See 'tool help <subcommand>' for detailed help."))
        #expect(!top.contains("secret"))
    }

    @Test func wrapping() {
        // A line stops before the last space within the width (so it is at most width - 1 long).
        #expect(wrap("aaa bbb ccc", to: 7) == "aaa\nbbb ccc")
        #expect(wrap("aaa bbb ccc", to: 8) == "aaa bbb\nccc")
        #expect(wrap("aaa bbb", to: 10, indent: 4) == "    aaa\n    bbb")
        #expect(wrap("averyveryverylongword x", to: 8) == "averyveryverylongword\nx")
        #expect(wrap("one\n\ntwo", to: 80) == "one\n\ntwo")
        #expect(editDistance("--boar", "--board") == 1)
        #expect(editDistance("kitten", "sitting") == 3)
    }
}
