import ArgumentParser
import GridletAgent
import GridletCore
import GridletYAML

/// Hidden: polls a profile's read blocks back to back through the agent's read path
/// (`PollBenchmark`) and prints transactions per second, for bench/poll-rate.sh.
struct BenchPoll: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-poll", abstract: "Measure the poll rate (benchmark).",
                                                    shouldDisplay: false)
    @Argument(help: "Profile.") var profile: String
    @Option(name: .long, help: "HOST:PORT") var tcp: String
    @Option(name: .long, help: "Unit id.") var unit: Int?
    @Option(name: .long, help: "Seconds to run.") var seconds: Double = 3
    @Flag(name: .long, help: "Only print the read blocks as FC:ADDRESS:COUNT.") var printBlocks = false

    func run() throws {
        let p: DeviceProfile
        do { p = try ProfileLibrary.profile(profile) } catch { throw Failure("\(error)", code: 2) }
        let (h, port) = try ModbusCLI.hostPort(tcp)
        let bench = try PollBenchmark(profile: p, host: h, port: port, unit: unit)
        if printBlocks {
            print(bench.blocks.joined(separator: " "))
            return
        }
        let r = try bench.run(seconds: seconds)
        print("gridlet profile=\(p.name) blocks=\(bench.blocks.count) polls=\(r.polls) transactions=\(r.transactions) seconds=\(JSONValue.format(r.seconds)) tps=\(JSONValue.format((Double(r.transactions) / r.seconds).rounded()))")
    }
}
