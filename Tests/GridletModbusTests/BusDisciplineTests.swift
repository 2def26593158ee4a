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
               scheduler: inout PollScheduler, during: (Int64) -> Void = { _ in }) -> [Outcome] {
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
            during(now)
            for i in scheduler.due(nowMs: now) {
                readers[i].read(on: bus) { r in
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

    @Test func silentDeviceDoesNotSlowTheOthers() throws {
        let sim = try startSimulator("eastron-sdm120")
        defer { sim.stop() }
        let bus = ModbusBus(name: "lan", transport: .tcp(host: "127.0.0.1", port: sim.port), timeoutMs: 100, retries: 0)
        defer { bus.stop() }
        let readers = (1...3).map { DeviceReader(profile: sim.profile, unit: $0, deviceName: "meter\($0)") }
        let interval: Int64 = 150
        var scheduler = PollScheduler(intervalsMs: [interval, interval, interval])
        let t0 = TestSupport.monotonicMs()
        // 0-2 s: all three answer (baseline, measured in this run on this machine).
        let baseline = drive(readers, bus: bus, start: t0, untilMs: 2000, scheduler: &scheduler)
        let baselineOK = baseline.allSatisfy { $0.ok }
        #expect(baselineOK, "\(baseline.compactMap(\.error))")
        // From 2 s on unit 3 stops answering; measure 3.5-6.5 s, when its backoff has grown.
        sim.setFault(.noAnswer, unit: 3)
        let outcomes = drive(readers, bus: bus, start: t0, untilMs: 6500, scheduler: &scheduler)
        func rate(_ o: [Outcome], _ d: Int, _ from: Int64, _ to: Int64) -> Double {
            Double(o.filter { $0.device == d && $0.ok && $0.atMs >= from && $0.atMs < to }.count) * 1000 / Double(to - from)
        }
        for d in 0..<2 {
            let before = rate(baseline, d, 0, 2000), during = rate(outcomes, d, 3500, 6500)
            #expect(before >= 0.6 * 1000 / Double(interval), "baseline \(before)/s")
            #expect(during >= 0.8 * before, "device \(d + 1): \(during) polls/s with unit 3 silent vs \(before)/s before")
        }
        let silent = outcomes.filter { $0.device == 2 }
        #expect(silent.allSatisfy { !$0.ok })
        let inWindow = silent.filter { $0.atMs >= 3500 && $0.atMs < 6500 }.count
        #expect(inWindow <= 2, "backed off: \(inWindow) attempts in 3 s instead of 20")
        #expect(silent.count >= 3 && silent.count <= 7, "\(silent.map(\.atMs))")
        #expect(silent.first?.error?.contains("no answer within 100 ms") == true, "\(silent.first?.error ?? "-")")
        let stale = (0..<3).map { scheduler.isStale($0, nowMs: 6500) }
        #expect(stale == [false, false, true])

        // The device answers again: it is read within its backoff.
        let backoff = scheduler.backoffMs(2)
        let cleared = TestSupport.monotonicMs() - t0
        sim.setFault(.none)
        let later = drive(readers, bus: bus, start: t0, untilMs: cleared + backoff + 500, scheduler: &scheduler)
        let back = try #require(later.first { $0.device == 2 && $0.ok }, "device 3 read again within \(backoff) ms + 500 ms")
        #expect(back.atMs - cleared <= backoff + 500)
        #expect(!scheduler.isStale(2, nowMs: back.atMs))
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
        let down = drive([reader], bus: bus, start: t0, untilMs: 1500, scheduler: &scheduler)
        #expect(down.contains { !$0.ok && $0.error?.contains("connection refused") == true }, "\(down.map(\.error))")
        #expect(scheduler.failures(0) >= 3)
        let backoff = scheduler.backoffMs(0)
        let second = try startSimulator("eastron-sdm120", port: port)
        defer { second.stop() }
        let restarted = TestSupport.monotonicMs() - t0
        let up = drive([reader], bus: bus, start: t0, untilMs: restarted + backoff + 400, scheduler: &scheduler)
        let ok = try #require(up.first { $0.ok }, "read again within the backoff (\(backoff) ms)")
        #expect(ok.atMs - restarted <= backoff + 400)
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
