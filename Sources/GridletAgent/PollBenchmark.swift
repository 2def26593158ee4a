import Dispatch
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

    /// How `run` asks for polls.
    public enum Mode: String, Sendable {
        /// Each poll is asked for by the calling thread, which waits for its result before asking
        /// for the next: every poll pays the hand-off to the bus thread and back on an idle bus.
        case waitEach = "wait-each"
        /// Each poll's completion, on the bus thread, asks for the next one through the bus's
        /// FIFO: the bus thread goes from one poll to the next as it does when several polls are
        /// queued (devices due together); the caller waits once for the end.
        case chained
    }

    /// Polls for `seconds`; the first failed poll ends the run with its error.
    public func run(seconds: Double, mode: Mode = .waitEach) throws -> Outcome {
        let start = SystemClock.monoMs()
        let end = start + Int64(seconds * 1000)
        var polls = 0
        switch mode {
        case .waitEach:
            while SystemClock.monoMs() < end {
                _ = try reader.read(on: bus).get()
                polls += 1
            }
        case .chained:
            let chain = Chain(reader: reader, bus: bus, end: end)
            chain.next()
            polls = try chain.wait()
        }
        return Outcome(polls: polls, transactions: polls * reader.blocks.count, seconds: Double(SystemClock.monoMs() - start) / 1000)
    }

    /// Chained polls: each poll's completion (on the bus thread) asks for the next until the
    /// deadline, then wakes the caller once. A class, so the completions hold one reference.
    /// `@unchecked Sendable`: `done` and `failure` are written by the completions, which the bus
    /// thread runs one after another, and read by the caller only after the semaphore is signalled.
    private final class Chain: @unchecked Sendable {
        let reader: DeviceReader
        let bus: ModbusBus
        let end: Int64
        private var done = 0
        private var failure: ModbusError?
        private let finished = DispatchSemaphore(value: 0)

        init(reader: DeviceReader, bus: ModbusBus, end: Int64) {
            self.reader = reader
            self.bus = bus
            self.end = end
        }

        func next() {
            guard SystemClock.monoMs() < end else { finished.signal(); return }
            reader.read(on: bus) { result in
                if case let .failure(e) = result {
                    self.failure = e
                    self.finished.signal()
                } else {
                    self.done += 1
                    self.next()
                }
            }
        }

        /// Waits for the end of the chain: the number of polls, or the first failure.
        func wait() throws(ModbusError) -> Int {
            finished.wait()
            if let failure { throw failure }
            return done
        }
    }
}
