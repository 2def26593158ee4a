import GridletAgent
import GridletCLI
import GridletCore

/// Asks the running daemon (the control loop owns the events); exit 1 with the daemon's error.
func askDaemon(_ request: String, config: String?, socket: String?) throws -> JSONValue {
    let path = try socketPath(config: config, socket: socket)
    switch LocalClient.request(request, socketPath: path) {
    case let .failure(e): throw Failure(e.description)
    case let .success(text):
        guard let v = try? JSONValue.parse(text) else { throw Failure("unreadable answer from the daemon: \(text.prefix(200))\(versionHint)") }
        return v
    }
}

/// For an answer the CLI cannot read: most likely a daemon of another version.
let versionHint = "; run the same gridlet version as the daemon (gridlet --version; after an upgrade: systemctl restart gridlet)"

func errorText(_ v: JSONValue) -> String {
    if let e = v["error"]?.stringValue { return e }
    if let m = v["error"]?["message"]?.stringValue { return m }
    return v.serialized
}

/// `--json --config --socket`, the arguments of the commands that ask the daemon.
let daemonArgs: [ArgSpec] = [
    .flag("json", "Print JSON."),
    .option("config", "Configuration file (to find the socket)."),
    .option("socket", "The daemon's socket."),
]

struct Events {
    static let command = Command("events", abstract: "List the dispatch events the daemon has stored.", args: daemonArgs) {
        try Events($0).run()
    }
    let json: Bool, config: String?, socket: String?
    init(_ p: Parsed) { json = p.flag("json"); config = p.optionalString("config"); socket = p.optionalString("socket") }

    func run() throws {
        let v = try askDaemon("events", config: config, socket: socket)
        if json { print(v.serialized); return }
        guard v["ok"]?.boolValue == true else { throw Failure(errorText(v)) }
        let list = v["events"]?.arrayValue ?? []
        if list.isEmpty { print("no stored events (source: \(v["source"]?.stringValue ?? "-"))"); return }
        for e in list {
            var flags: [String] = []
            if e["active"]?.boolValue == true { flags.append("ACTIVE") }
            if e["opted_out"]?.boolValue == true { flags.append("opted out") }
            if e["superseded"]?.boolValue == true { flags.append("superseded") }
            if e["opt_out_allowed"]?.boolValue == true { flags.append("opt-out allowed") }
            let limit = e["limit_w"]?.doubleValue.map { JSONValue.format($0) } ?? "?"
            print("\(e["id"]?.stringValue ?? "?")  [\(e["source"]?.stringValue ?? "mqtt")]  \(limit) W  primacy \(e["primacy"]?.doubleValue.map { JSONValue.format($0) } ?? "?")  "
                + "\(e["effective_start"]?.stringValue ?? "?") -> \(e["end"]?.stringValue ?? "?")  \(flags.joined(separator: ", "))")
        }
    }
}

struct OptOut {
    static let command = Command(
        "optout", abstract: "Opt out of a dispatch event, or of a schedule's current (or next) window, when it allows it.",
        args: [.positional("id", "Event id or schedule id.", required: true)] + daemonArgs) { try OptOut($0).run() }
    let id: String, json: Bool, config: String?, socket: String?
    init(_ p: Parsed) {
        id = p.string("id"); json = p.flag("json"); config = p.optionalString("config"); socket = p.optionalString("socket")
    }

    func run() throws {
        guard CommandParser.validID(id) else { throw Failure("'\(id)' is not a valid event or schedule id; give the id as `gridlet events` or `gridlet schedule` show it (1 to 64 of A-Z a-z 0-9 _ . : -)", code: 2) }
        let v = try askDaemon("optout \(id)", config: config, socket: socket)
        if json { print(v.serialized) }
        guard v["ok"]?.boolValue == true else { throw Failure("opt-out refused: \(errorText(v))") }
        if !json {
            let rs = v["responses"]?.arrayValue ?? []
            print(rs.isEmpty ? "\(id): already opted out" : "\(id): opted out (\(rs.compactMap { $0["event"]?.stringValue }.joined(separator: ", ")))")
        }
    }
}

struct Schedule {
    static let command = Command(
        "schedule", abstract: "Show the active schedule windows and the next transitions with their source.",
        args: [.flag("next", "List the next transitions (the default)."),
               .option("count", .int, "How many transitions.", default: "10")] + daemonArgs) { try Schedule($0).run() }
    let count: Int, json: Bool, config: String?, socket: String?
    init(_ p: Parsed) {
        count = p.int("count"); json = p.flag("json"); config = p.optionalString("config"); socket = p.optionalString("socket")
    }

    func run() throws {
        guard count > 0 else { throw Failure("--count must be 1 or more, got \(count)", code: 2) }
        let v = try askDaemon("schedule \(count)", config: config, socket: socket)
        if json { print(v.serialized); return }
        guard v["ok"]?.boolValue == true else { throw Failure(errorText(v)) }
        let active = (v["active"]?.arrayValue ?? []).compactMap(\.stringValue)
        print("time zone  \(v["timezone"]?.stringValue ?? "?")")
        print("active     \(active.isEmpty ? "-" : active.joined(separator: ", "))")
        for t in v["transitions"]?.arrayValue ?? [] {
            print("\(t["at"]?.stringValue ?? "?")  \(t["source"]?.stringValue ?? "?")  \(t["limit_w"]?.doubleValue.map { JSONValue.format($0) + " W" } ?? "")")
        }
    }
}

enum VersionCommand {
    static let command = Command(
        "version", abstract: "The version counters of the remote cmd/events and cmd/schedules sets.",
        subcommands: [Reset.command])

    /// The on-site way out when a DERMS's version counter went backwards (a restored database, a
    /// new DERMS): the daemon answers every lower version `stale_version`, so without a reset the
    /// sender would have to count up past the old version.
    struct Reset {
        static let command = Command(
            "reset", abstract: "Forget the version of cmd/events or cmd/schedules: the next set is accepted whatever its version.",
            discussion: """
                Use it when the sender's version counter went back (cmd/... replies stale_version with \
                current_version). What is stored stays in force until the next set replaces it. Make \
                sure the set retained on the broker is the one you want: it is delivered again at the \
                next reconnect, and after a reset any version is accepted.
                """,
            args: [.positional("set", "Which set: events or schedules.", required: true)] + daemonArgs) { try Reset($0).run() }
        let set: String, json: Bool, config: String?, socket: String?
        init(_ p: Parsed) {
            set = p.string("set"); json = p.flag("json"); config = p.optionalString("config"); socket = p.optionalString("socket")
        }

        func run() throws {
            guard let which = ControlEngine.VersionedSet(rawValue: set) else {
                throw Failure("version reset: expected events or schedules, got '\(set)'", code: 2)
            }
            let v: JSONValue
            do {
                v = try askDaemon("version-reset \(which.rawValue)", config: config, socket: socket)
            } catch let f as Failure where f.description.hasPrefix("cannot reach the daemon") {
                // The version lives in the daemon's state: nothing to reset without it.
                let text = "\(f.description)\nThe \(which.rawValue) version is kept by the running daemon: start it "
                    + "(sudo systemctl start gridlet), then run `gridlet version reset \(which.rawValue)` again."
                if json { print(JSONValue.object([("ok", .bool(false)), ("error", .string(text))]).serialized) }
                throw Failure(text)
            }
            if json { print(v.serialized) }
            guard v["ok"]?.boolValue == true else { throw Failure("version reset refused: \(errorText(v))") }
            if json { return }
            let was = Int(v["previous_version"]?.doubleValue ?? -1)
            let from = was < 0 ? "no version was in force" : "was version \(was)"
            print("\(which.rawValue) version reset (\(from)): the next cmd/\(which.rawValue) is accepted whatever its "
                + "version; the stored \(which.rawValue) stay in force until it arrives")
        }
    }
}
