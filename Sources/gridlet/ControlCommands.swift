import ArgumentParser
import GridletAgent
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

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the dispatch events the daemon has stored.")
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Configuration file (to find the socket).") var config: String?
    @Option(name: .long, help: "The daemon's socket.") var socket: String?

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

struct OptOut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optout",
        abstract: "Opt out of a dispatch event, or of a schedule's current (or next) window, when it allows it.")
    @Argument(help: "Event id or schedule id.") var id: String
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Configuration file (to find the socket).") var config: String?
    @Option(name: .long, help: "The daemon's socket.") var socket: String?

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

struct Schedule: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the active schedule windows and the next transitions with their source.")
    @Flag(name: .long, help: "List the next transitions (the default).") var next = false
    @Option(name: .long, help: "How many transitions.") var count: Int = 10
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Configuration file (to find the socket).") var config: String?
    @Option(name: .long, help: "The daemon's socket.") var socket: String?

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

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "The version counters of the remote cmd/events and cmd/schedules sets.",
        subcommands: [Reset.self])

    /// The on-site way out when a DERMS's version counter went backwards (a restored database, a
    /// new DERMS): the daemon answers every lower version `stale_version`, so without a reset the
    /// sender would have to count up past the old version.
    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget the version of cmd/events or cmd/schedules: the next set is accepted whatever its version.",
            discussion: """
                Use it when the sender's version counter went back (cmd/... replies stale_version with \
                current_version). What is stored stays in force until the next set replaces it. Make \
                sure the set retained on the broker is the one you want: it is delivered again at the \
                next reconnect, and after a reset any version is accepted.
                """)
        @Argument(help: "Which set: events or schedules.") var set: String
        @Flag(name: .long, help: "Print JSON.") var json = false
        @Option(name: .long, help: "Configuration file (to find the socket).") var config: String?
        @Option(name: .long, help: "The daemon's socket.") var socket: String?

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
