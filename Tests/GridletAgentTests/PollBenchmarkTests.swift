import Glibc
import GridletAgent
import GridletCore
import GridletModbus
import GridletSys
import GridletYAML
import Testing

/// `gridlet bench-poll` (bench/poll-rate.sh): both ways of asking for polls count what they read,
/// and a bus that stops answering ends either run with the error instead of hanging.
@Suite struct PollBenchmarkTests {
    /// A frozen eastron-sdm630 simulator on a free port (a few tries: a port can be taken between
    /// the pick and the bind).
    static func simulator() throws -> ModbusSimulator {
        let profile = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        var lastError: ModbusError?
        for attempt in 0..<10 {
            let port = 20_000 + Int((UInt32(getpid()) &* 7919 &+ UInt32(attempt) &* 104_729) % 40_000)
            let sim = ModbusSimulator(profile: profile, port: port, frozen: true)
            do {
                try sim.start()
                return sim
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    @Test(arguments: [PollBenchmark.Mode.waitEach, .chained])
    func countsEveryBlockOfEveryPoll(mode: PollBenchmark.Mode) throws {
        let sim = try Self.simulator()
        defer { sim.stop() }
        let bench = try PollBenchmark(profile: sim.profile, host: "127.0.0.1", port: sim.port, unit: nil)
        #expect(bench.blocks == ["4:0:18", "4:52:2", "4:70:6"])
        let outcome = try bench.run(seconds: 0.3, mode: mode)
        #expect(outcome.polls > 10)
        #expect(outcome.transactions == outcome.polls * 3)
        #expect(outcome.seconds >= 0.3 && outcome.seconds < 2)
        // The simulator saw exactly those transactions (plus the first poll made by init).
        #expect(sim.requestCount == (outcome.polls + 1) * 3)
    }

    @Test(arguments: [PollBenchmark.Mode.waitEach, .chained])
    func aBusThatStopsAnsweringEndsTheRunWithItsError(mode: PollBenchmark.Mode) throws {
        let sim = try Self.simulator()
        let bench = try PollBenchmark(profile: sim.profile, host: "127.0.0.1", port: sim.port, unit: nil)
        sim.stop()
        let started = SystemClock.monoMs()
        #expect(throws: ModbusError.self) { _ = try bench.run(seconds: 30, mode: mode) }
        // Ends at the first failed poll (1 s timeout, no retries), not at the 30 s deadline.
        #expect(SystemClock.monoMs() - started < 10_000)
    }
}
