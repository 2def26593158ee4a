import Glibc
import GridletAgent
import GridletCLI
import GridletCore
import GridletYAML

/// The command tree (GridletCLI): each command's arguments in the order of its usage line and help.
let gridletCommand = Command(
    "gridlet", abstract: "Edge agent for EV chargers and meters: Modbus in, MQTT out, local control when offline.",
    subcommands: [Run.command, Status.command, Read.command, ConfigCommand.command, Profiles.command, Simulate.command,
                  Boards.command, Events.command, OptOut.command, Schedule.command, Scan.command, ModbusCommand.command,
                  BenchPoll.command, QueueCommand.command, VersionCommand.command, LedgerCommand.command])

/// Exit codes (SPEC §5): 0 ok, 1 failure, 2 usage or configuration error.
struct Failure: Error, CustomStringConvertible {
    var description: String
    var code: Int32
    init(_ d: String, code: Int32 = 1) { description = d; self.code = code }
}

func loadConfig(_ path: String, board: String? = nil) throws -> ConfigLoading.Loaded {
    do {
        return try ConfigLoading.load(path: path, board: board)
    } catch {
        throw Failure("configuration error: \(error)", code: 2)
    }
}

/// `--socket` when given, else where the daemon of that configuration listens.
func socketPath(config: String?, socket: String?) throws -> String {
    if let s = socket { return s }
    let loaded = try loadConfig(config ?? "/etc/gridlet/gridlet.yaml")
    return SocketPath.resolve(configured: loaded.config.site.socket)
}

struct Run {
    static let command = Command("run", abstract: "Run the agent (the daemon; systemd Type=notify).", args: [
        .option("config", "Configuration file.", default: "/etc/gridlet/gridlet.yaml"),
        .flag("demo", "Run on the embedded default: simulated meter and charger in this process, broker on 127.0.0.1."),
        .option("mqtt-port", .int, "With --demo: the broker's port.", default: "1883"),
        .option("state-dir", "With --demo: state directory.", default: "/tmp/gridlet-demo"),
        .option("log-level", "Log level: error, warning, notice, info, debug (overrides log.level)."),
        .option("board", "Board name or board file whose defaults apply (overrides the board: key)."),
    ]) { try Run($0).run() }

    let config: String, demo: Bool, mqttPort: Int, stateDir: String, logLevel: String?, board: String?
    init(_ p: Parsed) {
        config = p.string("config"); demo = p.flag("demo"); mqttPort = p.int("mqtt-port"); stateDir = p.string("state-dir")
        logLevel = p.optionalString("log-level"); board = p.optionalString("board")
    }

    func run() throws {
        MallocArenas.useOne()
        if let l = logLevel, LogLevel(name: l) == nil { throw Failure("unknown log level \(l); use error, warning, notice, info or debug", code: 2) }
        var log = Logger(label: "gridlet", minimum: logLevel.flatMap { LogLevel(name: $0) } ?? .info)
        var site: Demo.Site?
        let loaded: ConfigLoading.Loaded
        if demo {
            let s: Demo.Site
            do { s = try Demo.Site(stateDir: stateDir, mqttPort: mqttPort) } catch { throw Failure("demo: \(error) (the demo needs a writable --state-dir, default /tmp/gridlet-demo, and free loopback ports)") }
            site = s
            loaded = s.loaded
            log.notice("demo: simulated meter on 127.0.0.1:\(s.meterPort), charger on 127.0.0.1:\(s.chargerPort); broker 127.0.0.1:\(mqttPort)")
        } else {
            loaded = try loadConfig(config, board: board)
        }
        if logLevel == nil, let l = LogLevel(name: loaded.config.log.level.rawValue) { log = Logger(label: "gridlet", minimum: l) }
        do {
            let agent = try Agent(config: loaded.config, profiles: loaded.profiles, logger: log)
            try agent.run()
        } catch {
            site?.stop()
            throw Failure("\(error)")
        }
        site?.stop()
    }
}

struct Status {
    static let command = Command(
        "status", abstract: "Show the running daemon's state (limit, source, readings, comm, queue, MQTT).",
        discussion: """
            Problems come first, in words; times are local to site.timezone, with their age. --json prints the daemon's \
            status document unchanged. --watch redraws every second until Ctrl-C (or --count redraws); with --line it \
            prints one summary line per second instead.
            """,
        args: [
            .flag("json", "Print JSON."),
            .option("config", "Configuration file (to find the socket)."),
            .option("socket", "The daemon's socket."),
            .flag("watch", "Redraw every second until Ctrl-C."),
            .flag("line", "One summary line (per second with --watch)."),
            .option("count", .int, "With --watch: stop after this many updates (0 = until Ctrl-C).", default: "0"),
        ]) { try Status($0).run() }
    let json: Bool, config: String?, socket: String?, watch: Bool, line: Bool, count: Int
    init(_ p: Parsed) {
        json = p.flag("json"); config = p.optionalString("config"); socket = p.optionalString("socket")
        watch = p.flag("watch"); line = p.flag("line"); count = p.int("count")
    }

    func run() throws {
        guard count >= 0 else { throw Failure("--count must be 0 (until Ctrl-C) or more", code: 2) }
        guard !(json && watch) else { throw Failure("--json and --watch do not go together; for a JSON stream, run --json in a loop", code: 2) }
        let path = try socketPath(config: config, socket: socket)
        guard watch else {
            let text = try report(path)
            print(text)
            return
        }
        installSimulatorSignals()   // SIGINT/SIGTERM end the loop (the flag is shared with `simulate`)
        var n = 0
        var zone: TimeZoneRules?
        while !simulatorStop() {
            var text: String
            do { text = try report(path, zone: &zone) } catch { text = "\(error)" }
            writeOut(line ? text + "\n" : "\u{1B}[H\u{1B}[2J" + text + "\n")
            n += 1
            if count > 0, n >= count { break }
            // Until the next whole second, in steps that notice Ctrl-C.
            let wait = 1000 - Int(wallMs() % 1000)
            var slept = 0
            while slept < wait, !simulatorStop() { usleep(useconds_t(min(100, wait - slept) * 1000)); slept += 100 }
        }
    }

    func report(_ path: String) throws -> String {
        var zone: TimeZoneRules?
        return try report(path, zone: &zone)
    }

    /// The text for one update; `zone` is loaded once (from the daemon's site.timezone).
    func report(_ path: String, zone: inout TimeZoneRules?) throws -> String {
        let text: String
        switch LocalClient.request("status", socketPath: path) {
        case let .failure(e): throw Failure(e.description)
        case let .success(t): text = t
        }
        if json { return text }
        guard let v = try? JSONValue.parse(text) else {
            throw Failure("unreadable answer from the daemon at \(path): \(text.prefix(200))\(versionHint)")
        }
        if zone == nil { zone = StatusText.zone(named: v["site"]?["timezone"]?.stringValue) }
        // What the source becomes next (`then default`); the status is shown without it if this fails.
        var transitions: [JSONValue] = []
        if case let .success(s) = LocalClient.request("schedule 1", socketPath: path), let sv = try? JSONValue.parse(s) {
            transitions = sv["transitions"]?.arrayValue ?? []
        }
        let report = StatusText(status: v, transitions: transitions, nowMs: wallMs(), zone: zone ?? .utc)
        return line ? report.line() : report.render()
    }
}

/// Wall-clock milliseconds (the CLI's own clock, for ages).
func wallMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Writes to standard output at once (a `--watch --line` piped to a file shows every line).
func writeOut(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes = bytes.dropFirst(n)
    }
}

struct Read {
    static let command = Command("read", abstract: "Read every point of a configured device (through the daemon when it runs).", args: [
        .positional("device", "Device name from the configuration.", required: true),
        .positional("points", "Only these points.", repeating: true),
        .option("config", "Configuration file.", default: "/etc/gridlet/gridlet.yaml"),
        .flag("json", "Print JSON."),
    ]) { try Read($0).run() }
    let device: String, points: [String], config: String, json: Bool
    init(_ p: Parsed) { device = p.string("device"); points = p.strings("points"); config = p.string("config"); json = p.flag("json") }

    func run() throws {
        let loaded = try loadConfig(config)
        guard let d = loaded.config.devices.first(where: { $0.name == device }) else {
            throw Failure("no device '\(device)' in \(config); configured: \(loaded.config.devices.map(\.name).joined(separator: ", "))", code: 2)
        }
        let answer = try DeviceRead.request(d, points: points, configuration: loaded)
        guard let v = try? JSONValue.parse(answer) else { print(answer); throw Failure("unreadable answer from \(device)\(versionHint)") }
        if json { print(answer) } else {
            if v["ok"]?.boolValue != true { throw Failure(ModbusHint.explained(v["error"]?.stringValue ?? answer)) }
            for (name, p) in v["points"]?.objectValue ?? [] {
                let value = p["value"]?.doubleValue.map { JSONValue.format($0) } ?? "n/a"
                print("\(name.padding(18)) \(value) \(p["unit"]?.stringValue ?? "")")
            }
        }
        if v["ok"]?.boolValue != true { throw Failure("", code: 1) }
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

enum ConfigCommand {
    static let command = Command("config", abstract: "Configuration tools.", subcommands: [Check.command])

    struct Check {
        static let command = Command("check", abstract: "Validate a configuration file; exit 2 when it is invalid.", args: [
            .positional("path", "The file.", required: true),
            .option("board", "Board name or board file whose defaults apply (as with run --board)."),
            .flag("json", "Print JSON ({\"ok\":false,\"error\":...} when invalid; exit 2 all the same)."),
        ]) { try Check($0).run() }
        let path: String, board: String?, json: Bool
        init(_ p: Parsed) { path = p.string("path"); board = p.optionalString("board"); json = p.flag("json") }
        func run() throws {
            let loaded: ConfigLoading.Loaded
            do {
                loaded = try loadConfig(path, board: board)
            } catch let f as Failure {
                if json { print(JSONValue.object([("ok", .bool(false)), ("path", .string(path)), ("error", .string(f.description))]).serialized) }
                throw f
            }
            let c = loaded.config
            if json {
                print(JSONValue.object([("ok", .bool(true)), ("path", .string(path)), ("site", .string(c.site.id)),
                                        ("buses", .array(c.buses.map { .string($0.name) })),
                                        ("devices", .array(c.devices.map { .string($0.name) }))]).serialized)
            } else {
                print("\(path): ok (site \(c.site.id), \(c.buses.count) bus(es), \(c.devices.count) device(s))")
            }
        }
    }
}

struct Profiles {
    static let command = Command("profiles", abstract: "List the built-in device profiles, or print one.", args: [
        .positional("name", "Print this profile's YAML."),
        .flag("json", "Print JSON."),
    ]) { try Profiles($0).run() }
    let name: String?, json: Bool
    init(_ p: Parsed) { name = p.optionalString("name"); json = p.flag("json") }

    func run() throws {
        if let name {
            guard let text = BuiltinProfiles.yaml(named: name) else {
                throw Failure("no built-in profile '\(name)'; built-in: \(ProfileLibrary.builtinNames.joined(separator: ", "))", code: 2)
            }
            print(text)
            return
        }
        var rows: [JSONValue] = []
        for n in ProfileLibrary.builtinNames {
            do {
                guard let p = try ProfileLibrary.builtin(named: n) else { continue }
                rows.append(.object([("name", .string(p.name)), ("kind", .string(p.kind.rawValue)), ("vendor", .string(p.vendor)),
                                     ("model", .string(p.model)), ("transport", .string(p.transport)),
                                     ("points", .number(Double(p.points.count)))]))
                if !json { print("\(p.name.padding(22)) \(p.kind.rawValue.padding(8)) \(p.vendor) \(p.model) (\(p.transport), \(p.points.count) points)") }
            } catch {
                throw Failure("built-in profile \(n) is broken: \(error); this build is faulty: reinstall gridlet, and report it with the output of gridlet --version")
            }
        }
        if json { print(JSONValue.array(rows).serialized) }
    }
}
