import ArgumentParser
import Glibc
import GridletAgent
import GridletCore
import GridletModbus

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the unit ids that answer on a bus (reads holding register 0 of each; an exception counts as an answer).",
        discussion: "Takes at most (to - from + 1) x timeout. Progress goes to standard error.")
    @OptionGroup var target: BusTarget
    @Option(name: .long, help: "First unit id.") var from: Int = 1
    @Option(name: .long, help: "Last unit id.") var to: Int = 247
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        guard from >= 0, from <= to, to <= 255 else { throw Failure("--from/--to: 0 <= from <= to <= 255 (RTU: 1...247)", code: 2) }
        var answer: String?
        switch try target.resolve() {
        case let .daemon(socket, bus):
            printError("scanning units \(from)...\(to) on \(bus) through the daemon")
            answer = try BusTarget.viaDaemon("scan \(bus) \(from) \(to)", socket: socket, timeoutS: 5 + (to - from + 1) * 12)
        case .direct:
            break
        }
        if answer == nil {
            guard case let .direct(name, transport, timeoutMs, gapMs) = try target.resolveDirect() else { return }
            if case .rtu = transport, from == 0 || to > 247 { throw Failure("RTU unit ids are 1...247", code: 2) }
            let bus = ModbusBus(name: name, transport: transport, timeoutMs: timeoutMs, retries: 0, gapMs: gapMs)
            defer { bus.stop() }
            let total = to - from + 1
            printError("scanning units \(from)...\(to) on \(name), up to \(JSONValue.format(Double(total * timeoutMs) / 1000)) s")
            let start = Clock.monoMs()
            var done = 0
            let results = ModbusDiagnostics.scan(from...to, on: bus) { unit, probe in
                done += 1
                switch probe {
                case .answered: printError("unit \(unit): answers")
                case let .exception(c): printError("unit \(unit): answers (exception \(c))")
                case .none: if done % 10 == 0 || done == total { printError("\(done)/\(total) scanned") }
                }
            }
            answer = DiagnosticsRequests.scanJSON(bus: name, results: results, elapsedMs: Clock.monoMs() - start)
        }
        guard let answer, let v = try? JSONValue.parse(answer) else { throw Failure("unreadable answer") }
        if json { print(answer) } else if v["ok"]?.boolValue == true {
            let found = v["found"]?.arrayValue ?? []
            if found.isEmpty { print("no unit answered") }
            for f in found {
                let u = Int(f["unit"]?.doubleValue ?? 0)
                let exc = f["exception"]?.doubleValue.map { " (exception \(Int($0)))" } ?? ""
                print("unit \(u)\(exc)")
            }
        }
        if v["ok"]?.boolValue != true { throw Failure(v["error"]?.stringValue ?? answer) }
    }
}
