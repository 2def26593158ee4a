import GridletAgent
import GridletCLI
import GridletCore

struct Scan {
    static let command = Command(
        "scan", abstract: "Find the unit ids that answer on a bus (reads holding register 0 of each; an exception counts as an answer).",
        discussion: """
            Takes at most (to - from + 1) x --timeout (no retries). Progress goes to standard error. Through the \
            daemon each unit is a separate request, so its polls go on between them.
            """,
        args: BusTarget.args + [
            .option("from", .int, "First unit id.", default: "1"),
            .option("to", .int, "Last unit id.", default: "247"),
            .flag("json", "Print JSON."),
        ]) { try Scan($0).run() }
    let target: BusTarget, from: Int, to: Int, json: Bool
    init(_ p: Parsed) { target = BusTarget(p); from = p.int("from"); to = p.int("to"); json = p.flag("json") }

    func run() throws {
        guard from >= 0, from <= to, to <= 255 else { throw Failure("--from/--to: 0 <= from <= to <= 255 (RTU: 1...247)", code: 2) }
        let timeoutMs = try target.timeoutMs()
        let session = try target.session()
        defer { session.close() }
        let total = to - from + 1
        let answer = try session.scan(from...to) { progress in
            switch progress {
            case let .started(throughDaemon):
                printError("scanning units \(from)...\(to) on \(session.busName)\(throughDaemon ? " through the daemon" : ""), "
                    + "up to \(JSONValue.format(Double(total * timeoutMs) / 1000)) s")
            case .daemonGone:
                printError("the daemon does not answer; scanning directly")
            case let .probed(unit, probe):
                let done = unit - from + 1
                switch probe {
                case .answered: printError("unit \(unit): answers")
                case let .exception(c): printError("unit \(unit): answers (exception \(c))")
                case .none: if done % 10 == 0 || done == total { printError("\(done)/\(total) scanned") }
                }
            }
        }
        guard let v = try? JSONValue.parse(answer) else { throw Failure("unreadable answer: \(answer.prefix(200))\(versionHint)") }
        if json { print(answer); return }
        let found = v["found"]?.arrayValue ?? []
        if found.isEmpty { print("no unit answered") }
        for f in found {
            let u = Int(f["unit"]?.doubleValue ?? 0)
            let exc = f["exception"]?.doubleValue.map { " (exception \(Int($0)))" } ?? ""
            print("unit \(u)\(exc)")
        }
    }
}
