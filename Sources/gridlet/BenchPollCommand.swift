import GridletAgent
import GridletCLI
import GridletCore
import GridletYAML

/// Hidden: polls a profile's read blocks back to back through the agent's read path
/// (`PollBenchmark`) and prints transactions per second, for bench/poll-rate.sh.
struct BenchPoll {
    static let command = Command("bench-poll", abstract: "Measure the poll rate (benchmark).", args: [
        .positional("profile", "Profile.", required: true),
        .option("tcp", "HOST:PORT", required: true),
        .option("unit", .int, "Unit id."),
        .option("seconds", .double, "Seconds to run.", default: "3.0"),
        .option("mode", "wait-each (default): the caller asks for each poll and waits for it; chained: each poll's completion asks for the next on the bus thread.", default: "wait-each"),
        .flag("print-blocks", "Only print the read blocks as FC:ADDRESS:COUNT."),
    ], hidden: true) { try BenchPoll($0).run() }
    let profile: String, tcp: String, unit: Int?, seconds: Double, mode: String, printBlocks: Bool
    init(_ p: Parsed) {
        profile = p.string("profile"); tcp = p.string("tcp"); unit = p.optionalInt("unit"); seconds = p.double("seconds")
        mode = p.string("mode")
        printBlocks = p.flag("print-blocks")
    }

    func run() throws {
        let p: DeviceProfile
        do { p = try ProfileLibrary.profile(profile) } catch { throw Failure("\(error)", code: 2) }
        let (h, port) = try ModbusCLI.hostPort(tcp)
        let bench = try PollBenchmark(profile: p, host: h, port: port, unit: unit)
        if printBlocks {
            print(bench.blocks.joined(separator: " "))
            return
        }
        guard let m = PollBenchmark.Mode(rawValue: mode) else { throw Failure("--mode must be wait-each or chained, got '\(mode)'", code: 2) }
        let r = try bench.run(seconds: seconds, mode: m)
        print("gridlet profile=\(p.name) mode=\(m.rawValue) blocks=\(bench.blocks.count) polls=\(r.polls) transactions=\(r.transactions) seconds=\(JSONValue.format(r.seconds)) tps=\(JSONValue.format((Double(r.transactions) / r.seconds).rounded()))")
    }
}
