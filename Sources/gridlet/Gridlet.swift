import ArgumentParser
import GridletAgent
import GridletCore
import GridletYAML

struct Gridlet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gridlet",
        abstract: "Edge agent for EV chargers and meters: Modbus in, MQTT out, local control when offline.",
        version: gridletVersion,
        subcommands: [Run.self, Status.self, Read.self, ConfigCommand.self, Profiles.self, Simulate.self, Boards.self,
                      Events.self, OptOut.self, Schedule.self, Scan.self, ModbusCommand.self, BenchPoll.self,
                      QueueCommand.self, VersionCommand.self])
}

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

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the agent (the daemon; systemd Type=notify).")

    @Option(name: .long, help: "Configuration file.")
    var config: String = "/etc/gridlet/gridlet.yaml"

    @Flag(name: .long, help: "Run on the embedded default: simulated meter and charger in this process, broker on 127.0.0.1.")
    var demo = false

    @Option(name: .long, help: "With --demo: the broker's port.")
    var mqttPort: Int = 1883

    @Option(name: .long, help: "With --demo: state directory.")
    var stateDir: String = "/tmp/gridlet-demo"

    @Option(name: .long, help: "Log level: error, warning, notice, info, debug (overrides log.level).")
    var logLevel: String?

    @Option(name: .long, help: "Board name or board file whose defaults apply (overrides the board: key).")
    var board: String?

    func run() throws {
        if let l = logLevel, LogLevel(name: l) == nil { throw Failure("unknown log level \(l)", code: 2) }
        var log = Logger(label: "gridlet", minimum: logLevel.flatMap { LogLevel(name: $0) } ?? .info)
        var site: Demo.Site?
        let loaded: ConfigLoading.Loaded
        if demo {
            let s: Demo.Site
            do { s = try Demo.Site(stateDir: stateDir, mqttPort: mqttPort) } catch { throw Failure("demo: \(error)") }
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

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the running daemon's state (limit, source, readings, comm, queue, MQTT).")
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Configuration file (to find the socket).") var config: String?
    @Option(name: .long, help: "The daemon's socket.") var socket: String?

    func run() throws {
        let path = try socketPath(config: config, socket: socket)
        switch LocalClient.request("status", socketPath: path) {
        case let .failure(e): throw Failure(e.description)
        case let .success(text):
            if json { print(text); return }
            guard let v = try? JSONValue.parse(text) else { print(text); return }
            printStatus(v)
        }
    }

    func printStatus(_ v: JSONValue) {
        let s = v["state"]
        func str(_ j: JSONValue?) -> String {
            guard let j else { return "-" }
            switch j {
            case let .string(x): return x
            case let .number(d): return JSONValue.format(d)
            case let .bool(b): return b ? "yes" : "no"
            case .null: return "-"
            default: return j.serialized
            }
        }
        print("limit      \(str(s?["limit_w"])) W (\(str(s?["applied_a"])) A\(s?["paused"]?.boolValue == true ? ", paused" : ""))")
        print("source     \(str(s?["source"]))")
        print("events     \((s?["events"]?.arrayValue ?? []).map { str($0) }.joined(separator: ", "))")
        print("comm       \(s?["comm"]?["ok"]?.boolValue == true ? "ok" : "LOST") since \(str(s?["comm"]?["since"]))")
        print("clock      \(s?["clock_synced"]?.boolValue == true ? "synchronised" : "NOT synchronised")")
        print("next       \(str(s?["next_transition"]))")
        print("mqtt       \(v["mqtt"]?["connected"]?.boolValue == true ? "connected" : "disconnected") \(str(v["mqtt"]?["broker"]))")
        if let o = v["openadr"], o != .null {
            let state = o["ok"]?.boolValue == true ? "ok" : "FAILING: \(str(o["last_error"]?["message"]))"
            print("openadr    \(str(o["vtn"])) \(state), last poll \(str(o["last_poll"])), token expires \(str(o["token_expires"])), "
                + "\((o["events"]?.arrayValue ?? []).count) event(s)")
        }
        print("queue      \(str(v["queue"]?["records"])) records, \(str(v["queue"]?["bytes"])) bytes, oldest \(str(v["queue"]?["oldest_age_s"])) s")
        if let e = v["queue"]?["last_error"]?.stringValue {
            print("queue      \(v["queue"]?["ok"]?.boolValue == false ? "FAILED, refusing writes" : "recovered from an I/O error"): \(e) (see operations.md)")
        }
        for (name, b) in v["buses"]?.objectValue ?? [] {
            let direction = b["rs485_direction"]?.stringValue.map { ", RS-485 direction: \($0)" } ?? ""
            print("bus        \(name): \(str(b["endpoint"]))\(direction)")
        }
        for (name, d) in v["devices"]?.objectValue ?? [] {
            if d["ok"]?.boolValue == true {
                let fields = (d.objectValue ?? []).filter { $0.0 != "ok" }.map { "\($0.0)=\(str($0.1))" }.joined(separator: " ")
                print("device     \(name): \(fields)")
            } else {
                print("device     \(name): NOT ANSWERING: \(str(d["error"]))")
            }
        }
    }
}

struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read every point of a configured device (through the daemon when it runs).")
    @Argument(help: "Device name from the configuration.") var device: String
    @Argument(help: "Only these points.") var points: [String] = []
    @Option(name: .long, help: "Configuration file.") var config: String = "/etc/gridlet/gridlet.yaml"
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let loaded = try loadConfig(config)
        guard let d = loaded.config.devices.first(where: { $0.name == device }) else {
            throw Failure("no device '\(device)' in \(config); configured: \(loaded.config.devices.map(\.name).joined(separator: ", "))", code: 2)
        }
        let answer = try DeviceRead.request(d, points: points, configuration: loaded)
        guard let v = try? JSONValue.parse(answer) else { print(answer); throw Failure("unreadable answer") }
        if json { print(answer) } else {
            if v["ok"]?.boolValue != true { throw Failure(v["error"]?.stringValue ?? answer) }
            for (name, p) in v["points"]?.objectValue ?? [] {
                let value = p["value"]?.doubleValue.map { JSONValue.format($0) } ?? "n/a"
                print("\(name.padding(18)) \(value) \(p["unit"]?.stringValue ?? "")")
            }
        }
        if v["ok"]?.boolValue != true { throw ExitCode(1) }
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration tools.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a configuration file; exit 2 when it is invalid.")
        @Argument(help: "The file.") var path: String
        @Option(name: .long, help: "Board name or board file whose defaults apply (as with run --board).") var board: String?
        @Flag(name: .long, help: "Print JSON ({\"ok\":false,\"error\":...} when invalid; exit 2 all the same).") var json = false
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

struct Profiles: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the built-in device profiles, or print one.")
    @Argument(help: "Print this profile's YAML.") var name: String?
    @Flag(name: .long, help: "Print JSON.") var json = false

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
                throw Failure("built-in profile \(n) is broken: \(error)")
            }
        }
        if json { print(JSONValue.array(rows).serialized) }
    }
}
