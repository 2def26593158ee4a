import Glibc
import GridletAgent
import GridletCLI
import GridletCore

/// `gridlet queue stats|peek`: through the daemon's socket when it runs (it holds the
/// queue's lock), else on the queue file opened read-only.
enum QueueCommand {
    static let command = Command(
        "queue", abstract: "Inspect the on-disk queue (through the daemon when it runs).",
        subcommands: [Stats.command, Peek.command])

    struct Where {
        static let args: [ArgSpec] = [
            .option("config", "Configuration file (to find the socket and state_dir).", default: "/etc/gridlet/gridlet.yaml"),
            .option("socket", "The daemon's socket (default: from the configuration)."),
            .option("queue-dir", "The queue directory, used when no daemon answers (default: state_dir/queue)."),
        ]
        let config: String, socket: String?, queueDir: String?
        init(_ p: Parsed) { config = p.string("config"); socket = p.optionalString("socket"); queueDir = p.optionalString("queue-dir") }

        func ask(_ request: String) throws -> String {
            var sock = socket
            var dir = queueDir
            if sock == nil || dir == nil {
                let loaded = try loadConfig(config)
                if sock == nil { sock = try socketPath(config: config, socket: nil) }
                if dir == nil { dir = loaded.config.site.stateDir + "/queue" }
            }
            let viaSocket = LocalClient.request(request, socketPath: sock!)
            if case let .success(text) = viaSocket { return text }
            switch QueueInspect.direct(directory: dir!, request: request, nowWallMs: wallNowMs()) {
            case let .success(text): return text
            case let .failure(e):
                var why = ""
                if case let .failure(s) = viaSocket { why = " (socket: \(s.description))" }
                throw Failure(e.description + why)
            }
        }
    }

    struct Stats {
        static let command = Command(
            "stats", abstract: "Depth, bytes, oldest age, drops, records skipped on recovery, next seq.",
            args: Where.args + [.flag("json", "Print JSON.")]) { try Stats($0).run() }
        let place: Where, json: Bool
        init(_ p: Parsed) { place = Where(p); json = p.flag("json") }

        func run() throws {
            let text = try place.ask("queue-stats")
            guard let v = try? JSONValue.parse(text), v["ok"]?.boolValue == true else {
                throw Failure((try? JSONValue.parse(text))?["error"]?.stringValue ?? text)
            }
            if json { print(text); return }
            func num(_ j: JSONValue?) -> String { j?.doubleValue.map { JSONValue.format($0) } ?? "-" }
            let t = v["telemetry"], p = v["priority"]
            print("records    \(num(v["records"])) (telemetry \(num(t?["records"])), priority \(num(p?["records"])))")
            print("bytes      \(num(v["bytes"])) of \(num(v["capacity"])) (telemetry \(num(t?["bytes"]))/\(num(t?["capacity"])), priority \(num(p?["bytes"]))/\(num(p?["capacity"])))")
            if let age = v["oldest_age_s"]?.doubleValue {
                print("oldest     \(JSONValue.format(age)) s (\(v["oldest"]?.stringValue ?? "-"))")
            } else {
                print("oldest     - (empty)")
            }
            print("dropped    \(num(v["dropped"])) (telemetry \(num(t?["dropped"])), priority \(num(p?["dropped"])))")
            print("skipped    \(num(v["skipped_on_recovery"])) damaged record(s) on recovery")
            print("next seq   \(num(v["next_seq"]))")
        }
    }

    struct Peek {
        static let command = Command(
            "peek", abstract: "Show the oldest records with their decoded payload.",
            args: Where.args + [.option("count", .int, "How many records (at most 1000).", default: "10"), .flag("json", "Print JSON.")]) {
            try Peek($0).run()
        }
        let place: Where, count: Int, json: Bool
        init(_ p: Parsed) { place = Where(p); count = p.int("count"); json = p.flag("json") }

        func run() throws {
            guard count >= 0 else { throw Failure("--count must be >= 0", code: 2) }
            let text = try place.ask("queue-peek \(min(count, 1000))")
            guard let v = try? JSONValue.parse(text), v["ok"]?.boolValue == true else {
                throw Failure((try? JSONValue.parse(text))?["error"]?.stringValue ?? text)
            }
            if json { print(text); return }
            let recs = v["records"]?.arrayValue ?? []
            if recs.isEmpty { print("(queue empty)") }
            for r in recs {
                let seq = r["seq"]?.doubleValue.map { JSONValue.format($0) } ?? "?"
                let kind = r["kind"]?.stringValue ?? "?"
                let age = r["age_s"]?.doubleValue.map { JSONValue.format($0) } ?? "?"
                let body = r["payload"].map { $0.stringValue ?? $0.serialized } ?? ""
                print("\(seq.padding(8)) \(kind.padding(10)) \(r["ts"]?.stringValue ?? "") (\(age) s)  \(body)")
            }
        }
    }
}

func wallNowMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
