import ArgumentParser
import Glibc
import GridletAgent
import GridletCore

/// `gridlet queue stats|peek`: through the daemon's socket when it runs (it holds the
/// queue's lock), else on the queue file opened read-only.
struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Inspect the on-disk queue (through the daemon when it runs).",
        subcommands: [Stats.self, Peek.self])

    struct Where: ParsableArguments {
        @Option(name: .long, help: "Configuration file (to find the socket and state_dir).") var config: String = "/etc/gridlet/gridlet.yaml"
        @Option(name: .long, help: "The daemon's socket (default: from the configuration).") var socket: String?
        @Option(name: .long, help: "The queue directory, used when no daemon answers (default: state_dir/queue).") var queueDir: String?

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

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Depth, bytes, oldest age, drops, records skipped on recovery, next seq.")
        @OptionGroup var place: Where
        @Flag(name: .long, help: "Print JSON.") var json = false

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

    struct Peek: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the oldest records with their decoded payload.")
        @OptionGroup var place: Where
        @Option(name: .long, help: "How many records (at most 1000).") var count: Int = 10
        @Flag(name: .long, help: "Print JSON.") var json = false

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
