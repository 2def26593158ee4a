import Testing
@testable import GridletCore

private func json(_ s: String) -> JSONValue { try! JSONValue.parse(s) }

// t0 = 2027-06-01T17:00:00Z (ControlEngineTests.swift)
private let program = json(#"{"id":"p1","objectType":"PROGRAM","programName":"vpp"}"#)
private let settings = OpenADREvents.Settings(programs: ["vpp"], acceptedTargets: ["ven-1", "evse"])

/// An event of p1 with two 1-minute intervals from t0 and the given reportDescriptors.
private func event(_ id: String = "e1", descriptors: String, intervals: String? = nil) -> JSONValue {
    json("""
    {"id":"\(id)","objectType":"EVENT","programID":"p1","createdDateTime":"2027-05-31T12:00:00Z",
     "intervalPeriod":{"start":"\(Timestamp.format(ms: t0))","duration":"PT1M"},
     "intervals":\(intervals ?? #"[{"id":7,"payloads":[]},{"id":8,"payloads":[]}]"#),
     "reportDescriptors":\(descriptors)}
    """)
}

private func map(_ e: JSONValue) -> OpenADREvents {
    OpenADREvents.map(programObjects: [program], eventObjects: [e], settings: settings, nowMs: t0 - 60_000)
}

@Suite struct OpenADRReportRequestTests {
    @Test func usageAndOperatingStateAreTakenWithTheEventsIntervalSpans() {
        let m = map(event(descriptors: #"[{"payloadType":"USAGE","units":"WH"},{"payloadType":"OPERATING_STATE"}]"#))
        #expect(m.problems.isEmpty)
        #expect(m.reportRequests.count == 2)
        let u = m.reportRequests[0]
        #expect(u.kind == .usage && u.eventID == "e1" && u.programID == "p1" && u.units == "WH")
        #expect(u.spans == [.init(id: 7, startMs: t0, endMs: t0 + 60_000), .init(id: 8, startMs: t0 + 60_000, endMs: t0 + 120_000)])
        #expect(m.reportRequests[1].kind == .operatingState)
        // Units default to KWH (the enumeration's energy unit).
        #expect(map(event(descriptors: #"[{"payloadType":"USAGE"}]"#)).reportRequests.first?.units == "KWH")
    }

    @Test func descriptorsGridletDoesNotProduceAreIgnoredWithALineNamingThem() {
        let m = map(event(descriptors: """
            [{"payloadType":"DEMAND"},{"payloadType":"USAGE","historical":false},{"payloadType":"USAGE","units":"KW"},
             {"payloadType":"USAGE","targets":["someone-else"]},{"units":"KWH"},"x"]
            """))
        #expect(m.reportRequests.isEmpty)
        #expect(m.problems == [
            "event 'e1' reportDescriptors[0]: report type DEMAND is not one gridlet produces; ignored",
            "event 'e1' reportDescriptors[1] (USAGE): a forecast (historical: false) is not produced; ignored",
            "event 'e1' reportDescriptors[2] (USAGE): units \"KW\" (gridlet reports KWH or WH); ignored",
            "event 'e1' reportDescriptors[3] (USAGE): its targets [\"someone-else\"] name none of this site's; not reported",
            "event 'e1' reportDescriptors[4] has no payloadType; ignored",
            "event 'e1' reportDescriptors[5] has no payloadType; ignored",
        ])
        // The event itself still maps (its limits are not affected by its reports).
        #expect(m.events.map(\.id) == ["e1"])
        #expect(map(event(descriptors: #"{"payloadType":"USAGE"}"#)).problems == ["event 'e1': reportDescriptors is not a list; no reports for it"])
    }
}

@Suite struct UsageReporterTests {
    /// The ledger fed with a meter that imports 1 Wh per second, a reading every 500 ms from `from` to `to`.
    static func ledgerRecords(_ ledger: inout EnergyLedger, from: Int64, to: Int64, source: String = "default") -> [LedgerRecord] {
        var out: [LedgerRecord] = []
        var t = from
        while t <= to {
            let wh = 100_000 + Double(t - t0) / 1000
            out += ledger.feed(nowMs: t, sample: LedgerSample(importWh: wh, exportWh: 5), source: source)
            t += 500
        }
        return out
    }

    static let request = OpenADRReportRequest(kind: .usage, eventID: "e1", programID: "p1", units: "KWH",
                                              spans: [.init(id: 7, startMs: t0, endMs: t0 + 60_000), .init(id: 8, startMs: t0 + 60_000, endMs: t0 + 120_000)])

    @Test func oneReportPerCompletedLedgerIntervalWithTheMetersEnergy() throws {
        var ledger = EnergyLedger(intervalMs: 60_000)
        var u = UsageReporter(intervalMs: 60_000)
        u.setRequests([Self.request, .init(kind: .operatingState, eventID: "e1", programID: "p1", units: nil, spans: [])], nowMs: t0)
        #expect(u.requests.count == 1)   // only USAGE is built here
        // From 20 s before the event to 10 s after its end; a source change in the middle splits records, not intervals.
        var records = Self.ledgerRecords(&ledger, from: t0 - 20_000, to: t0 + 30_000)
        records += Self.ledgerRecords(&ledger, from: t0 + 30_500, to: t0 + 130_000, source: "dispatch:oadr:e1:0")
        let closed = u.add(records)
        #expect(closed.map(\.fromMs) == [t0 - 20_000, t0, t0 + 60_000])
        #expect(closed.map(\.toMs) == [t0, t0 + 60_000, t0 + 120_000])
        #expect(closed.map(\.importMWh) == [20_000, 60_000, 60_000])
        #expect(u.open == nil)   // the ledger still holds the segment after t0 + 120 s
        // The partial interval before the event is not the event's: no report for it.
        #expect(u.reports(for: closed[0], clientName: "ven-1", resourceName: "evse").isEmpty)
        let r = try #require(u.reports(for: closed[1], clientName: "ven-1", resourceName: "evse").first)
        #expect(r.eventID == "e1" && r.reportName == "usage:e1:2027-06-01T17:00:00.000Z")
        #expect(r.body == json("""
            {"eventID":"e1","clientName":"ven-1","reportName":"usage:e1:2027-06-01T17:00:00.000Z",
             "payloadDescriptors":[{"objectType":"REPORT_PAYLOAD_DESCRIPTOR","payloadType":"USAGE","readingType":"DIRECT_READ","units":"KWH"}],
             "resources":[{"resourceName":"evse","intervalPeriod":{"start":"2027-06-01T17:00:00.000Z","duration":"PT60S"},
                           "intervals":[{"id":7,"payloads":[{"type":"USAGE","values":[0.06]}]}]}]}
            """))
        let second = try #require(u.reports(for: closed[2], clientName: "ven-1", resourceName: "evse").first)
        #expect(second.body["resources"]?.arrayValue?.first?["intervals"]?.arrayValue?.first?["id"]?.doubleValue == 8)
    }

    @Test func whUnitsAndEstimatedRecordsSayItInTheReport() throws {
        var u = UsageReporter(intervalMs: 60_000)
        var req = Self.request
        req.units = "WH"
        u.setRequests([req], nowMs: t0)
        let closed = u.add([LedgerRecord(fromMs: t0, toMs: t0 + 30_000, importMWh: 1500, exportMWh: 0, source: "default", estimated: false),
                            LedgerRecord(fromMs: t0 + 30_000, toMs: t0 + 60_000, importMWh: 2250, exportMWh: 9, source: "x", estimated: true)])
        let iv = try #require(closed.first)
        let r = try #require(u.reports(for: iv, clientName: "v", resourceName: "AGGREGATED_REPORT").first)
        #expect(r.body["payloadDescriptors"]?.arrayValue?.first?["readingType"]?.stringValue == "ESTIMATED")
        #expect(r.body["payloadDescriptors"]?.arrayValue?.first?["units"]?.stringValue == "WH")
        #expect(r.body["resources"]?.arrayValue?.first?["intervals"]?.arrayValue?.first?["payloads"]?.arrayValue?.first?["values"] == .array([.number(3.75)]))
    }

    @Test func anIntervalWithoutItsClosingRecordIsClosedByALaterOne() {
        var u = UsageReporter(intervalMs: 60_000)
        let closed = u.add([LedgerRecord(fromMs: t0 + 5000, toMs: t0 + 20_000, importMWh: 10, exportMWh: 0, source: "d", estimated: false),
                            LedgerRecord(fromMs: t0 + 200_000, toMs: t0 + 210_000, importMWh: 3, exportMWh: 0, source: "d", estimated: false)])
        #expect(closed == [.init(fromMs: t0 + 5000, toMs: t0 + 20_000, importMWh: 10, estimated: false)])
        #expect(u.open == .init(fromMs: t0 + 200_000, toMs: t0 + 210_000, importMWh: 3, estimated: false))
    }

    @Test func aRestartMidIntervalReportsTheSameAsOneRun() throws {
        var ledgerA = EnergyLedger(intervalMs: 60_000)
        var a = UsageReporter(intervalMs: 60_000)
        a.setRequests([Self.request], nowMs: t0)
        let all = a.add(Self.ledgerRecords(&ledgerA, from: t0 - 1000, to: t0 + 125_000))

        var ledgerB = EnergyLedger(intervalMs: 60_000)
        var b = UsageReporter(intervalMs: 60_000)
        b.setRequests([Self.request], nowMs: t0)
        var got = b.add(Self.ledgerRecords(&ledgerB, from: t0 - 1000, to: t0 + 75_000))
        let saved = b.persistentState
        var c = UsageReporter(intervalMs: 60_000)
        let restored = c.restore(try JSONValue.parse(saved.serialized))
        #expect(restored)
        #expect(c == b)
        got += c.add(Self.ledgerRecords(&ledgerB, from: t0 + 75_500, to: t0 + 125_000))
        #expect(got == all)
        #expect(got.count == 3)
        // Not a usage state: refused, nothing changed.
        let refused = [c.restore(json(#"{"v":2}"#)), c.restore(json(#"{"v":1,"requests":[{"kind":"USAGE"}],"open":null}"#))]
        #expect(refused == [false, false])
        #expect(c == b)
    }

    @Test func requestsOfEventsLongOverAreForgotten() {
        var u = UsageReporter(intervalMs: 60_000)
        u.setRequests([Self.request], nowMs: t0 + 120_000 + 2 * 60_000)
        #expect(u.requests.isEmpty)
        u.setRequests([Self.request], nowMs: t0 + 120_000 + 60_000)
        #expect(u.requests.count == 1)
    }

    @Test func durations() {
        #expect(UsageReporter.isoDuration(ms: 900_000) == "PT900S")
        #expect(UsageReporter.isoDuration(ms: 1500) == "PT1.5S")
    }
}

@Suite struct ReportBackoffTests {
    @Test func backsOffFrom5sDoublingTo5MinutesWithJitterAndResetsOnSuccess() {
        var b = ReportBackoff(seed: 42)
        #expect(b.isDue(nowMs: 0))
        var now: Int64 = 1_000_000
        var expected: Int64 = 5000
        for _ in 0..<10 {
            b.failed(nowMs: now)
            let delay = b.nextMs - now
            #expect(delay <= expected && delay >= expected - expected / 5, "delay \(delay) for \(expected)")
            #expect(!b.isDue(nowMs: b.nextMs - 1) && b.isDue(nowMs: b.nextMs))
            now = b.nextMs
            expected = min(expected * 2, 300_000)
        }
        #expect(b.failures == 10)
        b.retryNow()
        #expect(b.isDue(nowMs: now) && b.failures == 10)
        b.failed(nowMs: now)
        #expect(b.nextMs - now <= 300_000 && b.nextMs - now >= 240_000)   // backs off from where it was
        b.succeeded()
        #expect(b.failures == 0 && b.isDue(nowMs: now))
        b.failed(nowMs: now)
        #expect(b.nextMs - now <= 5000)
    }

    @Test func whichAnswersDropAReport() {
        for s in [400, 404, 405, 409, 413, 422] { #expect(ReportDelivery.isPermanent(status: s), "\(s)") }
        for s in [401, 403, 408, 429, 500, 502, 503, 200, 302] { #expect(!ReportDelivery.isPermanent(status: s), "\(s)") }
    }
}

@Suite struct OpenADROptOutTests {
    static func limitEvent(descriptors: String) -> JSONValue {
        event(descriptors: descriptors, intervals: #"[{"id":7,"payloads":[{"type":"IMPORT_CAPACITY_LIMIT","values":[4.14]}]}]"#)
    }

    @Test func onlyEventsAskingForOperatingStateAllowALocalOptOut() {
        #expect(map(Self.limitEvent(descriptors: #"[{"payloadType":"OPERATING_STATE"}]"#)).windows.map(\.optOutAllowed) == [true])
        #expect(map(Self.limitEvent(descriptors: #"[{"payloadType":"USAGE"}]"#)).windows.map(\.optOutAllowed) == [false])
        #expect(map(Self.limitEvent(descriptors: "null")).windows.map(\.optOutAllowed) == [false])
    }

    @Test func theOptOutReportSaysRunningOrIdleOptedOutForTheRestOfTheWindow() {
        let r = OpenADRReport.optOut(eventID: "e1", intervalID: 7, fromMs: t0 + 30_000, toMs: t0 + 60_000, sitePowerW: 4318,
                                     clientName: "ven-1", resourceName: "evse")
        #expect(r.reportName == "optout:e1:7")
        #expect(r.body == json("""
            {"eventID":"e1","clientName":"ven-1","reportName":"optout:e1:7",
             "payloadDescriptors":[{"objectType":"REPORT_PAYLOAD_DESCRIPTOR","payloadType":"OPERATING_STATE"}],
             "resources":[{"resourceName":"evse","intervalPeriod":{"start":"2027-06-01T17:00:30.000Z","duration":"PT30S"},
                           "intervals":[{"id":7,"payloads":[{"type":"OPERATING_STATE","values":["RUNNING_OPTED_OUT"]}]}]}]}
            """))
        for w: Double? in [nil, 0, 100, -3000] {
            let idle = OpenADRReport.optOut(eventID: "e1", intervalID: 7, fromMs: t0, toMs: t0, sitePowerW: w, clientName: "v", resourceName: "r")
            #expect(idle.body["resources"]?.arrayValue?.first?["intervals"]?.arrayValue?.first?["payloads"]?.arrayValue?.first?["values"]
                    == .array([.string("IDLE_OPTED_OUT")]))
        }
    }
}
