import Testing
@testable import GridletCore

@Suite struct ChargerGovernorTests {
    /// 3 phases at 230 V: 690 W per A.
    func amps(_ g: inout ChargerGovernor, _ w: Double, _ t: Int64) -> ChargerSetpoint {
        g.govern(limitW: w, phases: 3, voltage: 230, maxCurrent: 32, minCurrent: 6, nowMs: t)
    }

    @Test func neverResumesFasterThanMinDwell() {
        var g = ChargerGovernor(minDwellMs: 60_000)
        // The limit toggles between 0 W and 11 kW every 7 s for an hour.
        var last: ChargerSetpoint?
        var switches: [(Int64, Bool)] = []
        for t in stride(from: Int64(0), to: 3_600_000, by: 1000) {
            let w: Double = (t / 7000) % 2 == 0 ? 11_000 : 0
            let sp = amps(&g, w, t)
            if w == 0 { #expect(sp.paused, "limit 0 at \(t) must pause at once") }
            if sp.paused != last?.paused { switches.append((t, sp.paused)) }
            last = sp
        }
        #expect(switches.count > 10)
        for (a, b) in zip(switches, switches.dropFirst()) where !b.1 {
            #expect(b.0 - a.0 >= 60_000, "resumed \(b.0 - a.0) ms after pausing")
        }
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var steps: [(atS: Int64, w: Double, amps: Double)]
        var testDescription: String { name }
    }

    @Test(arguments: [
        Row(name: "first decision applies directly", steps: [(0, 6 * 690, 6)]),
        Row(name: "below the floor pauses at once", steps: [(0, 10 * 690, 10), (1, 5.9 * 690, 0)]),
        Row(name: "resume at exactly min_current (SPEC: below min_current pauses)", steps: [(0, 0, 0), (120, 5.99 * 690, 0), (121, 6 * 690, 6)]),
        Row(name: "resume waits for min_dwell", steps: [(0, 8 * 690, 8), (10, 0, 0), (30, 16 * 690, 0), (69, 16 * 690, 0), (70, 16 * 690, 16)]),
        Row(name: "running at the floor keeps running", steps: [(0, 8 * 690, 8), (1, 6 * 690, 6), (2, 6.5 * 690, 6)]),
        Row(name: "amps follow while running, no dwell", steps: [(0, 8 * 690, 8), (1, 20 * 690, 20), (2, 7 * 690, 7), (3, 40 * 690, 32)]),
    ])
    func table(row: Row) {
        var g = ChargerGovernor(minDwellMs: 60_000)
        for s in row.steps {
            let sp = amps(&g, s.w, s.atS * 1000)
            #expect(sp.amps == s.amps, "at \(s.atS) s")
            #expect(sp.paused == (s.amps == 0), "at \(s.atS) s")
        }
    }

    /// `control.resume_hysteresis_a: 1`: a paused charger needs min + 1 A to resume.
    @Test func configuredHysteresisHoldsTheResume() {
        var g = ChargerGovernor(minDwellMs: 60_000, hysteresisA: 1)
        let row = Row(name: "resume needs min + 1 A", steps: [(0, 0, 0), (120, 6 * 690, 0), (121, 6.99 * 690, 0), (122, 7 * 690, 7)])
        for s in row.steps {
            let sp = amps(&g, s.w, s.atS * 1000)
            #expect(sp.amps == s.amps, "at \(s.atS) s")
            #expect(sp.paused == (s.amps == 0), "at \(s.atS) s")
        }
    }

    @Test func hysteresisCappedAtMaxCurrent() {
        // A 6 A charger can never reach 7 A: it resumes at its maximum instead.
        var g = ChargerGovernor(minDwellMs: 0, hysteresisA: 1)
        #expect(g.govern(allowedAmps: 0, maxCurrent: 6, minCurrent: 6, nowMs: 0).paused)
        #expect(g.govern(allowedAmps: 6, maxCurrent: 6, minCurrent: 6, nowMs: 1) == ChargerSetpoint(amps: 6, paused: false))
    }

    @Test func resumeNotBefore() {
        var g = ChargerGovernor(minDwellMs: 60_000)
        _ = amps(&g, 10_000, 0)
        #expect(g.resumeNotBeforeMs == nil)
        _ = amps(&g, 0, 5000)
        #expect(g.resumeNotBeforeMs == 65_000)
    }

    /// Comm returns after a loss: engine + governor never write more than the ramp allows and never
    /// step up before restore_delay (3 phases, 230 V, fallback 1400 W = 2 A: paused).
    @Test(arguments: Array(UInt64(1)...6))
    func restoreAfterCommReturnStaysUnderTheRamp(seed: UInt64) {
        var e = engine(settings(fallback: 4830, delayMs: 30_000, randomMs: 60_000, ramp: 200), seed: seed)
        e.sessionDisconnected(nowMs: t0)
        #expect(e.step(t0 + 130_000).source == "fallback")
        var g = ChargerGovernor(minDwellMs: 60_000)
        #expect(g.govern(limitW: e.step(t0 + 130_000).limitW, phases: 3, voltage: 230, maxCurrent: 32, minCurrent: 6,
                         nowMs: t0 + 130_000).amps == 7)
        let back = t0 + 200_000
        e.sessionConnected(nowMs: back)
        var reachedMax = false
        for t in stride(from: back, through: back + 300_000, by: 500) {
            let d = e.step(t)
            let sp = g.govern(limitW: d.limitW, phases: 3, voltage: 230, maxCurrent: 32, minCurrent: 6, nowMs: t)
            let line = 4830 + 200 * Double(max(0, t - back - 30_000)) / 1000
            #expect(sp.amps * 690 <= line + 1e-6, "t=\(t - back) \(sp.amps) A")
            if t < back + 30_000 { #expect(sp.amps == 7, "stepped up before restore_delay at \(t - back)") }
            if sp.amps == 32 { reachedMax = true }
        }
        #expect(reachedMax)
    }
}

@Suite struct EnergyLedgerTests {
    /// The site power profile (W, import positive): a base load, a midday solar dip into export, a charger block.
    static func power(_ t: Int64) -> Double {
        let h = Double(Timestamp.floorDiv(t, 1000) % 86_400) / 3600
        var p = 900 + 300 * Double((t / 60_000) % 7)
        if h >= 10 && h < 15 { p -= 4500 }
        if h >= 18 && h < 20 { p += 7000 }
        return p
    }

    @Test func dayWithTwoEventsAndAScheduleWindow() throws {
        var e = try nyEngine(settings(delayMs: 0, ramp: 1_000_000))
        _ = e.handle(.event(ev("ev1", "2027-06-01T10:03:20Z", minutes: 45, limit: 3000)), nowMs: utc("2027-05-31T23:00:00Z"))
        _ = e.handle(.event(ev("ev2", "2027-06-01T18:30:00Z", minutes: 40, limit: 11_000)), nowMs: utc("2027-05-31T23:00:00Z"))
        var ledger = EnergyLedger(intervalMs: 900_000)
        let dayStart = utc("2027-06-01T00:00:00Z"), dayEnd = utc("2027-06-02T00:00:00Z")
        // Exact cumulative energy; the meter reports whole Wh (floor), like a real register.
        var impExact = 10_000_000.0, expExact = 2_000_000.0
        var records: [LedgerRecord] = []
        var firstReg: (Double, Double)?, lastReg: (Double, Double) = (0, 0)
        var exactBySource: [String: Double] = [:]
        var t = dayStart
        var lastSource = ""
        while t <= dayEnd {
            let d = e.step(t)
            let reg = (impExact.rounded(.down), expExact.rounded(.down))
            if firstReg == nil { firstReg = reg }
            lastReg = reg
            records += ledger.feed(nowMs: t, sample: LedgerSample(importWh: reg.0, exportWh: reg.1, powerW: Self.power(t)), source: d.targetSource)
            lastSource = d.targetSource
            // The next 10 s at this power (constant over the step).
            let wh = Self.power(t) * 10 / 3600
            if wh >= 0 { impExact += wh } else { expExact -= wh }
            exactBySource[lastSource, default: 0] += wh
            t += 10_000
        }
        // Contiguous, within intervals, from the first to the last reading.
        #expect(records.first?.fromMs == dayStart)
        #expect(records.last?.toMs == dayEnd)
        for (a, b) in zip(records, records.dropFirst()) { #expect(a.toMs == b.fromMs) }
        for r in records {
            #expect(r.toMs > r.fromMs)
            #expect(Timestamp.floorDiv(r.fromMs, 900_000) == Timestamp.floorDiv(r.toMs - 1, 900_000), "crosses a boundary: \(r)")
            #expect(!r.estimated)
        }
        // Sums are exact: the registers' difference, in mWh.
        let first = try #require(firstReg)
        #expect(records.reduce(0) { $0 + $1.importMWh } == Int64((lastReg.0 - first.0) * 1000))
        #expect(records.reduce(0) { $0 + $1.exportMWh } == Int64((lastReg.1 - first.1) * 1000))
        // Splits at the event and schedule boundaries, each part to its source.
        func source(at s: String) -> String? { records.first { $0.fromMs == utc(s) }?.source }
        #expect(source(at: "2027-06-01T10:03:20Z") == "dispatch:ev1")
        #expect(source(at: "2027-06-01T10:48:20Z") == "default")
        #expect(source(at: "2027-06-01T17:00:00Z") == "schedule:summer-peak")
        #expect(source(at: "2027-06-01T18:30:00Z") == "dispatch:ev2")
        #expect(source(at: "2027-06-01T19:10:00Z") == "schedule:summer-peak")
        #expect(Set(records.map(\.source)) == ["default", "dispatch:ev1", "dispatch:ev2", "schedule:summer-peak"])
        for r in records {
            let mid = (r.fromMs + r.toMs) / 2
            var expected = "default"
            if mid >= utc("2027-06-01T17:00:00Z") { expected = "schedule:summer-peak" }
            if mid >= utc("2027-06-01T10:03:20Z") && mid < utc("2027-06-01T10:48:20Z") { expected = "dispatch:ev1" }
            if mid >= utc("2027-06-01T18:30:00Z") && mid < utc("2027-06-01T19:10:00Z") { expected = "dispatch:ev2" }
            #expect(r.source == expected, "\(Timestamp.format(ms: r.fromMs))")
        }
        #expect(records.filter { $0.source == "dispatch:ev1" }.count == 4) // 10:03:20-10:15, -10:30, -10:45, -10:48:20
        // Per source, net energy agrees with the exact profile within the register resolution (1 Wh per end).
        for (src, exact) in exactBySource where src != lastSource {
            let net = records.filter { $0.source == src }.reduce(0.0) { $0 + $1.importWh - $1.exportWh }
            #expect(abs(net - exact) < 2.5, "\(src): \(net) vs \(exact)")
        }
        // JSON body fields per SPEC §3.
        let r = try #require(records.first { $0.source == "dispatch:ev1" })
        #expect(JSONValue.object(r.jsonFields).serialized.hasPrefix(#"{"from":"2027-06-01T10:03:20.000Z","to":"2027-06-01T10:15:00.000Z","import_wh":"#))
        #expect(r.jsonFields.map(\.0) == ["from", "to", "import_wh", "export_wh", "source", "estimated"])
    }

    @Test func interpolatesBetweenSparseReadings() {
        var l = EnergyLedger(intervalMs: 60_000)
        #expect(l.feed(nowMs: 0, sample: LedgerSample(importWh: 1000), source: "default").isEmpty)
        #expect(l.feed(nowMs: 30_000, sample: nil, source: "dispatch:a").isEmpty) // source change between readings
        let out = l.feed(nowMs: 120_000, sample: LedgerSample(importWh: 1120), source: "dispatch:a")
        #expect(out == [
            LedgerRecord(fromMs: 0, toMs: 30_000, importMWh: 30_000, exportMWh: 0, source: "default", estimated: false),
            LedgerRecord(fromMs: 30_000, toMs: 60_000, importMWh: 30_000, exportMWh: 0, source: "dispatch:a", estimated: false),
            LedgerRecord(fromMs: 60_000, toMs: 120_000, importMWh: 60_000, exportMWh: 0, source: "dispatch:a", estimated: false),
        ])
    }

    @Test func powerIntegrationIsEstimated() {
        var l = EnergyLedger(intervalMs: 3_600_000)
        var out: [LedgerRecord] = []
        for t in stride(from: Int64(0), through: 3_600_000, by: 10_000) {
            out += l.feed(nowMs: t, sample: LedgerSample(powerW: 3600), source: "default")
        }
        #expect(out == [LedgerRecord(fromMs: 0, toMs: 3_600_000, importMWh: 3_600_000, exportMWh: 0, source: "default", estimated: true)])
        // A zero crossing splits import and export: +1000 W to -1000 W over 36 s = two triangles of 2.5 Wh.
        #expect(EnergyLedger.integrate(p0: 1000, p1: -1000, dtMs: 36_000) == (2.5, 2.5))
    }

    @Test func aRestartClosesTheOpenSegmentAndAttributesTheOutage() throws {
        var a = EnergyLedger(intervalMs: 60_000)
        var records: [LedgerRecord] = []
        records += a.feed(nowMs: 0, sample: LedgerSample(importWh: 1000, exportWh: 50), source: "default")
        records += a.feed(nowMs: 20_000, sample: LedgerSample(importWh: 1010, exportWh: 50), source: "dispatch:e1")
        records += a.feed(nowMs: 30_000, sample: LedgerSample(importWh: 1015, exportWh: 50), source: "dispatch:e1")
        #expect(records == [LedgerRecord(fromMs: 0, toMs: 20_000, importMWh: 10_000, exportMWh: 0, source: "default", estimated: false)])
        // Stopped after the reading at 30 s; the state goes through its JSON text, as on disk.
        let saved = try JSONValue.parse(Array(try #require(a.persistentState).serialized.utf8))
        var b = EnergyLedger(intervalMs: 60_000)
        let restored = b.restore(saved)
        let closed = try #require(restored)
        #expect(closed == [LedgerRecord(fromMs: 20_000, toMs: 30_000, importMWh: 5000, exportMWh: 0, source: "dispatch:e1", estimated: false)])
        records += closed
        // Back at 150 s (first turn: no reading yet), first reading at 151 s.
        records += b.feed(nowMs: 150_000, sample: nil, source: "default")
        records += b.feed(nowMs: 151_000, sample: LedgerSample(importWh: 1136, exportWh: 52), source: "default")
        records += b.feed(nowMs: 180_000, sample: LedgerSample(importWh: 1140, exportWh: 52), source: "default")
        // The outage 30 s -> 150 s is "derate:agent_offline", split at 60 s and 120 s, interpolated (estimated).
        let offline = records.filter { $0.source == EnergyLedger.offlineSource }
        #expect(offline.map { [$0.fromMs, $0.toMs] } == [[30_000, 60_000], [60_000, 120_000], [120_000, 150_000]])
        #expect(offline.allSatisfy { $0.estimated })
        let last = try #require(records.last)
        #expect(last.fromMs == 150_000 && last.toMs == 180_000 && last.importMWh == 5000 && last.source == "default")
        // Contiguous, and the sums are exactly the registers' difference: nothing lost across the restart.
        for (x, y) in zip(records, records.dropFirst()) { #expect(x.toMs == y.fromMs) }
        #expect(records.first?.fromMs == 0 && records.last?.toMs == 180_000)
        #expect(records.reduce(0) { $0 + $1.importMWh } == 140_000)
        #expect(records.reduce(0) { $0 + $1.exportMWh } == 2000)
        #expect(records.filter { $0.source != EnergyLedger.offlineSource }.allSatisfy { !$0.estimated })
    }

    @Test func aRestartDoesNotBridgePowerIntegrationOrLongOutages() throws {
        // Power-integrated counters: the open segment is closed, the outage is not attributed.
        var a = EnergyLedger(intervalMs: 60_000)
        _ = a.feed(nowMs: 0, sample: LedgerSample(powerW: 3600), source: "default")
        _ = a.feed(nowMs: 10_000, sample: LedgerSample(powerW: 3600), source: "default")
        var b = EnergyLedger(intervalMs: 60_000)
        let savedA = try #require(a.persistentState)
        let closedA = b.restore(savedA)
        #expect(closedA == [LedgerRecord(fromMs: 0, toMs: 10_000, importMWh: 10_000, exportMWh: 0, source: "default", estimated: true)])
        #expect(b.feed(nowMs: 500_000, sample: LedgerSample(powerW: 3600), source: "default").isEmpty)
        #expect(b.feed(nowMs: 540_000, sample: LedgerSample(powerW: 3600), source: "default") ==
                [LedgerRecord(fromMs: 500_000, toMs: 540_000, importMWh: 40_000, exportMWh: 0, source: "default", estimated: true)])
        // Registers, but away for more than 7 days: counted afresh from the first reading.
        var c = EnergyLedger(intervalMs: 60_000)
        _ = c.feed(nowMs: 0, sample: LedgerSample(importWh: 100), source: "default")
        _ = c.feed(nowMs: 30_000, sample: LedgerSample(importWh: 101), source: "default")
        var d = EnergyLedger(intervalMs: 60_000)
        let savedC = try #require(c.persistentState)
        _ = d.restore(savedC)
        let back = EnergyLedger.maxBridgeMs + 60_000
        #expect(d.feed(nowMs: back, sample: LedgerSample(importWh: 900), source: "default").isEmpty)
        #expect(d.feed(nowMs: back + 60_000, sample: LedgerSample(importWh: 901), source: "default") ==
                [LedgerRecord(fromMs: back, toMs: back + 60_000, importMWh: 1000, exportMWh: 0, source: "default", estimated: false)])
        // Not a ledger state, or a ledger that already runs: refused, nothing changes.
        var e = EnergyLedger(intervalMs: 60_000)
        let wrongVersion = e.restore(.object([("v", .number(2))]))
        #expect(wrongVersion == nil)
        let notAnObject = e.restore(try JSONValue.parse(Array("[1,2]".utf8)))
        #expect(notAnObject == nil)
        #expect(e.persistentState == nil)
        let running = c.restore(savedC)
        #expect(running == nil)
    }

    @Test func registerResetIsNotCounted() {
        var l = EnergyLedger(intervalMs: 60_000)
        _ = l.feed(nowMs: 0, sample: LedgerSample(importWh: 500), source: "default")
        let a = l.feed(nowMs: 30_000, sample: LedgerSample(importWh: 510), source: "default")
        #expect(a.isEmpty)
        let b = l.feed(nowMs: 40_000, sample: LedgerSample(importWh: 3), source: "default") // meter replaced
        #expect(b == [LedgerRecord(fromMs: 0, toMs: 30_000, importMWh: 10_000, exportMWh: 0, source: "default", estimated: false)])
        let c = l.feed(nowMs: 60_000, sample: LedgerSample(importWh: 5), source: "default")
        #expect(c == [LedgerRecord(fromMs: 40_000, toMs: 60_000, importMWh: 2000, exportMWh: 0, source: "default", estimated: false)])
    }
}
