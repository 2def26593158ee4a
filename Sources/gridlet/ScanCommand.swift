import ArgumentParser
import Glibc
import GridletAgent
import GridletCore
import GridletModbus

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the unit ids that answer on a bus (reads holding register 0 of each; an exception counts as an answer).",
        discussion: """
            Takes at most (to - from + 1) x --timeout (no retries). Progress goes to standard error. Through the \
            daemon each unit is a separate request, so its polls go on between them.
            """)
    @OptionGroup var target: BusTarget
    @Option(name: .long, help: "First unit id.") var from: Int = 1
    @Option(name: .long, help: "Last unit id.") var to: Int = 247
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        guard from >= 0, from <= to, to <= 255 else { throw Failure("--from/--to: 0 <= from <= to <= 255 (RTU: 1...247)", code: 2) }
        let timeoutMs = try target.timeoutMs()
        var via = "direct"
        var daemon: (socket: String, bus: String)?
        if case let .daemon(socket, bus) = try target.resolve() { daemon = (socket, bus) }
        var directBus: ModbusBus?
        defer { directBus?.stop() }
        var busName = daemon?.bus ?? ""
        if daemon == nil {
            let resolved = try target.resolveDirect()
            if case let .direct(_, transport, _, _, _, _) = resolved, case .rtu = transport, from == 0 || to > 247 {
                throw Failure("RTU unit ids are 1...247", code: 2)
            }
            directBus = resolved.directBus()
            busName = directBus?.name ?? ""
        }
        let total = to - from + 1
        printError("scanning units \(from)...\(to) on \(busName)\(daemon != nil ? " through the daemon" : ""), "
            + "up to \(JSONValue.format(Double(total * timeoutMs) / 1000)) s")
        let start = SystemClock.monoMs()
        var results: [(unit: Int, probe: ModbusDiagnostics.Probe)] = []
        for unit in from...to {
            var probe: ModbusDiagnostics.Probe?
            if let d = daemon {
                if let answer = try BusTarget.viaDaemon("scan \(d.bus) \(unit) \(unit) \(timeoutMs)", socket: d.socket,
                                                        timeoutS: 10 + timeoutMs / 1000) {
                    probe = try Self.probe(fromDaemon: answer, unit: unit)
                    via = "daemon"
                } else {
                    // The daemon went away mid-scan (or was never there): go on directly.
                    printError("the daemon does not answer; scanning directly")
                    daemon = nil
                    directBus = try target.resolveDirect().directBus()
                }
            }
            if probe == nil, let bus = directBus {
                probe = ModbusDiagnostics.scan(unit...unit, on: bus, timeoutMs: timeoutMs).first?.probe
            }
            guard let probe else { throw Failure("no bus to scan") }
            results.append((unit, probe))
            let done = unit - from + 1
            switch probe {
            case .answered: printError("unit \(unit): answers")
            case let .exception(c): printError("unit \(unit): answers (exception \(c))")
            case .none: if done % 10 == 0 || done == total { printError("\(done)/\(total) scanned") }
            }
        }
        let answer = DiagnosticsRequests.scanJSON(bus: busName, results: results, elapsedMs: SystemClock.monoMs() - start, via: via)
        guard let v = try? JSONValue.parse(answer) else { throw Failure("unreadable answer") }
        if json { print(answer); return }
        let found = v["found"]?.arrayValue ?? []
        if found.isEmpty { print("no unit answered") }
        for f in found {
            let u = Int(f["unit"]?.doubleValue ?? 0)
            let exc = f["exception"]?.doubleValue.map { " (exception \(Int($0)))" } ?? ""
            print("unit \(u)\(exc)")
        }
    }

    /// One unit's probe from the daemon's `scan BUS U U TIMEOUT` answer.
    static func probe(fromDaemon answer: String, unit: Int) throws -> ModbusDiagnostics.Probe {
        guard let v = try? JSONValue.parse(answer) else { throw Failure("unreadable answer from the daemon: \(answer)") }
        guard v["ok"]?.boolValue == true else { throw Failure(v["error"]?.stringValue ?? answer) }
        guard let f = (v["found"]?.arrayValue ?? []).first(where: { Int($0["unit"]?.doubleValue ?? -1) == unit }) else {
            return .none("no answer")
        }
        if let c = f["exception"]?.doubleValue { return .exception(Int(c)) }
        return .answered
    }
}
