@testable import GridletAgent
import GridletCore
import GridletOpenADR
import GridletQueue
import Testing

/// USAGE reports through the agent: built from the ledger, queued as `report` records, handed to
/// the VEN one at a time, acked or dropped or retried by what the VTN answered; never published
/// over MQTT.
@Suite(.serialized) struct OpenADRReportWiringTests {
    static let config = OpenADRWiringTests.control + "\ntelemetry:\n  ledger_interval: 1m\n"

    /// An event of p1 from `startMs`: two 1-minute intervals (ids 7, 8) without limits, asking for USAGE in `units`.
    static func usageEvent(startMs: Int64, units: String = "KWH") -> String {
        #"[{"id":"e1","programID":"p1","objectType":"EVENT","createdDateTime":"2027-01-01T00:00:00Z","#
            + #""intervalPeriod":{"start":"\#(Timestamp.format(ms: startMs))","duration":"PT1M"},"#
            + #""intervals":[{"id":7,"payloads":[]},{"id":8,"payloads":[]}],"#
            + #""reportDescriptors":[{"payloadType":"USAGE","units":"\#(units)"}]}]"#
    }

    /// Runs `ms` with the meter importing 1 Wh per second (its register follows the manual clock).
    static func run(_ h: AgentHarness, for ms: Int64, base: Int64) {
        var t: Int64 = 0
        while t < ms {
            h.time.advance(100)
            let wh = 5000 + Double(h.time.wallMs() - base) / 1000
            h.meter.state.withLock { $0.values["import_wh"] = wh; $0.values["export_wh"] = 0 }
            h.step()
            t += 100
        }
    }

    var reportRecords: (MemoryQueue) -> [QueuedRecord] = { $0.stored.filter { $0.kind == .report } }

    @Test func usageReportsAreQueuedPostedOneAtATimeAndLeaveTheQueueWhenAccepted() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.config, ven: ven)
        let base = h.time.wallMs()
        h.meter.state.withLock { $0.values["import_wh"] = 5000; $0.values["export_wh"] = 0 }
        h.connect()
        // The event starts at the next minute; the first reading is at base + 100 ms.
        let start = base + 60_000
        ven.report?(OpenADRWiringTests.poll(Self.usageEvent(startMs: start), now: h.time.wallMs()))
        Self.run(h, for: 200_000, base: base)
        // Intervals [start, +1m) and [+1m, +2m) are the event's: two reports; the one before it is not.
        #expect(reportRecords(h.queue).count == 2)
        #expect(ven.sent.count == 1)                   // one at a time: the second waits for the first's answer
        let first = try #require(ven.sent.first)
        #expect(!first.lookUpFirst)
        #expect(first.eventID == "e1" && first.reportName == "usage:e1:\(Timestamp.format(ms: start))")
        let body = try JSONValue.parse(first.body)
        #expect(body["clientName"]?.stringValue == "ven-1")
        let resource = try #require(body["resources"]?.arrayValue?.first)
        #expect(resource["resourceName"]?.stringValue == "AGGREGATED_REPORT")   // no resources configured
        #expect(resource["intervalPeriod"]?["duration"]?.stringValue == "PT60S")
        let value = try #require(resource["intervals"]?.arrayValue?.first?["payloads"]?.arrayValue?.first?["values"]?.arrayValue?.first?.doubleValue)
        #expect(abs(value - 0.06) < 1e-9)             // 60 Wh in kWh: the meter's difference over the minute
        #expect(resource["intervals"]?.arrayValue?.first?["id"]?.doubleValue == 7)
        // Never over MQTT, while the ledger and the rest are.
        #expect(h.mqtt.on("/reports").isEmpty)
        #expect(!h.mqtt.on("/ledger").isEmpty)
        #expect(!h.mqtt.published.contains { $0.payload.contains("usage:e1") })

        ven.report?(.reportDone(seq: first.seq, .accepted(status: 201), atWallMs: h.time.wallMs()))
        h.step()
        #expect(reportRecords(h.queue).count == 1)
        #expect(ven.sent.count == 2)
        let second = ven.sent[1]
        #expect(try JSONValue.parse(second.body)["resources"]?.arrayValue?.first?["intervals"]?.arrayValue?.first?["id"]?.doubleValue == 8)
        ven.report?(.reportDone(seq: second.seq, .alreadyThere, atWallMs: h.time.wallMs()))
        h.step()
        #expect(reportRecords(h.queue).isEmpty)
        let status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        let reports = try #require(status["openadr"]?["reports"])
        #expect(reports["queued"]?.doubleValue == 0 && reports["delivered"]?.doubleValue == 2 && reports["dropped"]?.doubleValue == 0)
        #expect(reports["last"]?["result"]?.stringValue == "already at the VTN")
        // Text status says it plainly.
        let text = StatusText(status: status, nowMs: h.time.wallMs(), zone: .utc).render()
        #expect(text.contains("reports") && text.contains("0 queued, 2 delivered, 0 dropped"))
    }

    @Test func aFailedPostIsTriedAgainAfterABackOffLookedUpFirstAndARefusedOneIsDropped() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.config, ven: ven)
        let base = h.time.wallMs()
        h.meter.state.withLock { $0.values["import_wh"] = 5000; $0.values["export_wh"] = 0 }
        h.connect()
        ven.report?(OpenADRWiringTests.poll(Self.usageEvent(startMs: base, units: "WH"), now: h.time.wallMs()))
        Self.run(h, for: 61_000, base: base)
        let first = try #require(ven.sent.first)
        let value = try JSONValue.parse(first.body)["resources"]?.arrayValue?.first?["intervals"]?.arrayValue?.first?["payloads"]?.arrayValue?.first?["values"]?.arrayValue?.first?.doubleValue
        // From the first reading (base + 100 ms) to the minute: 59.9 Wh.
        #expect(abs((value ?? 0) - 59.9) < 1e-6)
        ven.report?(.reportDone(seq: first.seq, .failed("POST http://vtn/reports: cannot connect (refused)"), atWallMs: h.time.wallMs()))
        h.step()
        #expect(ven.sent.count == 1)
        var status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        #expect(status["openadr"]?["reports"]?["next_try"]?.stringValue != nil)
        #expect(status["openadr"]?["reports"]?["last"]?["ok"]?.boolValue == false)
        Self.run(h, for: 3900, base: base)             // within the first back-off (4-5 s): not yet
        #expect(ven.sent.count == 1)
        Self.run(h, for: 1200, base: base)
        #expect(ven.sent.count == 2)
        #expect(ven.sent[1].seq == first.seq && ven.sent[1].lookUpFirst)   // it may have arrived: looked up first
        #expect(h.agent.nextWaitMs() >= 1)
        // Failed again; a successful poll makes it go at once instead of after the 8-10 s back-off.
        ven.report?(.reportDone(seq: first.seq, .failed("POST http://vtn/reports: HTTP 503"), atWallMs: h.time.wallMs()))
        h.step()
        #expect(ven.sent.count == 2)
        ven.report?(OpenADRWiringTests.poll(Self.usageEvent(startMs: base, units: "WH"), now: h.time.wallMs(), changed: false))
        h.step()
        #expect(ven.sent.count == 3 && ven.sent[2].seq == first.seq && ven.sent[2].lookUpFirst)
        // A 400: sending it again cannot help; dropped, the queue is free of it.
        ven.report?(.reportDone(seq: first.seq, .rejected(status: 400, detail: "POST http://vtn/reports: HTTP 400"), atWallMs: h.time.wallMs()))
        h.step()
        #expect(reportRecords(h.queue).isEmpty)
        status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        #expect(status["openadr"]?["reports"]?["dropped"]?.doubleValue == 1)
        #expect(status["openadr"]?["reports"]?["last"]?["result"]?.stringValue == "refused (HTTP 400), dropped")
    }

    @Test func reportsLeftInTheQueueWithoutOpenADRAreDropped() throws {
        let h = try AgentHarness(prepare: { _ in })
        _ = try h.queue.append(kind: .report, payload: Array(#"{"eventID":"e1","reportName":"x"}"#.utf8), timestampMs: 0)
        h.agent.resumeReports()
        #expect(h.queue.stored.allSatisfy { $0.kind != .report })
    }

    static func limitEvent(startMs: Int64, descriptors: String) -> String {
        #"[{"id":"e1","programID":"p1","objectType":"EVENT","createdDateTime":"2027-01-01T00:00:00Z","#
            + #""intervalPeriod":{"start":"\#(Timestamp.format(ms: startMs))","duration":"PT10M"},"#
            + #""intervals":[{"id":3,"payloads":[{"type":"IMPORT_CAPACITY_LIMIT","values":[4.14]}]}],"#
            + #""reportDescriptors":\#(descriptors)}]"#
    }

    @Test func anOptOutOfAnEventAskingForOperatingStateIsReportedToTheVTN() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.config, ven: ven)
        h.connect()
        let now = h.time.wallMs()
        ven.report?(OpenADRWiringTests.poll(Self.limitEvent(startMs: now - 1000, descriptors: #"[{"payloadType":"OPERATING_STATE"}]"#), now: now))
        h.run(for: 2000)
        #expect(h.charger.writes(to: AgentHarness.setpoint).last == 6)
        h.command("optout", #"{"id":"oadr:e1:3"}"#)
        h.run(for: 1000)
        #expect(h.mqtt.on("/responses").contains { $0.payload.contains(#""event":"oadr:e1:3""#) && $0.payload.contains(#""status":4"#) })
        #expect(h.charger.writes(to: AgentHarness.setpoint).last == 16)
        let sent = try #require(ven.sent.first)
        #expect(sent.eventID == "e1" && sent.reportName == "optout:e1:3")
        let body = try JSONValue.parse(sent.body)
        let res = try #require(body["resources"]?.arrayValue?.first)
        #expect(res["intervals"]?.arrayValue?.first?["id"]?.doubleValue == 3)
        // The fake meter shows 500 W of import: running, opted out.
        #expect(res["intervals"]?.arrayValue?.first?["payloads"]?.arrayValue?.first?["values"] == .array([.string("RUNNING_OPTED_OUT")]))
        #expect(body["payloadDescriptors"]?.arrayValue?.first?["payloadType"]?.stringValue == "OPERATING_STATE")
        // To the window's end, from the opt-out.
        let start = try #require(res["intervalPeriod"]?["start"]?.stringValue.flatMap(Timestamp.parse))
        #expect(start > now && start <= h.time.wallMs())
    }

    @Test func anEventThatCannotBeToldRefusesTheOptOutAndNothingIsReported() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.config, ven: ven)
        h.connect()
        let now = h.time.wallMs()
        ven.report?(OpenADRWiringTests.poll(Self.limitEvent(startMs: now - 1000, descriptors: "[]"), now: now))
        h.run(for: 2000)
        h.command("optout", #"{"id":"oadr:e1:3"}"#)
        h.run(for: 1000)
        #expect(h.mqtt.on("/reply").last?.payload.contains("not_allowed") == true)
        #expect(h.charger.writes(to: AgentHarness.setpoint).last == 6)
        #expect(ven.sent.isEmpty)
    }

    @Test func registrationIsShownInTheStatusAndARefusalDoesNotStopPolling() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.config, ven: ven)
        ven.report?(.registered(VENRegistration(ven: .init(name: "ven-1", id: nil, state: .refused, message: "POST https://vtn.test/vens: 403 Forbidden: ask"),
                                                resources: []), atWallMs: h.time.wallMs()))
        h.step()
        ven.report?(OpenADRWiringTests.poll("[]", now: h.time.wallMs()))
        h.step()
        let status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        #expect(status["openadr"]?["registration"]?["ven"]?["state"]?.stringValue == "refused")
        #expect(status["openadr"]?["ok"]?.boolValue == true)
        let text = StatusText(status: status, nowMs: h.time.wallMs(), zone: .utc).render()
        #expect(text.contains("registered ven-1 refused: POST https://vtn.test/vens: 403 Forbidden: ask"))
    }
}
