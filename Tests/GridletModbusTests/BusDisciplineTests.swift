import Glibc
import GridletCore
import GridletModbus
import GridletYAML
import Synchronization
import Testing

/// Several devices on one bus driven by the real PollScheduler, real libmodbus and a real simulator.
@Suite(.serialized) struct BusDisciplineTests {
    struct Outcome: Sendable { var device: Int; var ok: Bool; var atMs: Int64; var error: String? }

    /// Drives `readers` with a PollScheduler for `durationMs`; `during` runs each loop turn with
    /// the elapsed time. Returns every poll outcome.
    /// Times are milliseconds since `start`; runs until `untilMs`.
    func drive(_ readers: [DeviceReader], bus: ModbusBus, start: Int64, untilMs durationMs: Int64,
               scheduler: inout PollScheduler) -> [Outcome] {
        drive(readers.map { ($0, bus) }, start: start, untilMs: durationMs, scheduler: &scheduler)
    }

    func drive(_ readers: [(DeviceReader, ModbusBus)], start: Int64, untilMs durationMs: Int64,
               scheduler: inout PollScheduler) -> [Outcome] {
        let events = Mutex<[Outcome]>([])
        var all: [Outcome] = []
        var iterations = 0
        while iterations < 100_000 {
            iterations += 1
            let now = TestSupport.monotonicMs() - start
            let done = events.withLock { e -> [Outcome] in defer { e = [] }; return e }
            for o in done { scheduler.completed(o.device, success: o.ok, nowMs: o.atMs) }
            all += done
            if now >= durationMs { break }
            for i in scheduler.due(nowMs: now) {
                readers[i].0.read(on: readers[i].1) { r in
                    let at = TestSupport.monotonicMs() - start
                    let err: String? = if case let .failure(e) = r { e.description } else { nil }
                    events.withLock { $0.append(Outcome(device: i, ok: err == nil, atMs: at, error: err)) }
                }
            }
            usleep(2_000)
        }
        // Let polls in flight finish (bounded).
        _ = TestSupport.waitUntil(timeoutMs: 1000) { !(0..<readers.count).contains { scheduler.isInFlight($0) } || {
            let done = events.withLock { e -> [Outcome] in defer { e = [] }; return e }
            for o in done { scheduler.completed(o.device, success: o.ok, nowMs: o.atMs) }
            all += done
            return false
        }() }
        return all
    }

    /// Two identical buses polled at the same time (so machine load hits both alike): on bus B
    /// unit 3 stops answering, on bus A all answer. Units 1 and 2 must keep bus A's poll rate.
    @Test func silentDeviceDoesNotSlowTheOthers() throws {
        let simA = try startSimulator("eastron-sdm120")
        defer { simA.stop() }
        let simB = try startSimulator("eastron-sdm120")
        defer { simB.stop() }
        let busA = ModbusBus(name: "a", transport: .tcp(host: "127.0.0.1", port: simA.port), timeoutMs: 100, retries: 0)
        defer { busA.stop() }
        let busB = ModbusBus(name: "b", transport: .tcp(host: "127.0.0.1", port: simB.port), timeoutMs: 100, retries: 0)
        defer { busB.stop() }
        let readersA = (1...3).map { (u: Int) in (DeviceReader(profile: simA.profile, unit: u, deviceName: "a" + String(u)), busA) }
        let readersB = (1...3).map { (u: Int) in (DeviceReader(profile: simB.profile, unit: u, deviceName: "b" + String(u)), busB) }
        let readers = readersA + readersB
        let interval: Int64 = 150
        var scheduler = PollScheduler(intervalsMs: Array(repeating: interval, count: 6))
        simB.setFault(.noAnswer, unit: 3)
        let t0 = TestSupport.monotonicMs()
        let outcomes = drive(readers, start: t0, untilMs: 6000, scheduler: &scheduler)
        // Measure 2.5-6 s, when unit 3's backoff has grown.
        func polls(_ d: Int) -> Int { outcomes.filter { $0.device == d && $0.ok && $0.atMs >= 2500 }.count }
        for d in 0..<2 {
            let healthy = polls(d), withSilent = polls(d + 3)
            #expect(healthy >= 6, "sanity: \(healthy) polls in 3.5 s on the healthy bus")
            #expect(Double(withSilent) >= 0.8 * Double(healthy),
                    "unit \(d + 1): \(withSilent) polls next to a silent unit vs \(healthy) on the healthy bus")
        }
        let healthyThird = outcomes.filter { $0.device == 2 }.allSatisfy { $0.ok }
        #expect(healthyThird)
        let silent = outcomes.filter { $0.device == 5 }
        let allFailed = silent.allSatisfy { !$0.ok }
        #expect(!silent.isEmpty && allFailed)
        // Backed off: each attempt waits at least interval x 2^(failures-1) after the previous one failed.
        #expect(silent.count >= 2 && silent.count <= 7, "\(silent.map(\.atMs))")
        for k in 1..<max(1, silent.count) {
            let gap = silent[k].atMs - silent[k - 1].atMs
            #expect(gap >= interval << Int64(k - 1), "attempt \(k + 1) came \(gap) ms after attempt \(k)")
        }
        #expect(silent.first?.error?.contains("no answer within 100 ms") == true, "\(silent.first?.error ?? "-")")
        let stale = (3..<6).map { scheduler.isStale($0, nowMs: outcomes.last?.atMs ?? 6000) }
        #expect(stale == [false, false, true])

        // The device answers again: it is read within its backoff.
        let backoff = scheduler.backoffMs(5)
        let cleared = TestSupport.monotonicMs() - t0
        simB.setFault(.none)
        let later = drive(readers, start: t0, untilMs: cleared + backoff + 1000, scheduler: &scheduler)
        let back = try #require(later.first { $0.device == 5 && $0.ok }, "unit 3 read again within \(backoff) ms + 1 s")
        #expect(back.atMs - cleared <= backoff + 1000)
        #expect(!scheduler.isStale(5, nowMs: back.atMs))
    }

    @Test func restartedTCPDeviceIsReadAgainWithinTheBackoff() throws {
        let first = try startSimulator("eastron-sdm120")
        let port = first.port
        let bus = ModbusBus(name: "lan", transport: .tcp(host: "127.0.0.1", port: port), timeoutMs: 200, retries: 0)
        defer { bus.stop() }
        let reader = DeviceReader(profile: first.profile, unit: 1, deviceName: "meter")
        var scheduler = PollScheduler(intervalsMs: [100])
        let t0 = TestSupport.monotonicMs()
        let before = drive([reader], bus: bus, start: t0, untilMs: 300, scheduler: &scheduler)
        #expect(before.contains { $0.ok })
        first.stop()
        let down = drive([reader], bus: bus, start: t0, untilMs: 2500, scheduler: &scheduler)
        // Connection refused, or a timeout when the old connection was still half open.
        #expect(down.contains { !$0.ok }, "\(down.map(\.error))")
        #expect(scheduler.failures(0) >= 1 && scheduler.isStale(0, nowMs: 2500))
        let backoff = scheduler.backoffMs(0)
        let second = try startSimulator("eastron-sdm120", port: port)
        defer { second.stop() }
        let restarted = TestSupport.monotonicMs() - t0
        let up = drive([reader], bus: bus, start: t0, untilMs: restarted + backoff + 1000, scheduler: &scheduler)
        let ok = try #require(up.first { $0.ok }, "read again within the backoff (\(backoff) ms) + 1 s")
        #expect(ok.atMs - restarted <= backoff + 1000)
    }

    @Test func gapIsKeptWhenSwitchingUnitIDs() throws {
        let sim = try startSimulator("eastron-sdm120")
        defer { sim.stop() }
        let bus = ModbusBus(name: "lan", transport: .tcp(host: "127.0.0.1", port: sim.port), timeoutMs: 500, retries: 0, gapMs: 60)
        defer { bus.stop() }
        let start = TestSupport.monotonicMs()
        for i in 0..<6 { #expect((try? bus.read(table: .input, address: 0, count: 2, unit: 1 + i % 3).get()) != nil) }
        let elapsed = TestSupport.monotonicMs() - start
        #expect(elapsed >= 5 * 60 && elapsed < 2000, "6 transactions on units 1,2,3,1,2,3 with a 60 ms gap took \(elapsed) ms")
    }

    @Test func exceptionIsReportedByName() throws {
        let sim = try startSimulator("eastron-sdm120")
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        sim.setFault(.exception(2))
        let r = DeviceReader(profile: sim.profile, deviceName: "meter").read(on: bus)
        guard case let .failure(e) = r else { Issue.record("expected an exception"); return }
        #expect(e.kind == .exception(code: 2))
        #expect(e.description == "meter (unit 1 on lan): read input registers 0+14: exception 2: illegal data address (EMBXILADD)")
        sim.setFault(.exception(6))
        guard case let .failure(busy) = bus.read(table: .holding, address: 0, count: 1, unit: 1) else { Issue.record("expected"); return }
        #expect(busy.message == "exception 6: slave device busy")
    }

    @Test func slowAnswerIsSlow() throws {
        let sim = try startSimulator("eastron-sdm120")
        defer { sim.stop() }
        let bus = tcpBus(sim.port, timeoutMs: 1000)
        defer { bus.stop() }
        sim.setFault(.slow(ms: 300))
        let start = TestSupport.monotonicMs()
        #expect((try? bus.read(table: .input, address: 0, count: 2, unit: 1).get()) != nil)
        #expect(TestSupport.monotonicMs() - start >= 290)
    }
}
