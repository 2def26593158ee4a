import ArgumentParser
import Glibc
import GridletAgent
import GridletCore
import GridletModbus
import GridletYAML

/// Hidden: polls a profile's read blocks back to back through ModbusBus + DeviceReader (the
/// agent's read path) and prints transactions per second, for bench/poll-rate.sh.
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
        let bus = ModbusBus(name: "bench", transport: .tcp(host: h, port: port), timeoutMs: 1000, retries: 0)
        defer { bus.stop() }
        let reader = DeviceReader(profile: p, unit: unit, deviceName: "bench")
        _ = try reader.read(on: bus).get()   // connect (and SunSpec discovery) outside the measurement
        if printBlocks {
            print(reader.blocks.map { "\($0.table.readFunction):\($0.address):\($0.count)" }.joined(separator: " "))
            return
        }
        let start = SystemClock.monoMs()
        let end = start + Int64(seconds * 1000)
        var polls = 0
        while SystemClock.monoMs() < end {
            _ = try reader.read(on: bus).get()
            polls += 1
        }
        let elapsed = Double(SystemClock.monoMs() - start) / 1000
        let tx = polls * reader.blocks.count
        print("gridlet profile=\(p.name) blocks=\(reader.blocks.count) polls=\(polls) transactions=\(tx) seconds=\(JSONValue.format(elapsed)) tps=\(JSONValue.format((Double(tx) / elapsed).rounded()))")
    }
}
