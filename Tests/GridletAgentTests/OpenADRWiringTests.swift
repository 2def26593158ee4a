@testable import GridletAgent
import GridletCore
import GridletOpenADR
import GridletSys
import Testing

/// A VEN thread the test speaks for: `deliver` is what `VENLink` does after a poll.
final class FakeVEN: VENPort, @unchecked Sendable {
    // Set once while the agent is built (on the test's thread), then only read there.
    var report: (@Sendable (VENReport) -> Void)?
    var started = false
    var stopped = false
    func start() throws(Errno) { started = true }
    func stop() { stopped = true }
    func pollNow() {}
    var sent: [OutgoingReport] = []
    func send(_ report: OutgoingReport) { sent.append(report) }
}

/// The VEN's reports through the agent's mailbox, with the real engine and the fake charger.
@Suite(.serialized) struct OpenADRWiringTests {
    typealias H = AgentHarness

    static let control = """
          comm_loss_timeout: 30s
          fallback_limit_w: 2760
        openadr:
          vtn_url: https://vtn.test
          ven_name: ven-1
          programs: [vpp]
        """

    static func poll(_ events: String, now: Int64, changed: Bool = true) -> VENReport {
        let programs = try! JSONValue.parse(#"[{"id":"p1","programName":"vpp"}]"#).arrayValue!
        let ev = try! JSONValue.parse(events).arrayValue!
        return .polled(VTNPoll(changed: changed, programs: programs, events: ev, requests: 2, notModified: 0, tokenExpiresWallMs: now + 3_600_000),
                       atWallMs: now, nextPollInMs: 60_000)
    }

    static func event(startMs: Int64, kw: [Double]) -> String {
        let intervals = kw.enumerated().map { #"{"id":\#($0.offset),"payloads":[{"type":"IMPORT_CAPACITY_LIMIT","values":[\#($0.element)]}]}"# }
        return #"[{"id":"e1","programID":"p1","objectType":"EVENT","createdDateTime":"2027-01-01T00:00:00Z","#
            + #""intervalPeriod":{"start":"\#(Timestamp.format(ms: startMs))","duration":"PT10S"},"intervals":[\#(intervals.joined(separator: ","))]}]"#
    }

    @Test func aPolledEventDrivesTheChargerAndItsDeletionRestores() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.control, ven: ven)
        #expect(ven.started)
        h.connect()
        h.run(for: 1000)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        let now = h.time.wallMs()
        ven.report?(Self.poll(Self.event(startMs: now + 1000, kw: [4.14, 6.9]), now: now))
        h.step()
        #expect(h.agent.engine.events.map(\.id) == ["oadr:e1:0", "oadr:e1:1"])
        h.run(for: 1500)
        #expect(h.charger.writes(to: H.setpoint).last == 6)
        #expect(h.agent.decision?.source == "dispatch:oadr:e1:0")
        h.run(for: 10_000)
        #expect(h.charger.writes(to: H.setpoint).last == 10)      // 6.9 kW at 3 × 230 V
        // Deleted at the VTN: cancelled (6), the charger restored.
        ven.report?(Self.poll("[]", now: h.time.wallMs()))
        h.run(for: 500)
        #expect(h.agent.engine.events.isEmpty)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        let responses = h.mqtt.on("/responses").map(\.payload)
        #expect(responses.contains { $0.contains(#""event":"oadr:e1:1""#) && $0.contains(#""status":6"#) })
        #expect(responses.contains { $0.contains(#""event":"oadr:e1:0""#) && $0.contains(#""status":3"#) })
        let status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        #expect(status["openadr"]?["ok"]?.boolValue == true)
        #expect(status["openadr"]?["polls"]?.doubleValue == 2)
        #expect(status["openadr"]?["programs"]?.arrayValue?.first?["id"]?.stringValue == "p1")
    }

    @Test func aSuccessfulPollIsContactAndAFailedOneIsNot() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.control, ven: ven)
        // No broker at all: only the VTN keeps comm.
        for _ in 0..<4 {
            h.run(for: 10_000)
            ven.report?(Self.poll("[]", now: h.time.wallMs(), changed: false))
        }
        h.run(for: 1000)
        #expect(h.agent.decision?.commOK == true)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        for _ in 0..<4 {
            h.run(for: 10_000)
            ven.report?(.failed(VENError(.connect, "GET https://vtn.test/programs: cannot connect"), atWallMs: h.time.wallMs(),
                                nextPollInMs: 5000, tokenExpiresWallMs: nil))
        }
        h.run(for: 1000)
        #expect(h.agent.decision?.commOK == false)
        #expect(h.agent.decision?.source == "fallback")
        #expect(h.charger.writes(to: H.setpoint).last == 0)       // 2760 W = 4 A: below min_current, paused
        let status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        #expect(status["openadr"]?["ok"]?.boolValue == false)
        #expect(status["openadr"]?["last_error"]?["kind"]?.stringValue == "connect")
    }

    @Test func withoutMQTTTheVTNAloneDispatchesAndNoTelemetryIsQueued() throws {
        let ven = FakeVEN()
        // The harness's config has an mqtt: section; the agent is told to run without it.
        let h = try AgentHarness(control: Self.control, ven: ven, mqttEnabled: false)
        #expect(h.mqtt.handler == nil)   // no broker session was made
        h.run(for: 1000)
        ven.report?(Self.poll(Self.event(startMs: h.time.wallMs() - 1000, kw: [4.14, 4.14, 4.14, 4.14, 4.14]), now: h.time.wallMs()))
        h.run(for: 35_000)   // past comm_loss_timeout, inside the event's 50 s
        #expect(h.charger.writes(to: H.setpoint).last == 6)
        #expect(h.agent.decision?.commOK == false)   // only the one poll above: lost after 30 s ...
        #expect(h.agent.decision?.source == "dispatch:oadr:e1:3")   // ... but the event runs on
        #expect(h.queue.stats.records > 0)          // responses and ledger are kept ...
        #expect(h.queue.records(after: 0, limit: 100).allSatisfy { $0.kind != .telemetry })   // ... telemetry is not made
        let status = try JSONValue.parse(h.agent.statusJSON(nowWall: h.time.wallMs()))
        #expect(status["mqtt"]?["broker"] == .null)
    }

    @Test func anEventsListShowsTheSource() throws {
        let ven = FakeVEN()
        let h = try AgentHarness(control: Self.control, ven: ven)
        h.connect()
        h.run(for: 1000)
        h.command("event", #"{"id":"m1","duration_s":600,"limit_w":5000,"start":"2099-01-01T00:00:00.000Z"}"#)
        ven.report?(Self.poll(Self.event(startMs: h.time.wallMs() + 60_000, kw: [3]), now: h.time.wallMs()))
        h.run(for: 300)
        let list = try JSONValue.parse(Reports.events(h.agent.engine.events, active: [], source: "default"))
        #expect(list["events"]?.arrayValue?.map { $0["source"]?.stringValue ?? "" } == ["mqtt", "openadr"])
    }
}
