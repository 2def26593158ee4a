import Testing
@testable import GridletCore

/// `BidirectionalDriver` with a manual clock: clamping, the SoC reserve, sign, setup and the
/// device's reversion as the failsafe.
@Suite struct BidirectionalDriverTests {
    static func quasar(minSoc: Double? = nil, maxDischarge: Double? = nil, timeoutMs: Int64 = 60_000) -> BidirectionalDriver {
        BidirectionalDriver(settings: BidirectionalDriverSettings(
            sign: .importPositive, setupValues: [1, 0, 1, 1], hasReversionTimeout: true, maxDischargeW: maxDischarge,
            minSocPct: minSoc, failsafeTimeoutMs: timeoutMs))
    }

    static func sunspec(timeoutMs: Int64 = 8000) -> BidirectionalDriver {
        BidirectionalDriver(settings: BidirectionalDriverSettings(
            sign: .exportPositive, setupValues: [1, 1, 1], hasReversionTimeout: true, hasReversionSetpoint: true,
            failsafeTimeoutMs: timeoutMs))
    }

    static func cmd(_ setpoint: Double?, importLimit: Double = 7360, exportLimit: Double = 7360, soc: Double? = 50,
                    chargeMax: Double = 7360, fallback: Double = 1400) -> PowerCommand {
        PowerCommand(importLimitW: importLimit, exportLimitW: exportLimit, setpointW: setpoint, chargeMaxW: chargeMax, socPct: soc,
                     fallbackImportW: fallback)
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var minSoc: Double? = nil
        var maxDischarge: Double? = nil
        var command: PowerCommand
        var w: Double
        var why: String?
        var testDescription: String { name }
    }

    @Test(arguments: [
        Row(name: "a setpoint inside the limits", command: cmd(-5000), w: -5000, why: nil),
        Row(name: "no setpoint: charges up to the import limit", command: cmd(nil, importLimit: 3000), w: 3000, why: nil),
        Row(name: "no setpoint never exports", command: cmd(nil, importLimit: 0), w: 0, why: nil),
        Row(name: "import limit binds a charge setpoint", command: cmd(6000, importLimit: 4000), w: 4000, why: "import_limit"),
        Row(name: "the hardware binds a charge setpoint", command: cmd(9000, importLimit: 11_000), w: 7360, why: "hardware"),
        Row(name: "the export limit binds", command: cmd(-5000, exportLimit: 2000), w: -2000, why: "export_limit"),
        Row(name: "export limit 0 stops discharging", command: cmd(-5000, exportLimit: 0), w: 0, why: "export_limit"),
        Row(name: "max_discharge_w binds", maxDischarge: 3000, command: cmd(-5000), w: -3000, why: "hardware"),
        Row(name: "at the SoC reserve: no discharge", minSoc: 20, command: cmd(-5000, soc: 20), w: 0, why: "soc_reserve"),
        Row(name: "below the reserve: no discharge", minSoc: 20, command: cmd(-5000, soc: 12.5), w: 0, why: "soc_reserve"),
        Row(name: "above the reserve: discharges", minSoc: 20, command: cmd(-5000, soc: 20.1), w: -5000, why: nil),
        Row(name: "at the reserve it may still charge", minSoc: 20, command: cmd(3000, soc: 10), w: 3000, why: nil),
        Row(name: "a reserve and no SoC: no discharge", minSoc: 20, command: cmd(-5000, soc: nil), w: 0, why: "soc_unknown"),
        Row(name: "whole W towards zero", command: cmd(-1234.9), w: -1234, why: nil),
    ])
    func target(row: Row) {
        let d = Self.quasar(minSoc: row.minSoc, maxDischarge: row.maxDischarge)
        let t = d.decide(row.command)
        #expect(t.w == row.w)
        #expect(t.limitedBy == row.why)
        #expect(t.w.sign == .plus || t.w != 0)   // never -0 (JSON would say -0)
    }

    @Test func setupThenTimeoutThenTheSetpointInTheDevicesOwnSign() {
        var q = Self.quasar()
        let first = q.drive(Self.cmd(-5000), nowMs: 0)
        #expect(first == [PowerWrite(.setup(0), 1), PowerWrite(.setup(1), 0), PowerWrite(.setup(2), 1), PowerWrite(.setup(3), 1),
                          PowerWrite(.reversionTimeout, 60), PowerWrite(.setpoint, -5000)])
        var s = Self.sunspec()
        let writes = s.drive(Self.cmd(-5000, fallback: 1400), nowMs: 0)
        // SunSpec counts discharge as positive: WSet +5000; it reverts to charging at the fallback (-1400 its way).
        #expect(writes.last == PowerWrite(.setpoint, 5000))
        #expect(writes.contains(PowerWrite(.reversionSetpoint, -1400)))
        #expect(writes.contains(PowerWrite(.reversionTimeout, 8)))
    }

    @Test func theReversionSetpointIsNeverAnExport() {
        var s = Self.sunspec()
        let writes = s.drive(Self.cmd(-5000, fallback: 0), nowMs: 0)
        #expect(writes.contains(PowerWrite(.reversionSetpoint, 0)))
        #expect(writes.first { $0.register == .reversionSetpoint }?.value.sign == .plus)
    }

    @Test func programmedOnceTheSetpointRefreshedAtAQuarterOfTheTimeout() {
        var q = Self.quasar(timeoutMs: 8000)
        for w in q.drive(Self.cmd(-5000), nowMs: 0) { q.completed(w.register, error: nil, nowMs: 10) }
        #expect(q.drive(Self.cmd(-5000), nowMs: 1000).isEmpty)
        #expect(q.nextDueMs() == 2000)
        #expect(q.drive(Self.cmd(-5000), nowMs: 2000) == [PowerWrite(.setpoint, -5000)])
        q.completed(.setpoint, error: nil, nowMs: 2010)
        // A change is written at once.
        #expect(q.drive(Self.cmd(-3000), nowMs: 2100) == [PowerWrite(.setpoint, -3000)])
        q.completed(.setpoint, error: nil, nowMs: 2110)
        // Refreshes over a minute: every 2 s, never longer apart than timeout/4.
        var times: [Int64] = []
        var now: Int64 = 2100
        while now < 62_100 {
            now += 100
            for w in q.drive(Self.cmd(-3000), nowMs: now) {
                #expect(w.register == .setpoint)
                times.append(now)
                q.completed(w.register, error: nil, nowMs: now)
            }
        }
        #expect(times.count == 30)
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 <= 2000 })
    }

    @Test func aFailedSetpointIsRetriedWithBackoffAndSetupIsProgrammedAgain() {
        var q = Self.quasar()
        for w in q.drive(Self.cmd(-5000), nowMs: 0) {
            q.completed(w.register, error: w.register == .setpoint ? "timeout" : nil, nowMs: 5)
        }
        #expect(q.written == nil)
        #expect(q.failures(.setpoint) == 1)
        #expect(q.drive(Self.cmd(-5000), nowMs: 500).isEmpty)   // not into a device that does not answer
        // After the backoff: everything again (the device may have reverted meanwhile), setpoint last.
        let again = q.drive(Self.cmd(-5000), nowMs: 1100)
        #expect(again.last == PowerWrite(.setpoint, -5000))
        #expect(again.contains(PowerWrite(.setup(0), 1)))
        #expect(again.contains(PowerWrite(.reversionTimeout, 60)))
        #expect(q.fault(deviceAnswering: false) == "timeout")
        for w in again { q.completed(w.register, error: nil, nowMs: 1200) }
        #expect(q.fault(deviceAnswering: false) == nil)
    }

    @Test func theSoCReserveStopsDischargingAndTheStateSaysWhy() {
        var q = Self.quasar(minSoc: 30)
        for w in q.drive(Self.cmd(-5000, soc: 31), nowMs: 0) { q.completed(w.register, error: nil, nowMs: 1) }
        #expect(q.target == PowerTarget(w: -5000))
        let writes = q.drive(Self.cmd(-5000, soc: 30), nowMs: 100)
        #expect(writes == [PowerWrite(.setpoint, 0)])
        #expect(q.target == PowerTarget(w: 0, limitedBy: "soc_reserve"))
        #expect(q.target?.direction == "idle")
    }
}
