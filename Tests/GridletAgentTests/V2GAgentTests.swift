@testable import GridletAgent
import Glibc
import GridletCore
import GridletYAML
import Testing

/// A site with a bidirectional device (the Quasar profile over a fake): the agent's wiring of
/// the export side, the BidirectionalDriver and what the state and telemetry say.
@Suite(.serialized) struct V2GAgentTests {
    static let setpoint = 260, timeout = 88, control = 81

    static func harness(minSoc: String = "", control: String = "", site: String = "") throws -> AgentHarness {
        let quasar = try #require(try ProfileLibrary.builtin(named: "wallbox-quasar"))
        let h = try AgentHarness(
            control: "  device_failsafe_timeout: 8s\n" + control, chargerProfile: quasar,
            evse: "- { name: v2g, bus: lan, unit: 1, profile: wallbox-quasar, role: charger, phases: 1, max_current: 32, poll: 1s\(minSoc) }",
            site: site)
        h.charger.state.withLock { $0.values["soc_pct"] = 50; $0.values["power_w"] = 0 }
        return h
    }

    static func state(_ h: AgentHarness) throws -> JSONValue {
        try JSONValue.parse(Array(h.agent.stateJSON(nowWall: h.time.wallMs()).serialized.utf8))
    }

    @Test func aDischargeSetpointIsWrittenAsTheDeviceExpectsAfterItsSetup() throws {
        let h = try Self.harness()
        h.connect()
        h.run(for: 500)
        // No event: it may charge up to the hardware (32 A x 230 V), and it was set up once.
        #expect(h.charger.writes(to: Self.setpoint).last == 7360)
        #expect(h.charger.writes(to: Self.control) == [1])
        #expect(h.charger.writes(to: 83) == [1])
        #expect(h.charger.writes(to: 257) == [1])
        #expect(h.charger.writes(to: Self.timeout) == [8])
        h.charger.clearWrites()
        h.command("event", #"{"id":"reg-1","duration_s":600,"limit_w":7360,"setpoint_w":-5000,"market":"caiso-reg"}"#)
        h.step()
        #expect(h.charger.writes(to: Self.setpoint) == [-5000])
        h.step()
        #expect(h.mqtt.on("/reply").last?.payload.contains(#""ok":true"#) == true)
        let s = try Self.state(h)
        #expect(s["power"]?["setpoint_w"]?.doubleValue == -5000)
        #expect(s["power"]?["export_limit_w"]?.doubleValue == 5000)
        #expect(s["power"]?["export_source"]?.stringValue == "dispatch:reg-1")
        #expect(s["power"]?["market"]?.stringValue == "caiso-reg")
        #expect(s["devices"]?["v2g"]?["setpoint_w"]?.doubleValue == -5000)
        #expect(s["devices"]?["v2g"]?["direction"]?.stringValue == "export")
        // The device's reversion is refreshed: the setpoint is rewritten every 2 s (8 s / 4).
        h.charger.clearWrites()
        h.run(for: 10_000)
        #expect(h.charger.writes(to: Self.setpoint).count == 5)
        #expect(h.charger.writes(to: Self.timeout).isEmpty)   // programmed once
    }

    @Test func anEventWithExportLimitZeroStopsDischarging() throws {
        let h = try Self.harness()
        h.connect()
        h.run(for: 300)
        h.command("event", #"{"id":"reg-1","duration_s":600,"limit_w":7360,"setpoint_w":-5000}"#)
        h.run(for: 300)
        #expect(h.charger.writes(to: Self.setpoint).last == -5000)
        h.command("event", #"{"id":"cap","duration_s":600,"limit_w":7360,"setpoint_w":-5000,"export_limit_w":0,"primacy":0}"#)
        h.run(for: 300)
        #expect(h.charger.writes(to: Self.setpoint).last == 0)
        let s = try Self.state(h)
        #expect(s["power"]?["export_limit_w"]?.doubleValue == 0)
        #expect(s["power"]?["clamped_by"]?.stringValue == "export_limit")
        #expect(s["devices"]?["v2g"]?["limited_by"]?.stringValue == "export_limit")
    }

    @Test func theSoCReserveStopsDischargingAndTheStateSaysWhy() throws {
        let h = try Self.harness(minSoc: ", min_soc_pct: 30")
        h.connect()
        h.run(for: 300)
        h.command("event", #"{"id":"reg-1","duration_s":600,"limit_w":7360,"setpoint_w":-5000}"#)
        h.run(for: 300)
        #expect(h.charger.writes(to: Self.setpoint).last == -5000)
        h.charger.state.withLock { $0.values["soc_pct"] = 30 }
        h.run(for: 1500)
        #expect(h.charger.writes(to: Self.setpoint).last == 0)
        let s = try Self.state(h)
        #expect(s["devices"]?["v2g"]?["limited_by"]?.stringValue == "soc_reserve")
        #expect(s["devices"]?["v2g"]?["soc_pct"]?.doubleValue == 30)
        // Charging is still allowed at the reserve.
        h.command("event", #"{"id":"chg","duration_s":600,"limit_w":7360,"setpoint_w":3000,"primacy":0}"#)
        h.run(for: 300)
        #expect(h.charger.writes(to: Self.setpoint).last == 3000)
    }

    @Test func commLossStopsDischargingWhileTheEventRunsUnlessFallbackExportIsSet() throws {
        for (fallback, expected) in [("", 0.0), ("  fallback_export_w: 2000\n", -2000)] {
            let h = try Self.harness(control: "  comm_loss_timeout: 10s\n" + fallback)
            h.connect()
            h.run(for: 300)
            h.command("event", #"{"id":"reg-1","duration_s":600,"limit_w":7360,"setpoint_w":-5000}"#)
            h.run(for: 300)
            h.disconnect()
            h.run(for: 9000)
            #expect(h.charger.writes(to: Self.setpoint).last == -5000)
            h.run(for: 2000)
            #expect(h.charger.writes(to: Self.setpoint).last == expected)
            let s = try Self.state(h)
            #expect(s["power"]?["export_source"]?.stringValue == "fallback")
            #expect(s["source"]?.stringValue == "dispatch:reg-1")   // the import side still follows the event
        }
    }

    @Test func telemetryCarriesSignedPowerSoCAndTheExportLimit() throws {
        let h = try Self.harness()
        h.charger.state.withLock { $0.values["power_w"] = -4990 }
        h.connect()
        h.command("event", #"{"id":"reg-1","duration_s":600,"limit_w":7360,"setpoint_w":-5000}"#)
        h.run(for: 31_000, everyMs: 500)
        let t = try #require(h.mqtt.on("/telemetry").last)
        let j = try JSONValue.parse(Array(t.payload.utf8))
        #expect(j["devices"]?["v2g"]?["power_w"]?.doubleValue == -4990)
        #expect(j["devices"]?["v2g"]?["soc_pct"]?.doubleValue == 50)
        #expect(j["control"]?["export_limit_w"]?.doubleValue == 5000)
        #expect(j["control"]?["setpoint_w"]?.doubleValue == -5000)
        #expect(j["control"]?["direction"]?.stringValue == "export")
    }

    @Test func awardEnergyIsTaggedWithTheMarketAndSplitFromRetailInTheLocalLedger() throws {
        let h = try Self.harness(control: "telemetry:\n  ledger_interval: 1m\n")
        var imp = 1000.0, exp = 100.0
        func meter() { h.meter.state.withLock { $0.values["import_wh"] = imp; $0.values["export_wh"] = exp } }
        meter()
        h.connect()
        h.run(for: 2000)
        h.command("event", #"{"id":"award-1","duration_s":60,"limit_w":7360,"setpoint_w":-5000,"market":"caiso-reg"}"#)
        var t: Int64 = 0
        while t < 200_000 {
            // 1 Wh exported per second during the award, 2 Wh imported per second otherwise.
            let award = h.agent.exportDecision?.market == "caiso-reg"
            if award { exp += 0.5 } else { imp += 1 }
            meter()
            h.time.advance(500); h.step()
            t += 500
        }
        let ledger = h.mqtt.on("/ledger").map(\.payload)
        #expect(ledger.contains { $0.contains(#""market":"caiso-reg""#) && $0.contains(#""source":"dispatch:award-1""#) })
        let report = LedgerReport.json(stateDir: h.stateDir, fromMs: nil, toMs: nil, by: .market)
        let rows = report["rows"]?.arrayValue ?? []
        #expect(rows.map { $0["market"]?.stringValue } == ["caiso-reg", "retail"])
        let award = try #require(rows.first)
        #expect(abs((award["export_wh"]?.doubleValue ?? 0) - 60) <= 1, "\(award)")
        // The edges are interpolated between readings (polled every second).
        #expect((award["import_wh"]?.doubleValue ?? 9) <= 2)
        #expect((rows.last?["export_wh"]?.doubleValue ?? 1) <= 1)
    }

    @Test func aSetpointAtAChargerOnlySiteIsRefused252WithTheReason() throws {
        let h = try AgentHarness()
        h.connect()
        h.run(for: 300)
        h.command("event", #"{"id":"reg-1","duration_s":600,"limit_w":7360,"setpoint_w":-5000}"#)
        h.run(for: 300)
        let reply = try #require(h.mqtt.on("/reply").last)
        #expect(reply.payload.contains(#""ok":true"#))
        h.run(for: 300)
        let r = try #require(h.mqtt.on("/responses").last)
        #expect(r.payload.contains(#""status":252"#))
        #expect(r.payload.contains("no bidirectional device"))
    }

    /// OpenADR's EXPORT_CAPACITY_LIMIT (kW) is the V2G device's export limit (W); at a site without
    /// one it stays shown only (OpenADREventsTests, OpenADRWiringTests).
    @Test func anOpenADRExportCapacityLimitIsTheExportLimit() throws {
        let quasar = try #require(try ProfileLibrary.builtin(named: "wallbox-quasar"))
        let ven = FakeVEN()
        let h = try AgentHarness(control: "  device_failsafe_timeout: 8s\n" + OpenADRWiringTests.control, chargerProfile: quasar,
                                 evse: "- { name: v2g, bus: lan, unit: 1, profile: wallbox-quasar, role: charger, phases: 1, max_current: 32, poll: 1s }",
                                 ven: ven)
        h.charger.state.withLock { $0.values["soc_pct"] = 50; $0.values["power_w"] = 0 }
        h.connect()
        h.command("event", #"{"id":"reg-1","duration_s":600,"limit_w":7360,"setpoint_w":-5000,"primacy":5}"#)
        h.run(for: 500)
        #expect(try Self.state(h)["power"]?["export_limit_w"]?.doubleValue == 5000)
        let now = h.time.wallMs()
        let event = #"[{"id":"e1","programID":"p1","objectType":"EVENT","createdDateTime":"2027-01-01T00:00:00Z","priority":1,"#
            + #""payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"EXPORT_CAPACITY_LIMIT","units":"KW"}],"#
            + #""intervalPeriod":{"start":"\#(Timestamp.format(ms: now - 1000))","duration":"PT10M"},"#
            + #""intervals":[{"id":0,"payloads":[{"type":"EXPORT_CAPACITY_LIMIT","values":[2.5]}]}]}]"#
        ven.report?(OpenADRWiringTests.poll(event, now: now))
        h.run(for: 500)
        let s = try Self.state(h)
        #expect(s["power"]?["export_limit_w"]?.doubleValue == 2500)
        #expect(s["power"]?["export_source"]?.stringValue == "dispatch:oadr:e1:0")
        let status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        #expect(status["openadr"]?["shown"]?.arrayValue?.isEmpty == true)   // enforced, so not in 'shown'
    }
}
