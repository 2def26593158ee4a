import GridletCore
import Testing

/// 3 phases, 6..16 A, failsafe and alive registers, 60 s failsafe timeout.
func vestelLike(refreshFraction: Double? = nil, validityS: Double? = nil, failsafe: Bool = true, alive: Bool = true) -> ChargerDriverSettings {
    ChargerDriverSettings(phases: 3, maxCurrent: 16, minCurrent: 6, resolution: 1, hasFailsafe: failsafe,
                          aliveValue: alive ? 1 : nil, setpointValidityS: validityS, refreshFraction: refreshFraction,
                          failsafeTimeoutMs: 60_000, minDwellMs: 0)
}

/// Drives once and completes every write with success (or the error the test names).
@discardableResult
func turn(_ d: inout ChargerDriver, limitW: Double = 4140, fallbackW: Double = 1400, at t: Int64,
          fail: Set<ChargerRegister> = []) -> [ChargerAction] {
    let actions = d.drive(limitW: limitW, voltage: 230, fallbackW: fallbackW, nowMs: t)
    for case let .write(r, _) in actions { d.completed(r, error: fail.contains(r) ? "refused" : nil, nowMs: t) }
    return actions
}

func writes(_ actions: [ChargerAction], _ register: ChargerRegister) -> [Double] {
    actions.compactMap { if case let .write(r, v) = $0, r == register { return v } else { return nil } }
}

@Suite struct ChargerDriverTests {
    @Test func firstTurnProgramsFailsafeSetpointAndAlive() {
        var d = ChargerDriver(settings: vestelLike())
        let a = d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 0)
        #expect(writes(a, .failsafeCurrent) == [6])
        #expect(writes(a, .failsafeTimeout) == [60])
        #expect(writes(a, .setpoint) == [6])
        #expect(writes(a, .alive) == [1])
        #expect(d.written?.amps == 6 && d.written?.paused == false)
    }

    @Test func failedFailsafeCurrentIsRetriedWhileTheTimeoutWriteSucceeded() {
        var d = ChargerDriver(settings: vestelLike())
        let first = turn(&d, fallbackW: 4140, at: 0, fail: [.failsafeCurrent])
        #expect(writes(first, .failsafeCurrent) == [6])
        #expect(d.confirmed(.failsafeTimeout) == 60)
        #expect(d.confirmed(.failsafeCurrent) == nil)
        // Not in a tight loop: nothing before the 1 s backoff...
        #expect(writes(turn(&d, fallbackW: 4140, at: 500), .failsafeCurrent).isEmpty)
        // ...then the current again (and only the current: the timeout is confirmed).
        let retry = turn(&d, fallbackW: 4140, at: 1000)
        #expect(writes(retry, .failsafeCurrent) == [6])
        #expect(writes(retry, .failsafeTimeout).isEmpty)
        #expect(d.confirmed(.failsafeCurrent) == 6)
        // Written: never again until the fallback changes.
        #expect(writes(turn(&d, fallbackW: 4140, at: 60_000), .failsafeCurrent).isEmpty)
        #expect(writes(turn(&d, fallbackW: 4830, at: 60_001), .failsafeCurrent) == [7])
    }

    @Test func successOfOneFailsafeRegisterSaysNothingOfTheOther() {
        var d = ChargerDriver(settings: vestelLike())
        turn(&d, at: 0, fail: [.failsafeTimeout])
        #expect(d.confirmed(.failsafeCurrent) == 0)   // 1400 W on 3 x 230 V is below 6 A: paused
        #expect(d.confirmed(.failsafeTimeout) == nil)
        let retry = turn(&d, at: 1000)
        #expect(writes(retry, .failsafeTimeout) == [60])
        #expect(writes(retry, .failsafeCurrent).isEmpty)
    }

    @Test func refreshFollowsRefreshFractionCappedAtAQuarter() {
        #expect(vestelLike().refreshIntervalMs == 15_000)
        #expect(vestelLike(refreshFraction: 0.1).refreshIntervalMs == 6000)
        #expect(vestelLike(refreshFraction: 0.5).refreshIntervalMs == 15_000)   // SPEC: never longer than timeout/4
        var d = ChargerDriver(settings: vestelLike(refreshFraction: 0.1))
        turn(&d, at: 0)
        #expect(writes(turn(&d, at: 5999), .alive).isEmpty)
        #expect(writes(turn(&d, at: 6000), .alive) == [1])
        #expect(writes(turn(&d, at: 6000), .setpoint) == [])
        #expect(writes(turn(&d, at: 11_999), .alive).isEmpty)
        #expect(writes(turn(&d, at: 12_000), .alive) == [1])
    }

    @Test func validityTimeRewritesTheSetpointAtHalfOfIt() {
        let s = vestelLike(validityS: 10, failsafe: false, alive: false)
        #expect(s.setpointRewriteMs == 5000)
        var d = ChargerDriver(settings: s)
        turn(&d, at: 0)
        #expect(writes(turn(&d, at: 4999), .setpoint).isEmpty)
        #expect(writes(turn(&d, at: 5000), .setpoint) == [6])
    }

    @Test func setpointWrittenOnChangeNotEveryTurn() {
        var d = ChargerDriver(settings: vestelLike(failsafe: false, alive: false))
        #expect(writes(turn(&d, limitW: 4140, at: 0), .setpoint) == [6])
        #expect(writes(turn(&d, limitW: 4140, at: 100), .setpoint).isEmpty)
        #expect(writes(turn(&d, limitW: 6900, at: 200), .setpoint) == [10])
        #expect(writes(turn(&d, limitW: 1000, at: 300), .setpoint) == [0])
        #expect(d.written?.paused == true)
    }

    @Test func aChargerThatRefusesIsRetriedWithBackoffNotInALoop() {
        var d = ChargerDriver(settings: vestelLike())
        let all = Set(ChargerRegister.allCases)
        var attempts: [ChargerRegister: Int] = [:]
        var t: Int64 = 0
        while t <= 30_000 {   // a turn every 10 ms for 30 s
            for case let .write(r, _) in turn(&d, at: t, fail: all) { attempts[r, default: 0] += 1 }
            t += 10
        }
        // 1, 2, 4, 8, 10, 10 s: at most 7 attempts per register in 30 s.
        for r in ChargerRegister.allCases { #expect((attempts[r] ?? 0) <= 7, "\(r): \(attempts[r] ?? 0) attempts") }
        #expect((attempts[.setpoint] ?? 0) >= 4)
        #expect(d.written == nil)
        #expect(d.fault(deviceAnswering: false) == "refused")
        #expect(d.fault(deviceAnswering: true) == nil)
        // The shell sleeps until the next retry, not in ticks.
        #expect(d.nextDueMs().map { $0 > t - 10 } == true)
    }

    @Test func firstFailureIsReportedOnceUntilSuccess() {
        var d = ChargerDriver(settings: vestelLike(failsafe: false, alive: false))
        _ = d.drive(limitW: 4140, voltage: 230, fallbackW: 0, nowMs: 0)
        let c1 = d.completed(.setpoint, error: "timeout", nowMs: 0) == true
        #expect(c1)
        _ = d.drive(limitW: 4140, voltage: 230, fallbackW: 0, nowMs: 1000)
        let c2 = d.completed(.setpoint, error: "timeout", nowMs: 1000) == false
        #expect(c2)
        #expect(d.failures(.setpoint) == 2)
        _ = d.drive(limitW: 4140, voltage: 230, fallbackW: 0, nowMs: 3000)
        let c3 = d.completed(.setpoint, error: nil, nowMs: 3000) == false
        #expect(c3)
        #expect(d.failures(.setpoint) == 0)
        #expect(d.lastWriteError == nil)
    }

    @Test func minDwellHoldsAResumeAndNextDueSaysWhen() {
        var s = vestelLike(failsafe: false, alive: false)
        s.minDwellMs = 60_000
        var d = ChargerDriver(settings: s)
        turn(&d, limitW: 1000, at: 0)
        #expect(d.written?.paused == true)
        #expect(writes(turn(&d, limitW: 6900, at: 30_000), .setpoint) == [0])   // the periodic rewrite: still paused
        #expect(d.nextDueMs().map { $0 <= 60_000 } == true)
        #expect(writes(turn(&d, limitW: 6900, at: 60_000), .setpoint) == [10])
    }
}

@Suite struct ReadBackTests {
    func settings() -> ChargerDriverSettings {
        var s = vestelLike()
        s.failsafeReadback = true
        return s
    }

    @Test func aWrittenFailsafeIsReadBackThenConfirmed() {
        var d = ChargerDriver(settings: settings())
        turn(&d, fallbackW: 4140, at: 0)
        let reads = d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 10)
        #expect(reads.contains(.read(.failsafeCurrent)))
        #expect(reads.contains(.read(.failsafeTimeout)))
        let v = d.readBack(.failsafeCurrent, value: 6, error: nil, nowMs: 20)
        #expect(v == .verified)
        #expect(d.readBack(.failsafeTimeout, value: 60, error: nil, nowMs: 20) == .verified)
        let later = d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 30)
        #expect(!later.contains { if case .read = $0 { return true } else { return false } })
        #expect(writes(later, .failsafeCurrent).isEmpty)
    }

    @Test func aMismatchIsWrittenAgainAfterTheBackoff() {
        var d = ChargerDriver(settings: settings())
        turn(&d, fallbackW: 4140, at: 0)
        _ = d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 10)
        let m = d.readBack(.failsafeCurrent, value: 32, error: nil, nowMs: 20)
        #expect(m == .mismatch(read: 32, expected: 6))
        #expect(d.confirmed(.failsafeCurrent) == nil)
        #expect(writes(d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 500), .failsafeCurrent).isEmpty)
        #expect(writes(d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 1020), .failsafeCurrent) == [6])
    }

    @Test func anUnreadableRegisterLeavesTheWriteStanding() {
        var d = ChargerDriver(settings: settings())
        turn(&d, fallbackW: 4140, at: 0)
        _ = d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 10)
        let u = d.readBack(.failsafeCurrent, value: nil, error: "illegal data address", nowMs: 20)
        #expect(u == .unreadable("illegal data address"))
        #expect(d.confirmed(.failsafeCurrent) == 6)
        #expect(writes(d.drive(limitW: 4140, voltage: 230, fallbackW: 4140, nowMs: 5000), .failsafeCurrent).isEmpty)
    }
}
