import GridletCore
import Testing

@Suite struct StatePublishGateTests {
    static let base = StateDigest(source: "default", events: [], schedules: [], commOK: true, paused: false, appliedA: 48,
                                  limitW: 11040, clockSynced: true, nextTransitionMs: nil, devicesOK: [true, true])

    /// A gate that has published `base` at t = 0.
    func published(intervalMs: Int64 = 1000) -> StatePublishGate {
        var g = StatePublishGate(telemetryIntervalMs: intervalMs)
        #expect(g.offer(Self.base, nowMs: 0) == .first)
        return g
    }

    @Test func voltageWobbleInsideTheDeadbandWaitsForTheRefresh() {
        var g = published()
        // 0.5 % up and down every second, as a charger's measured voltage moves.
        for s in 1..<30 {
            var d = Self.base
            d.limitW = s % 2 == 1 ? 11095.2 : 11040
            #expect(g.offer(d, nowMs: Int64(s) * 1000) == nil, "second \(s)")
        }
        var d = Self.base
        d.limitW = 11095.2
        #expect(g.offer(d, nowMs: 30_000) == .refresh)
        #expect(g.lastPublished?.limitW == 11095.2)
    }

    @Test func theRefreshIsTheTelemetryIntervalAtLeastThirtySeconds() {
        #expect(StatePublishGate(telemetryIntervalMs: 1000).refreshMs == 30_000)
        #expect(StatePublishGate(telemetryIntervalMs: 60_000).refreshMs == 60_000)
        var g = published(intervalMs: 60_000)
        #expect(g.offer(Self.base, nowMs: 59_999) == nil)
        #expect(g.offer(Self.base, nowMs: 60_000) == .refresh)
    }

    @Test func deadbandIsOnePercentAtLeastFiftyWatts() {
        #expect(StatePublishGate.deadbandW(around: 11040) == 110.4)
        #expect(StatePublishGate.deadbandW(around: 1400) == 50)
        #expect(StatePublishGate.deadbandW(around: 0) == 50)
        var g = published()
        var d = Self.base
        d.limitW = 11040 + 110.4
        #expect(g.offer(d, nowMs: 2000) == nil, "exactly the deadband is not beyond it")
        d.limitW = 11040 - 111
        #expect(g.offer(d, nowMs: 2000) == .limit)
        // Measured from the last published value, not the previous sample: a slow drift publishes too.
        d.limitW = 11040 - 111 - 60
        #expect(g.offer(d, nowMs: 4000) == nil)
        d.limitW = 11040 - 111 - 120
        #expect(g.offer(d, nowMs: 5000) == .limit)
    }

    @Test func aLimitOnlyChangePublishesAtMostOncePerSecond() {
        var g = published()
        var d = Self.base
        d.limitW = 5000
        #expect(g.offer(d, nowMs: 300) == nil)
        #expect(g.offer(d, nowMs: 999) == nil)
        #expect(g.offer(d, nowMs: 1000) == .limit)
        d.limitW = 6000
        #expect(g.offer(d, nowMs: 1500) == nil)
        #expect(g.offer(d, nowMs: 2000) == .limit)
    }

    @Test func discreteChangesPublishAtOnce() {
        func changed(_ f: (inout StateDigest) -> Void) -> StatePublishGate.Reason? {
            var g = published()
            var d = Self.base
            f(&d)
            return g.offer(d, nowMs: 1)   // 1 ms after the last publish: no spacing for these
        }
        #expect(changed { $0.source = "dispatch:evt-1" } == .source)
        #expect(changed { $0.events = ["evt-1"] } == .events)
        #expect(changed { $0.schedules = ["peak"] } == .schedules)
        #expect(changed { $0.commOK = false } == .comm)
        #expect(changed { $0.paused = true } == .paused)
        #expect(changed { $0.appliedA = 45 } == .appliedCurrent)
        #expect(changed { $0.clockSynced = false } == .clock)
        #expect(changed { $0.nextTransitionMs = 1_800_000_000_000 } == .nextTransition)
        #expect(changed { $0.devicesOK = [false, true] } == .devices)
        #expect(changed { _ in } == nil)
    }

    @Test func aNewSessionPublishesAtOnce() {
        var g = published()
        #expect(g.offer(Self.base, nowMs: 10) == nil)
        g.forget()
        #expect(g.offer(Self.base, nowMs: 20) == .first)
        #expect(g.offer(Self.base, nowMs: 30) == nil)
    }
}
