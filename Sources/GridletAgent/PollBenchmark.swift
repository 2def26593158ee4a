import GridletSys
import GridletCore
import GridletModbus

/// `gridlet bench-poll` (hidden; bench/poll-rate.sh): the agent's own read path (`ModbusBus` +
/// `DeviceReader`) polling one device back to back, so its rate can be compared with a raw
/// libmodbus loop and other pollers on the same simulator. Bus errors are thrown as they are.
public final class PollBenchmark {
    public struct Outcome: Sendable {
        public var polls: Int
        public var transactions: Int
        public var seconds: Double
    }

    private let bus: ModbusBus
    private let reader: DeviceReader

    /// The read blocks as `FC:ADDRESS:COUNT`, in the order each poll reads them.
    public var blocks: [String] { reader.blocks.map { "\($0.table.readFunction):\($0.address):\($0.count)" } }

    /// Connects and polls once (with SunSpec discovery), so neither counts in `run`.
    public init(profile: DeviceProfile, host: String, port: Int, unit: Int?) throws {
        bus = ModbusBus(name: "bench", transport: .tcp(host: host, port: port), timeoutMs: 1000, retries: 0)
        reader = DeviceReader(profile: profile, unit: unit, deviceName: "bench")
        _ = try reader.read(on: bus).get()
    }

    deinit { bus.stop() }

    /// Polls for `seconds`; the first failed poll ends the run with its error.
    public func run(seconds: Double) throws -> Outcome {
        let start = SystemClock.monoMs()
        let end = start + Int64(seconds * 1000)
        var polls = 0
        while SystemClock.monoMs() < end {
            _ = try reader.read(on: bus).get()
            polls += 1
        }
        return Outcome(polls: polls, transactions: polls * reader.blocks.count, seconds: Double(SystemClock.monoMs() - start) / 1000)
    }
}
