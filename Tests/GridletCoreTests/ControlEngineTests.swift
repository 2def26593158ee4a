import Testing
@testable import GridletCore

/// A manual clock: every call gets an explicit Int64 millisecond instant.
let t0: Int64 = 1_811_869_200_000 // 2027-06-01T17:00:00Z
let hw: Double = 22_080 // 32 A × 3 × 230 V

func settings(defaultLimitW: Double? = nil, fallback: Double = 1400, timeoutMs: Int64 = 120_000, heartbeat: Bool = false,
              delayMs: Int64 = 30_000, randomMs: Int64 = 0, ramp: Double = 500, maxImportW: Double? = nil) -> ControlSettings {
    ControlSettings(defaultLimitW: defaultLimitW, fallbackLimitW: fallback, commLossTimeoutMs: timeoutMs, heartbeatRequired: heartbeat,
                    restoreDelayMs: delayMs, restoreRandomMs: randomMs, rampWPerS: ramp, maxImportW: maxImportW)
}

func engine(_ s: ControlSettings = settings(), seed: UInt64 = 42, connected: Bool = true) -> ControlEngine {
    var e = ControlEngine(settings: s, nowMs: t0, seed: seed)
    if connected { e.sessionConnected(nowMs: t0) }
    return e
}

func event(_ id: String, at startOffsetS: Int64 = 0, for durationS: Int64 = 3600, limit: Double, primacy: Int = 1,
           createdOffsetS: Int64 = 0, randomize: Int = 0, optOut: Bool = false, maxOfflineS: Int? = nil) -> DispatchEvent {
    DispatchEvent(id: id, createdMs: t0 + createdOffsetS * 1000, startMs: t0 + startOffsetS * 1000, durationMs: durationS * 1000,
                  limitW: limit, primacy: primacy, randomizeStartS: randomize, optOutAllowed: optOut, maxOfflineS: maxOfflineS)
}

extension ControlEngine {
    /// advance + decide at one instant, as the agent does.
    mutating func step(_ now: Int64, _ inputs: ControlInputs = ControlInputs(hardwareMaxW: hw)) -> ControlDecision {
        _ = advance(nowMs: now)
        return decide(nowMs: now, inputs: inputs)
    }
}

@Suite struct ArbitrationTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var defaultLimitW: Double? = nil
        var maxImportW: Double? = nil
        var inputs: ControlInputs
        var limit: Double
        var source: String
        var testDescription: String { name }
    }

    @Test(arguments: [
        Row(name: "hardware max when default is null", inputs: ControlInputs(hardwareMaxW: hw), limit: hw, source: "default"),
        Row(name: "default limit", defaultLimitW: 11_000, inputs: ControlInputs(hardwareMaxW: hw), limit: 11_000, source: "default"),
        Row(name: "default above hardware", defaultLimitW: 50_000, inputs: ControlInputs(hardwareMaxW: hw), limit: hw, source: "default"),
        Row(name: "static max import without meter", maxImportW: 8000, inputs: ControlInputs(hardwareMaxW: hw),
            limit: 8000, source: "site_limit"),
        Row(name: "static max import above target", defaultLimitW: 5000, maxImportW: 8000, inputs: ControlInputs(hardwareMaxW: hw),
            limit: 5000, source: "default"),
        Row(name: "site limit = max import - other load", maxImportW: 20_000,
            inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: 15_000, chargerPowerW: 5000),
            limit: 10_000, source: "site_limit"),
        Row(name: "site limit not binding", maxImportW: 40_000,
            inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: 15_000, chargerPowerW: 5000),
            limit: hw, source: "default"),
        Row(name: "other load above max import -> 0", maxImportW: 10_000,
            inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: 14_000, chargerPowerW: 1000),
            limit: 0, source: "site_limit"),
        Row(name: "meter without max import", inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: 50_000),
            limit: hw, source: "default"),
        Row(name: "stale meter derates to fallback", maxImportW: 20_000,
            inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: nil),
            limit: 1400, source: "derate:meter_stale"),
        Row(name: "stale meter, no max import", inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: nil),
            limit: 1400, source: "derate:meter_stale"),
        Row(name: "stale meter still bounded by max import", maxImportW: 1000,
            inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: nil), limit: 1000, source: "site_limit"),
        Row(name: "stale meter, target below fallback", defaultLimitW: 900,
            inputs: ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: nil), limit: 900, source: "default"),
        Row(name: "faulty charger derates", inputs: ControlInputs(hardwareMaxW: hw, faultyDevice: "wallbox"),
            limit: 1400, source: "derate:wallbox_fault"),
        Row(name: "hardware is the minimum", defaultLimitW: 11_000, maxImportW: 20_000, inputs: ControlInputs(hardwareMaxW: 7360),
            limit: 7360, source: "default"),
    ])
    func effectiveLimitIsTheMinimum(row: Row) {
        var e = engine(settings(defaultLimitW: row.defaultLimitW, maxImportW: row.maxImportW))
        let d = e.step(t0 + 1000, row.inputs)
        #expect(d.limitW == row.limit)
        #expect(d.source == row.source)
        #expect(d.commOK)
        #expect(!d.restoring)
    }

    @Test func dispatchTargetCombinesWithSiteLimit() {
        var e = engine(settings(maxImportW: 20_000))
        _ = e.handle(.event(event("ev", limit: 12_000)), nowMs: t0)
        let meter = ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: 9000, chargerPowerW: 0)
        #expect(e.step(t0, meter).limitW == 11_000)
        #expect(e.step(t0, meter).source == "site_limit")
        let quiet = ControlInputs(hardwareMaxW: hw, hasSiteMeter: true, siteMeterPowerW: 1000, chargerPowerW: 1000)
        let d = e.step(t0 + 1000, quiet)
        #expect(d.limitW == 12_000)
        #expect(d.source == "dispatch:ev")
        #expect(d.activeEvents == ["ev"])
    }

    struct PairRow: Sendable, CustomTestStringConvertible {
        var a: DispatchEvent, b: DispatchEvent, winner: String
        var testDescription: String { "\(a.id)/p\(a.primacy) vs \(b.id)/p\(b.primacy) -> \(winner)" }
    }

    @Test(arguments: [
        PairRow(a: event("x", limit: 5000, primacy: 0), b: event("y", limit: 1000, primacy: 1), winner: "x"),
        PairRow(a: event("x", limit: 1000, primacy: 64), b: event("y", limit: 5000, primacy: 2), winner: "y"),
        PairRow(a: event("x", limit: 1000, createdOffsetS: -10), b: event("y", limit: 5000, createdOffsetS: -5), winner: "y"),
        PairRow(a: event("x", limit: 1000, createdOffsetS: -1), b: event("y", limit: 5000, createdOffsetS: -2), winner: "x"),
        PairRow(a: event("b", limit: 1000), b: event("a", limit: 5000), winner: "b"),
        PairRow(a: event("a", limit: 1000), b: event("B", limit: 5000), winner: "a"),
        PairRow(a: event("a", limit: 1000), b: event("aa", limit: 5000), winner: "aa"),
        PairRow(a: event("_", limit: 1000), b: event("Z", limit: 5000), winner: "_"),
    ])
    func precedence(row: PairRow) {
        let winner = row.a.id == row.winner ? row.a : row.b
        let loser = row.a.id == row.winner ? row.b : row.a
        #expect(DispatchEvent.precedes(winner, loser))
        #expect(!DispatchEvent.precedes(loser, winner))
        for order in [[row.a, row.b], [row.b, row.a]] {
            var e = engine()
            var responses: [EventResponse] = []
            for ev in order { responses += e.handle(.event(ev), nowMs: t0).responses }
            // Same window: the loser wins no instant, so it is superseded (SPEC §2) and not active.
            #expect(responses.filter { $0.status == .superseded }.map(\.event) == [loser.id])
            let d = e.step(t0 + 1)
            #expect(d.source == "dispatch:\(row.winner)")
            #expect(d.limitW == winner.limitW)
            #expect(d.activeEvents == [winner.id])
        }
    }
}

@Suite struct CommLossTests {
    @Test func sessionUpIsContactForever() {
        var e = engine()
        let d = e.step(t0 + 10 * 3_600_000)
        #expect(d.commOK)
        #expect(d.source == "default")
        #expect(!e.isCommLost(nowMs: t0 + 10 * 3_600_000))
    }

    @Test(arguments: [(Int64(0), false), (60_000, false), (120_000, false), (120_001, true), (3_600_000, true)])
    func lostAfterTimeoutFromDisconnect(afterMs: Int64, lost: Bool) {
        var e = engine()
        e.sessionDisconnected(nowMs: t0 + 5000)
        let d = e.step(t0 + 5000 + afterMs)
        #expect(e.isCommLost(nowMs: t0 + 5000 + afterMs) == lost)
        #expect(d.commOK == !lost)
        #expect(d.source == (lost ? "fallback" : "default"))
        #expect(d.limitW == (lost ? 1400 : hw))
    }

    @Test func neverConnectedCountsFromStart() {
        var e = engine(connected: false)
        #expect(e.step(t0 + 120_000).source == "default")
        #expect(e.step(t0 + 120_001).source == "fallback")
    }

    @Test func heartbeatRequiredNeedsCommands() {
        var e = engine(settings(heartbeat: true))
        #expect(e.step(t0 + 100_000).commOK)
        _ = e.handle(.ping, nowMs: t0 + 100_000)
        #expect(e.step(t0 + 220_000).commOK)
        #expect(!e.step(t0 + 220_001).commOK)
        #expect(e.step(t0 + 220_001).source == "fallback")
        // A reconnect alone is not contact under heartbeat_required.
        e.sessionDisconnected(nowMs: t0 + 230_000)
        e.sessionConnected(nowMs: t0 + 231_000)
        #expect(!e.step(t0 + 232_000).commOK)
        _ = e.handle(.ping, nowMs: t0 + 233_000)
        #expect(e.step(t0 + 233_000).commOK)
    }

    @Test func eventsKeepRunningWhileLost() {
        var e = engine()
        _ = e.handle(.event(event("ev", for: 1800, limit: 3000)), nowMs: t0)
        e.sessionDisconnected(nowMs: t0)
        let during = e.step(t0 + 600_000)
        #expect(!during.commOK)
        #expect(during.source == "dispatch:ev")
        #expect(during.limitW == 3000)
        let after = e.step(t0 + 1_800_000)
        #expect(after.source == "fallback")
        #expect(after.limitW == 1400)
    }

    @Test(arguments: [(Int64(299_000), "dispatch:ev"), (300_000, "dispatch:ev"), (300_001, "fallback"), (900_000, "fallback")])
    func maxOfflineEndsEventsDuringLoss(afterMs: Int64, source: String) {
        var e = engine()
        _ = e.handle(.event(event("ev", for: 3600, limit: 3000, maxOfflineS: 300)), nowMs: t0)
        e.sessionDisconnected(nowMs: t0)
        #expect(e.step(t0 + afterMs).source == source)
    }

    @Test func maxOfflineDoesNotApplyWhileConnected() {
        var e = engine()
        _ = e.handle(.event(event("ev", for: 3600, limit: 3000, maxOfflineS: 60)), nowMs: t0)
        #expect(e.step(t0 + 1_000_000).source == "dispatch:ev")
    }
}

@Suite struct RestoreTests {
    /// Comm lost from t0 (fallback 1400), back at `back`.
    static func lostThenBack(_ s: ControlSettings, seed: UInt64 = 42, back: Int64) -> ControlEngine {
        var e = engine(s, seed: seed)
        e.sessionDisconnected(nowMs: t0)
        let d = e.step(t0 + 150_000)
        precondition(d.source == "fallback")
        e.sessionConnected(nowMs: back)
        return e
    }

    @Test func holdsThenRampsAfterCommReturns() {
        let back = t0 + 200_000
        var e = Self.lostThenBack(settings(delayMs: 30_000, randomMs: 0, ramp: 500), back: back)
        let first = e.step(back)
        #expect(first.limitW == 1400)
        #expect(first.restoring)
        #expect(first.commOK)
        #expect(first.nextTransitionMs == back + 30_000)
        #expect(e.step(back + 29_999).limitW == 1400)
        #expect(e.step(back + 30_000).limitW == 1400)
        #expect(e.step(back + 32_000).limitW == 2400)
        #expect(e.step(back + 40_000).limitW == 6400)
        let end = back + 30_000 + 41_360 // (22080 - 1400) / 500 W/s
        let almost = e.step(end - 1000)
        #expect(almost.restoring)
        #expect(almost.limitW == hw - 500)
        let done = e.step(end)
        #expect(!done.restoring)
        #expect(done.limitW == hw)
        #expect(done.source == "default")
    }

    @Test(arguments: Array(UInt64(1)...12))
    func randomDelayWithinBoundsAndUnderRampLine(seed: UInt64) {
        let back = t0 + 200_000
        let delay: Int64 = 30_000, random: Int64 = 120_000
        var e = Self.lostThenBack(settings(delayMs: delay, randomMs: random, ramp: 500), seed: seed, back: back)
        var rampStart: Int64?
        for t in stride(from: back, through: back + delay + random + 60_000, by: 250) {
            let d = e.step(t)
            let line = 1400 + 0.5 * Double(max(0, t - back - delay))
            #expect(d.limitW >= 1400)
            #expect(d.limitW <= min(line, hw) + 1e-9, "t=\(t - back) limit=\(d.limitW)")
            if t < back + delay { #expect(d.limitW == 1400) }
            if rampStart == nil, d.limitW > 1400 { rampStart = t - Int64(((d.limitW - 1400) / 0.5).rounded()) }
        }
        let start = try! #require(rampStart)
        #expect(start >= back + delay)
        #expect(start <= back + delay + random)
    }

    @Test func randomDelayVariesWithSeed() {
        var starts = Set<Int64>()
        for seed in UInt64(1)...10 {
            let back = t0 + 200_000
            var e = Self.lostThenBack(settings(delayMs: 0, randomMs: 120_000, ramp: 500), seed: seed, back: back)
            let d = e.step(back)
            starts.insert(d.nextTransitionMs ?? -1)
        }
        #expect(starts.count > 5)
        #expect(starts.allSatisfy { $0 >= t0 + 200_000 && $0 <= t0 + 320_000 })
    }

    @Test func holdsAfterEventEnds() {
        var e = engine(settings(delayMs: 10_000, ramp: 1000))
        _ = e.handle(.event(event("ev", for: 60, limit: 2000)), nowMs: t0)
        #expect(e.step(t0).limitW == 2000)
        let end = t0 + 60_000
        let d = e.step(end)
        #expect(d.limitW == 2000)
        #expect(d.restoring)
        #expect(d.activeEvents.isEmpty)
        #expect(e.step(end + 10_000).limitW == 2000)
        #expect(e.step(end + 15_000).limitW == 7000)
    }

    @Test func holdsAfterCancel() {
        var e = engine(settings(delayMs: 10_000, ramp: 1000))
        _ = e.handle(.event(event("ev", for: 600, limit: 2000)), nowMs: t0)
        #expect(e.step(t0 + 1000).limitW == 2000)
        _ = e.handle(.cancel(id: "ev", randomizeS: 0), nowMs: t0 + 2000)
        #expect(e.step(t0 + 2000).limitW == 2000)
        #expect(e.step(t0 + 13_000).limitW == 3000)
    }

    @Test func higherEventBelowEndedOneIsRestoredToo() {
        // A restricting event ends while a lower-precedence, higher-limit event runs: the target rises, so hold and ramp.
        var e = engine(settings(delayMs: 10_000, ramp: 1000))
        _ = e.handle(.event(event("a", for: 60, limit: 2000, primacy: 0)), nowMs: t0)
        _ = e.handle(.event(event("b", for: 3600, limit: 8000, primacy: 1)), nowMs: t0)
        #expect(e.step(t0).limitW == 2000)
        let end = t0 + 60_000
        let d = e.step(end)
        #expect(d.source == "dispatch:b")
        #expect(d.limitW == 2000)
        #expect(d.restoring)
        #expect(e.step(end + 12_000).limitW == 4000)
        #expect(e.step(end + 16_000).limitW == 8000)
    }

    @Test func newEventAppliesAtOnceEvenDuringHold() {
        let back = t0 + 200_000
        var e = Self.lostThenBack(settings(delayMs: 30_000), back: back)
        #expect(e.step(back).restoring)
        _ = e.handle(.event(DispatchEvent(id: "up", createdMs: back + 5000, startMs: back + 5000, durationMs: 600_000,
                                          limitW: 9000)), nowMs: back + 5000)
        let d = e.step(back + 5000)
        #expect(d.limitW == 9000)
        #expect(!d.restoring)
        #expect(d.source == "dispatch:up")
    }

    @Test func newHigherPrecedenceEventAppliesAtOnce() {
        var e = engine(settings(delayMs: 30_000))
        _ = e.handle(.event(event("low", for: 3600, limit: 2000, primacy: 5)), nowMs: t0)
        #expect(e.step(t0).limitW == 2000)
        _ = e.handle(.event(event("high", at: 60, for: 600, limit: 9000, primacy: 0)), nowMs: t0 + 1000)
        #expect(e.step(t0 + 59_999).limitW == 2000)
        let d = e.step(t0 + 60_000)
        #expect(d.limitW == 9000)
        #expect(!d.restoring)
    }

    @Test func lowerLimitAppliesAtOnceDuringRamp() {
        let back = t0 + 200_000
        var e = Self.lostThenBack(settings(delayMs: 0, ramp: 100), back: back)
        #expect(e.step(back).limitW == 1400)
        #expect(e.step(back + 10_000).limitW == 2400)
        // Lost again: the fallback target is below the ramp.
        e.sessionDisconnected(nowMs: back + 10_000)
        let d = e.step(back + 130_001)
        #expect(d.limitW == 1400)
        #expect(!d.restoring)
        #expect(d.source == "fallback")
    }

    @Test func loweringStepsDownImmediately() {
        var e = engine()
        #expect(e.step(t0).limitW == hw)
        _ = e.handle(.event(event("cut", for: 600, limit: 500)), nowMs: t0 + 1)
        let d = e.step(t0 + 1)
        #expect(d.limitW == 500)
        #expect(!d.restoring)
    }
}
