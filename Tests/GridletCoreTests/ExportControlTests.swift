import Testing
@testable import GridletCore

/// The vehicle-to-grid side of the model: event fields, their persistence, the export side of
/// the min() chain and the clamping of setpoints (docs/control.md "Export and setpoints").
@Suite struct EventPowerFieldTests {
    static func parse(_ text: String) -> ParsedCommand {
        CommandParser.parse(name: "event", payload: Array(text.utf8), nowMs: t0)
    }

    @Test func setpointExportLimitAndMarketAreParsed() throws {
        let p = Self.parse(#"{"id":"reg-1","duration_s":60,"limit_w":11000,"setpoint_w":-5000,"export_limit_w":7000,"market":"caiso-reg"}"#)
        guard case let .event(e) = try p.result.get() else { Issue.record("not an event"); return }
        #expect(e.setpointW == -5000)
        #expect(e.exportLimitW == 7000)
        #expect(e.market == "caiso-reg")
        let plain = Self.parse(#"{"id":"p","duration_s":60,"limit_w":1}"#)
        guard case let .event(q) = try plain.result.get() else { Issue.record("not an event"); return }
        #expect(q.setpointW == nil && q.exportLimitW == nil && q.market == nil)
    }

    @Test(arguments: [
        (#"{"id":"e1","duration_s":60,"limit_w":1,"setpoint_w":"5"}"#, "invalid", "setpoint_w"),
        (#"{"id":"e1","duration_s":60,"limit_w":1,"setpoint_w":-20000000}"#, "invalid", "setpoint_w"),
        (#"{"id":"e1","duration_s":60,"limit_w":1,"export_limit_w":-1}"#, "invalid", "export_limit_w"),
        (#"{"id":"e1","duration_s":60,"limit_w":1,"export_limit_w":20000000}"#, "invalid", "export_limit_w"),
        (#"{"id":"e1","duration_s":60,"limit_w":1,"market":7}"#, "invalid", "market"),
        (#"{"id":"e1","duration_s":60,"limit_w":1,"market":"caiso reg"}"#, "invalid", "market"),
        (#"{"id":"e1","duration_s":60,"limit_w":1,"market":""}"#, "invalid", "market"),
    ])
    func badFieldsAreRefusedWithTheirPath(payload: String, code: String, path: String) {
        let p = Self.parse(payload)
        guard case let .failure(e) = p.result else { Issue.record("accepted \(payload)"); return }
        #expect(e.code == code)
        #expect(e.path == path)
        #expect(p.id == "e1")
    }

    @Test func eventsSetEntriesCarryTheFieldsAndTheirErrorsName() throws {
        let ok = CommandParser.parse(name: "events", payload: Array(#"{"version":1,"events":[{"id":"a","duration_s":60,"limit_w":1,"setpoint_w":2000,"market":"m1"}]}"#.utf8), nowMs: t0)
        guard case let .events(_, set) = try ok.result.get() else { Issue.record("not a set"); return }
        #expect(set[0].setpointW == 2000 && set[0].market == "m1")
        let bad = CommandParser.parse(name: "events", payload: Array(#"{"version":1,"events":[{"id":"a","duration_s":60,"limit_w":1,"export_limit_w":-3}]}"#.utf8), nowMs: t0)
        guard case let .failure(e) = bad.result else { Issue.record("accepted"); return }
        #expect(e.path == "events[0].export_limit_w")
        #expect(bad.rejectedIDs == ["a"])
    }

    @Test func aChangedSetpointIsANewRequestAndARedeliveryIsNot() {
        var a = event("e", limit: 1000)
        a.setpointW = -3000
        var b = a
        #expect(a.sameRequest(as: b))
        b.setpointW = -2000
        #expect(!a.sameRequest(as: b))
        b = a; b.market = "other"
        #expect(!a.sameRequest(as: b))
        b = a; b.exportLimitW = 0
        #expect(!a.sameRequest(as: b))
    }

    @Test func theFieldsSurviveARestartAndOutOfRangeOnesAreSkipped() throws {
        var s = settings(); s.followsSetpoints = true
        var e1 = engine(s)
        var ev = event("reg", limit: 11_000)
        ev.setpointW = -5000; ev.exportLimitW = 6000; ev.market = "caiso-reg"
        _ = e1.handle(.event(ev), nowMs: t0)
        var e2 = engine(s)
        #expect(e2.restorePersistentState(e1.persistentState).isEmpty)
        #expect(e2.events.first?.setpointW == -5000)
        #expect(e2.events.first?.exportLimitW == 6000)
        #expect(e2.events.first?.market == "caiso-reg")
        // An edited file with an export limit a command would refuse puts nothing into force.
        let text = e1.persistentState.serialized.replacingOccurrences("\"export_limit_w\":6000", "\"export_limit_w\":-1")
        var e3 = engine(s)
        let problems = e3.restorePersistentState(try JSONValue.parse(Array(text.utf8)))
        #expect(problems == ["event 'reg' out of range"])
        #expect(e3.events.isEmpty)
    }
}

extension String {
    /// A plain substring replacement (the core has no Foundation).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var out = "", rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

@Suite struct NotApplicableSetpointTests {
    @Test func aSetpointAtASiteWithoutABidirectionalDeviceIsRefused252WithAReason() {
        var e = engine()   // chargers only
        var ev = event("reg", limit: 11_000)
        ev.setpointW = -5000
        let out = e.handle(.event(ev), nowMs: t0)
        #expect(out.error == nil)   // reply ok:true: understood, not applicable
        #expect(out.responses.map(\.status) == [.rejectedNotApplicable])
        #expect(out.responses.first?.reason?.contains("no bidirectional device") == true)
        #expect(e.events.isEmpty)
        #expect(!out.changed)
        // The response record names the reason.
        let fields = out.responses[0].jsonFields
        #expect(fields.contains { $0.0 == "reason" })
    }

    @Test func aPlainLimitEventStillAppliesThere() {
        var e = engine()
        let out = e.handle(.event(event("lim", limit: 3000)), nowMs: t0)
        #expect(out.responses.map(\.status) == [.received])
    }

    @Test func aSiteWithABidirectionalDeviceTakesTheSetpoint() {
        var s = settings(); s.followsSetpoints = true
        var e = engine(s)
        var ev = event("reg", limit: 11_000)
        ev.setpointW = -5000
        #expect(e.handle(.event(ev), nowMs: t0).responses.map(\.status) == [.received])
    }
}

@Suite struct ExportChainTests {
    static let dischargeMax = 7400.0

    static func siteEngine(maxExportW: Double? = nil, fallbackExportW: Double = 0, timeoutMs: Int64 = 120_000) -> ControlEngine {
        var s = settings(timeoutMs: timeoutMs)
        s.followsSetpoints = true
        s.maxExportW = maxExportW
        s.fallbackExportW = fallbackExportW
        return engine(s)
    }

    static func v2g(_ id: String, limit: Double = 11_000, setpoint: Double? = nil, exportLimit: Double? = nil, primacy: Int = 1,
                    market: String? = nil, at: Int64 = 0, for duration: Int64 = 3600, created: Int64 = 0) -> DispatchEvent {
        var e = event(id, at: at, for: duration, limit: limit, primacy: primacy, createdOffsetS: created)
        e.setpointW = setpoint; e.exportLimitW = exportLimit; e.market = market
        return e
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var maxExportW: Double? = nil
        var event: DispatchEvent? = nil
        var inputs = ExportInputs(dischargeMaxW: ExportChainTests.dischargeMax)
        var importLimit: Double = 11_000
        var exportLimit: Double
        var source: String
        var setpoint: Double?
        var clampedBy: String? = nil
        var testDescription: String { name }
    }

    @Test(arguments: [
        Row(name: "nothing restricts: the hardware discharge max", exportLimit: 7400, source: "hardware", setpoint: nil),
        Row(name: "no bidirectional device: nothing to export", inputs: ExportInputs(dischargeMaxW: 0), exportLimit: 0,
            source: "hardware", setpoint: nil),
        Row(name: "the event's export limit", event: v2g("e", exportLimit: 3000), exportLimit: 3000, source: "dispatch:e", setpoint: nil),
        Row(name: "export limit 0 stops discharging", event: v2g("e", setpoint: -5000, exportLimit: 0), exportLimit: 0,
            source: "dispatch:e", setpoint: 0, clampedBy: "export_limit"),
        Row(name: "a negative setpoint allows its own export", event: v2g("e", setpoint: -5000), exportLimit: 5000,
            source: "dispatch:e", setpoint: -5000),
        Row(name: "setpoint clamped to the hardware", event: v2g("e", setpoint: -9000), exportLimit: 7400, source: "hardware",
            setpoint: -7400, clampedBy: "export_limit"),
        Row(name: "setpoint clamped to the event's export limit", event: v2g("e", setpoint: -5000, exportLimit: 2000),
            exportLimit: 2000, source: "dispatch:e", setpoint: -2000, clampedBy: "export_limit"),
        Row(name: "positive setpoint clamped to the import limit", event: v2g("e", limit: 3000, setpoint: 6000), importLimit: 3000,
            exportLimit: 7400, source: "hardware", setpoint: 3000, clampedBy: "import_limit"),
        Row(name: "positive setpoint inside the limits", event: v2g("e", setpoint: 2500), exportLimit: 7400, source: "hardware",
            setpoint: 2500),
        Row(name: "static site export limit without a meter", maxExportW: 4000, event: v2g("e", setpoint: -5000),
            exportLimit: 4000, source: "site_export_limit", setpoint: -4000, clampedBy: "export_limit"),
        Row(name: "site export limit plus the other load", maxExportW: 4000, event: v2g("e", setpoint: -6000),
            inputs: ExportInputs(dischargeMaxW: 7400, hasSiteMeter: true, siteMeterPowerW: -1000, devicePowerW: -2500),
            exportLimit: 5500, source: "site_export_limit", setpoint: -5500, clampedBy: "export_limit"),
        Row(name: "other generation takes from the site export limit", maxExportW: 4000, event: v2g("e", setpoint: -6000),
            inputs: ExportInputs(dischargeMaxW: 7400, hasSiteMeter: true, siteMeterPowerW: -5000, devicePowerW: -2000),
            exportLimit: 1000, source: "site_export_limit", setpoint: -1000, clampedBy: "export_limit"),
        Row(name: "stale site meter derates export to the fallback", event: v2g("e", setpoint: -5000),
            inputs: ExportInputs(dischargeMaxW: 7400, hasSiteMeter: true, siteMeterPowerW: nil),
            exportLimit: 0, source: "derate:meter_stale", setpoint: 0, clampedBy: "export_limit"),
        Row(name: "a faulty device derates export", event: v2g("e", setpoint: -5000),
            inputs: ExportInputs(dischargeMaxW: 7400, faultyDevice: "v2g"), exportLimit: 0, source: "derate:v2g_fault", setpoint: 0,
            clampedBy: "export_limit"),
    ])
    func exportChain(row: Row) {
        var e = Self.siteEngine(maxExportW: row.maxExportW)
        if let ev = row.event { _ = e.handle(.event(ev), nowMs: t0) }
        let d = e.decideExport(nowMs: t0 + 1, importLimitW: row.importLimit, inputs: row.inputs)
        #expect(d.exportLimitW == row.exportLimit)
        #expect(d.exportSource == row.source)
        #expect(d.setpointW == row.setpoint)
        #expect(d.clampedBy == row.clampedBy)
    }

    @Test func precedenceIsTheImportSidesTheWinnersFieldsApply() {
        var e = Self.siteEngine()
        _ = e.handle(.event(Self.v2g("low", setpoint: -5000, exportLimit: 6000, primacy: 5, market: "retail-dr")), nowMs: t0)
        _ = e.handle(.event(Self.v2g("high", setpoint: 3000, primacy: 1, market: "caiso-reg", at: 60, for: 60)), nowMs: t0)
        var d = e.decideExport(nowMs: t0 + 1000, importLimitW: 11_000, inputs: ExportInputs(dischargeMaxW: 7400))
        #expect(d.setpointW == -5000 && d.exportLimitW == 6000 && d.market == "retail-dr" && d.setpointSource == "dispatch:low")
        // The higher-precedence event wins its window: its setpoint, its market, no export term of its own.
        d = e.decideExport(nowMs: t0 + 61_000, importLimitW: 11_000, inputs: ExportInputs(dischargeMaxW: 7400))
        #expect(d.setpointW == 3000 && d.exportLimitW == 7400 && d.market == "caiso-reg" && d.setpointSource == "dispatch:high")
        d = e.decideExport(nowMs: t0 + 121_000, importLimitW: 11_000, inputs: ExportInputs(dischargeMaxW: 7400))
        #expect(d.setpointW == -5000 && d.setpointSource == "dispatch:low")
        // Nothing active: no setpoint, the devices charge up to the import limit.
        d = e.decideExport(nowMs: t0 + 4_000_000, importLimitW: 11_000, inputs: ExportInputs(dischargeMaxW: 7400))
        #expect(d.setpointW == nil && d.market == nil && d.exportSource == "hardware")
    }

    @Test func commLossStopsDischargingEvenDuringAnEventUnlessAFallbackExportIsConfigured() {
        for fallback in [0.0, 2000] {
            var e = Self.siteEngine(fallbackExportW: fallback, timeoutMs: 30_000)
            _ = e.handle(.event(Self.v2g("reg", setpoint: -5000)), nowMs: t0)
            e.sessionDisconnected(nowMs: t0)
            var d = e.decideExport(nowMs: t0 + 29_000, importLimitW: 11_000, inputs: ExportInputs(dischargeMaxW: 7400))
            #expect(d.setpointW == -5000)
            d = e.decideExport(nowMs: t0 + 31_000, importLimitW: 11_000, inputs: ExportInputs(dischargeMaxW: 7400))
            #expect(d.exportLimitW == fallback)
            #expect(d.exportSource == "fallback")
            #expect(d.setpointW == -fallback)
            #expect(d.setpointSource == "dispatch:reg")   // the event still runs: import side unchanged
        }
    }
}
