import GridletCore
import Testing

@Suite struct SiteReadingsTests {
    func site() -> SiteReadings {
        SiteReadings(roles: [.siteMeter, .charger], nominalVoltage: 230, meterStaleAfterMs: 10_000, startedMonoMs: 0)
    }

    @Test func settlesWhenEveryDeviceAnsweredOrFailedOrAfterFiveSeconds() {
        var s = site()
        let c1 = !s.settle(nowMono: 100)
        #expect(c1)
        _ = s.polled(0, values: ["power_w": 100], nowWall: 0, nowMono: 100)
        let c2 = !s.settle(nowMono: 200)
        #expect(c2)
        _ = s.failed(1, error: "timeout")
        let c3 = s.settle(nowMono: 300)
        #expect(c3)
        var late = site()
        let c4 = !late.settle(nowMono: 5000)
        #expect(c4)
        let c5 = late.settle(nowMono: 5001)
        #expect(c5)
    }

    @Test func siteMeterGoesStaleAfterMeterStaleAfter() {
        var s = site()
        _ = s.polled(0, values: ["power_w": 2500], nowWall: 0, nowMono: 1000)
        #expect(s.siteMeterPowerW(nowMono: 11_000) == 2500)
        #expect(s.siteMeterPowerW(nowMono: 11_001) == nil)
        _ = s.polled(0, values: ["power_w": 2600], nowWall: 0, nowMono: 12_000)
        #expect(s.siteMeterPowerW(nowMono: 12_000) == 2600)
        _ = s.failed(0, error: "crc")
        #expect(s.siteMeterPowerW(nowMono: 12_001) == nil)
        #expect(s.health[0].values.isEmpty)
    }

    @Test func voltageChainChargerThenMeterThenNominal() {
        var s = site()
        #expect(s.voltage(charger: 1) == 230)
        _ = s.polled(0, values: ["voltage_l1_v": 240, "voltage_l2_v": 240, "voltage_l3_v": 240], nowWall: 0, nowMono: 0)
        #expect(s.voltage(charger: 1) == 240)
        _ = s.polled(1, values: ["voltage_l1_v": 220, "voltage_l2_v": 0, "voltage_l3_v": nil], nowWall: 0, nowMono: 0)
        #expect(s.voltage(charger: 1) == 220)
    }

    @Test func healthChangesAreSaidOnce() {
        var s = site()
        let c6 = s.failed(1, error: "refused") == .failing("refused")
        #expect(c6)
        let c7 = s.failed(1, error: "refused") == .none
        #expect(c7)
        let c8 = s.polled(1, values: [:], nowWall: 0, nowMono: 0) == .answering
        #expect(c8)
        let c9 = s.polled(1, values: [:], nowWall: 0, nowMono: 0) == .none
        #expect(c9)
        let c10 = s.failed(1, error: "x") == .failing("x")
        #expect(c10)
    }

    @Test func ledgerSampleOnlyWhenNew() {
        var s = site()
        let c11 = s.takeLedgerSample() == nil
        #expect(c11)
        _ = s.polled(0, values: ["import_wh": 10], nowWall: 0, nowMono: 0)
        let c12 = s.takeLedgerSample()?.importWh == 10
        #expect(c12)
        let c13 = s.takeLedgerSample() == nil
        #expect(c13)
        _ = s.polled(1, values: ["import_wh": 5], nowWall: 0, nowMono: 0)
        let c14 = s.takeLedgerSample() == nil   // the charger does not feed the ledger when a site meter exists
        #expect(c14)
    }

    @Test func cadenceKeepsItsRhythmAndRestartsAfterAStall() {
        var c = Cadence(intervalMs: 1000)
        let c15 = c.due(nowMs: 5)
        #expect(c15)
        let c16 = !c.due(nowMs: 1004)
        #expect(c16)
        let c17 = c.due(nowMs: 1005)
        #expect(c17)
        #expect(c.waitMs(nowMs: 1500) == 505)
        let c18 = c.due(nowMs: 10_000)          // stalled: next one a full interval from now
        #expect(c18)
        #expect(c.waitMs(nowMs: 10_000) == 1000)
    }
}
