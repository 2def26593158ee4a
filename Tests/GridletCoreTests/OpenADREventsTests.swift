import Testing
@testable import GridletCore

// t0 = 2027-06-01T17:00:00Z (ControlEngineTests.swift)
private let t0s = "2027-06-01T17:00:00.000Z"

private func json(_ s: String) -> JSONValue { try! JSONValue.parse(s) }

private let program = json("""
{"id":"p1","objectType":"PROGRAM","createdDateTime":"2027-01-01T00:00:00Z","modificationDateTime":"2027-01-01T00:00:00Z",
 "programName":"vpp","payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"DISPATCH_SETPOINT","units":"W"}]}
""")
private let otherProgram = json("""
{"id":"p2","objectType":"PROGRAM","createdDateTime":"2027-01-01T00:00:00Z","modificationDateTime":"2027-01-01T00:00:00Z","programName":"other"}
""")

private let settings = OpenADREvents.Settings(programs: ["vpp"], acceptedTargets: ["ven-1", "evse", "group-1"],
                                              simpleLevels: [0: nil, 1: 7000, 2: 3500, 3: 0], randomSeed: 7)

/// An event of programme p1 with `fields` spliced in (a JSON object body without braces).
private func ev(_ id: String, _ fields: String) -> JSONValue {
    json("""
    {"id":"\(id)","objectType":"EVENT","programID":"p1","createdDateTime":"2027-05-31T12:00:00Z",
     "modificationDateTime":"2027-05-31T12:30:00Z",\(fields)}
    """)
}

private func map(_ events: [JSONValue], now: Int64 = t0 - 60_000, settings s: OpenADREvents.Settings = settings) -> OpenADREvents {
    OpenADREvents.map(programObjects: [program, otherProgram], eventObjects: events, settings: s, nowMs: now)
}

private let twoIntervals = ev("e1", """
"priority":3,"payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"IMPORT_CAPACITY_LIMIT","units":"KW"}],
"intervalPeriod":{"start":"\(t0s)","duration":"PT10M"},
"intervals":[{"id":0,"payloads":[{"type":"IMPORT_CAPACITY_LIMIT","values":[4.14]}]},
             {"id":1,"payloads":[{"type":"IMPORT_CAPACITY_LIMIT","values":[6.9]}]}]
""")

@Suite struct ISODurationTests {
    @Test func parsesWhatOpenADRWrites() {
        #expect(ISODuration.parseMs("PT1H") == 3_600_000)
        #expect(ISODuration.parseMs("PT10M") == 600_000)
        #expect(ISODuration.parseMs("P1DT12H") == 129_600_000)
        #expect(ISODuration.parseMs("PT0.5S") == 500)
        #expect(ISODuration.parseMs("PT0S") == 0)
        #expect(ISODuration.parseMs("P2W") == 1_209_600_000)
        #expect(ISODuration.parseMs("P9999Y") == ISODuration.infinite)
    }

    @Test func rejectsWhatIsNotADuration() {
        for bad in ["", "P", "PT", "1H", "PT1X", "P1H", "-PT1H", "PT1M1H", "P1.5D", "P1DT", "PTH"] {
            #expect(ISODuration.parseMs(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct OpenADRMappingTests {
    @Test func importCapacityLimitInKWBecomesOneWindowPerInterval() {
        let m = map([twoIntervals])
        #expect(m.problems.isEmpty)
        #expect(m.programs.map(\.name) == ["vpp"])
        let created = Timestamp.parse("2027-05-31T12:30:00Z")!
        #expect(m.windows == [
            DispatchEvent(id: "oadr:e1:0", createdMs: created, startMs: t0, durationMs: 600_000, limitW: 4140, primacy: 3),
            DispatchEvent(id: "oadr:e1:1", createdMs: created, startMs: t0 + 600_000, durationMs: 600_000, limitW: 6900, primacy: 3),
        ])
        #expect(m.events == [OpenADREvents.EventSummary(id: "e1", name: nil, programName: "vpp", priority: 3, modifiedMs: created,
                                                        windows: ["oadr:e1:0", "oadr:e1:1"], ignored: nil)])
    }

    @Test func priorityMapsToPrimacy() {
        func primacy(_ p: String) -> Int? {
            map([ev("e", "\(p)\"intervalPeriod\":{\"start\":\"\(t0s)\",\"duration\":\"PT1H\"},\"intervals\":[{\"id\":0,\"payloads\":[{\"type\":\"DISPATCH_SETPOINT\",\"values\":[1000]}]}]")])
                .windows.first?.primacy
        }
        #expect(primacy("") == 64)                     // no priority: the lowest dispatch primacy
        #expect(primacy("\"priority\":null,") == 64)
        #expect(primacy("\"priority\":0,") == 0)
        #expect(primacy("\"priority\":12,") == 12)
        #expect(primacy("\"priority\":1000,") == 64)
        #expect(primacy("\"priority\":-1,") == nil)
    }

    @Test func simpleLevelsGoThroughTheTable() {
        let e = ev("s", """
        "intervalPeriod":{"start":"\(t0s)","duration":"PT15M"},
        "intervals":[{"id":0,"payloads":[{"type":"SIMPLE","values":[2]}]},{"id":1,"payloads":[{"type":"SIMPLE","values":[0]}]},
                     {"id":2,"payloads":[{"type":"SIMPLE","values":[3]}]},{"id":3,"payloads":[{"type":"SIMPLE","values":[7]}]}]
        """)
        let m = map([e])
        #expect(m.windows.map(\.id) == ["oadr:s:0", "oadr:s:2"])   // level 0 = normal operation: no window
        #expect(m.windows.map(\.limitW) == [3500, 0])
        #expect(m.problems == ["event 's' interval [3] (id 3): SIMPLE value 7 is not a level 0 to 3; ignored"])
        let none = map([e], settings: .init(programs: ["vpp"], acceptedTargets: []))
        #expect(none.windows.isEmpty)
        #expect(none.problems.first == "event 's' interval [0] (id 0): SIMPLE payload but openadr.simple_levels is not configured; ignored")
    }

    @Test func dispatchSetpointTakesUnitsFromTheProgramme() {
        let m = map([ev("d", """
        "intervalPeriod":{"start":"\(t0s)","duration":"PT1H"},"intervals":[{"id":5,"payloads":[{"type":"DISPATCH_SETPOINT","values":[2500]}]}]
        """)])
        #expect(m.windows.map(\.limitW) == [2500])
        #expect(m.windows.map(\.id) == ["oadr:d:5"])
    }

    @Test func wrongUnitsUnknownTypesAndBadValuesAreIgnoredWithTheirObjectNamed() {
        let m = map([ev("u", """
        "payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"IMPORT_CAPACITY_LIMIT","units":"KWH"}],
        "intervalPeriod":{"start":"\(t0s)","duration":"PT1H"},
        "intervals":[{"id":0,"payloads":[{"type":"IMPORT_CAPACITY_LIMIT","values":[3]}]},
                     {"id":1,"payloads":[{"type":"FROBNICATE","values":[1]}]},
                     {"id":2,"payloads":[{"type":"DISPATCH_SETPOINT","values":[-5]}]},
                     {"id":3,"payloads":[{"type":"DISPATCH_SETPOINT","values":["high"]}]}]
        """)])
        #expect(m.windows.isEmpty)
        #expect(m.problems == [
            "event 'u' interval [0] (id 0): IMPORT_CAPACITY_LIMIT in units KWH (gridlet takes KW or W); ignored",
            "event 'u' interval [1] (id 1): payload type FROBNICATE is not one gridlet acts on; ignored",
            "event 'u' interval [2] (id 2): DISPATCH_SETPOINT value -5 is not a power between 0 and 10 MW; ignored",
            "event 'u' interval [3] (id 3): DISPATCH_SETPOINT value \"high\" is not a power between 0 and 10 MW; ignored",
        ])
    }

    @Test func exportLimitAndPriceAreShownNotEnforced() {
        let m = map([ev("i", """
        "payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"PRICE","units":"KWH","currency":"USD"},
                              {"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"EXPORT_CAPACITY_LIMIT","units":"KW"}],
        "intervalPeriod":{"start":"\(t0s)","duration":"PT3H"},
        "intervals":[{"id":0,"payloads":[{"type":"PRICE","values":[0.17,0.03,0.11]},{"type":"EXPORT_CAPACITY_LIMIT","values":[5]}]}]
        """)])
        #expect(m.windows.isEmpty && m.problems.isEmpty)
        #expect(m.informational.map(\.type) == ["PRICE", "PRICE", "PRICE", "EXPORT_CAPACITY_LIMIT"])
        #expect(m.informational.map(\.value) == [0.17, 0.03, 0.11, 5])
        #expect(m.informational[1].startMs == t0 + 3_600_000 && m.informational[1].endMs == t0 + 7_200_000)
        #expect(m.informational[0].currency == "USD" && m.informational[3].units == "KW")
    }

    @Test func exportLimitIsTheWindowsExportLimitAtASiteWithABidirectionalDevice() {
        var v2g = settings
        v2g.exportControl = true
        let m = map([ev("x", """
        "payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"EXPORT_CAPACITY_LIMIT","units":"KW"}],
        "intervalPeriod":{"start":"\(t0s)","duration":"PT1H"},
        "intervals":[{"id":0,"payloads":[{"type":"EXPORT_CAPACITY_LIMIT","values":[5]}]},
                     {"id":1,"payloads":[{"type":"EXPORT_CAPACITY_LIMIT","values":[2.5,0]},{"type":"IMPORT_CAPACITY_LIMIT","values":[4]}]},
                     {"id":2,"payloads":[{"type":"EXPORT_CAPACITY_LIMIT","values":[-1]}]},
                     {"id":3,"payloads":[{"type":"PRICE","values":[0.2]}]}]
        """)], settings: v2g)
        #expect(m.windows.map(\.id) == ["oadr:x:0", "oadr:x:1.0", "oadr:x:1.1"])
        #expect(m.windows.map(\.exportLimitW) == [5000, 2500, 0])
        // Export only: no import limit of its own; with IMPORT_CAPACITY_LIMIT beside it, that one (4 kW, to both halves).
        #expect(m.windows.map(\.limitW) == [10_000_000, 4000, 4000])
        #expect(m.windows[1].startMs == t0 + 3_600_000 && m.windows[1].durationMs == 1_800_000)
        #expect(m.informational.map(\.type) == ["PRICE"])
        #expect(m.problems == ["event 'x' interval [2] (id 2): EXPORT_CAPACITY_LIMIT value -1 is not a power between 0 and 10 MW; ignored"])
        // W as units; other units ignored with a line.
        let w = map([ev("w", """
        "payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"EXPORT_CAPACITY_LIMIT","units":"W"}],
        "intervalPeriod":{"start":"\(t0s)","duration":"PT1H"},"intervals":[{"id":0,"payloads":[{"type":"EXPORT_CAPACITY_LIMIT","values":[3300]}]}]
        """), ev("a", """
        "payloadDescriptors":[{"objectType":"EVENT_PAYLOAD_DESCRIPTOR","payloadType":"EXPORT_CAPACITY_LIMIT","units":"AMPS"}],
        "intervalPeriod":{"start":"\(t0s)","duration":"PT1H"},"intervals":[{"id":0,"payloads":[{"type":"EXPORT_CAPACITY_LIMIT","values":[16]}]}]
        """)], settings: v2g)
        #expect(w.windows.map(\.exportLimitW) == [3300])
        #expect(w.problems == ["event 'a' interval [0] (id 0): EXPORT_CAPACITY_LIMIT in units AMPS (gridlet takes KW or W); ignored"])
    }

    @Test func multiValuedLimitsBecomeSubIntervals() {
        let m = map([ev("mv", """
        "intervalPeriod":{"start":"\(t0s)","duration":"PT30M"},
        "intervals":[{"id":0,"payloads":[{"type":"DISPATCH_SETPOINT","values":[1000,2000,3000]}]}]
        """)])
        #expect(m.windows.map(\.id) == ["oadr:mv:0.0", "oadr:mv:0.1", "oadr:mv:0.2"])
        #expect(m.windows.map(\.startMs) == [t0, t0 + 600_000, t0 + 1_200_000])
        #expect(m.windows.map(\.limitW) == [1000, 2000, 3000])
    }

    @Test func severalLimitsInOneIntervalTakeTheLowest() {
        let m = map([ev("two", """
        "intervalPeriod":{"start":"\(t0s)","duration":"PT30M"},
        "intervals":[{"id":0,"payloads":[{"type":"DISPATCH_SETPOINT","values":[5000]},{"type":"IMPORT_CAPACITY_LIMIT","values":[2]}]}]
        """)])
        #expect(m.windows.map(\.limitW) == [2000])
    }

    @Test func targetsProgrammesAndMalformedObjectsAreIgnoredWithALine() {
        let body = "\"intervalPeriod\":{\"start\":\"\(t0s)\",\"duration\":\"PT1H\"},\"intervals\":[{\"id\":0,\"payloads\":[{\"type\":\"DISPATCH_SETPOINT\",\"values\":[1]}]}]"
        let m = map([
            ev("other-site", "\"targets\":[\"group-9\"]," + body),
            ev("mine", "\"targets\":[\"group-9\",\"evse\"]," + body),
            json("{\"id\":\"x\",\"objectType\":\"EVENT\",\"programID\":\"p2\",\(body)}"),
            json("[1,2]"),
            json("{\"programID\":\"p1\"}"),
            json("{\"id\":\"bad id!\",\"programID\":\"p1\"}"),
            ev("nointervals", "\"intervalPeriod\":{\"start\":\"\(t0s)\",\"duration\":\"PT1H\"}"),
            ev("badstart", "\"intervalPeriod\":{\"start\":\"tomorrow\",\"duration\":\"PT1H\"},\"intervals\":[]"),
        ])
        #expect(m.windows.map(\.id) == ["oadr:mine:0"])
        #expect(m.problems == [
            "event 'other-site' (programme vpp): its targets [\"group-9\"] name none of this site's ([\"evse\", \"group-1\", \"ven-1\"]); ignored",
            "event 'x' belongs to programme id p2, which this site does not follow; ignored",
            "event [3] is not a JSON object; ignored",
            "event [4] has no valid id; ignored",
            "event [5] has no valid id; ignored",
            "event 'nointervals' (programme vpp): it has no intervals list; ignored",
            "event 'badstart' (programme vpp): intervalPeriod {\"start\":\"tomorrow\",\"duration\":\"PT1H\"} is not valid (start RFC 3339, durations ISO 8601); ignored",
        ])
    }

    @Test func aProgrammeTheVTNDoesNotOfferIsSaid() {
        let m = OpenADREvents.map(programObjects: [otherProgram], eventObjects: [], settings: settings, nowMs: t0)
        #expect(m.programs.isEmpty)
        #expect(m.problems == ["programme 'vpp' is not offered by the VTN (not in GET /programs)"])
    }

    @Test func randomizeStartShiftsEveryIntervalByOneStableDraw() {
        let e = ev("r", """
        "intervalPeriod":{"start":"\(t0s)","duration":"PT10M","randomizeStart":"PT5M"},
        "intervals":[{"id":0,"payloads":[{"type":"DISPATCH_SETPOINT","values":[1]}]},{"id":1,"payloads":[{"type":"DISPATCH_SETPOINT","values":[2]}]}]
        """)
        let a = map([e]), b = map([e], now: t0 - 30_000)
        #expect(a.windows == b.windows)   // the same at every poll
        let shift = a.windows[0].startMs - t0
        #expect(shift >= 0 && shift <= 300_000)
        #expect(a.windows[1].startMs == a.windows[0].startMs + 600_000)   // still contiguous
        #expect(a.windows.allSatisfy { $0.randomizeStartS == 0 && $0.randomDelayMs == 0 })
        var other = settings
        let shifts = (1...8).map { seed -> Int64 in
            other.randomSeed = UInt64(seed)
            return map([e], settings: other).windows[0].startMs - t0
        }
        #expect(Set(shifts).count > 1)   // sites draw differently
    }

    @Test func doItNowStartsAtCreationAndInfinityIsCapped() {
        let m = map([ev("now", """
        "intervalPeriod":{"start":"0001-01-01","duration":"P9999Y"},"intervals":[{"id":0,"payloads":[{"type":"DISPATCH_SETPOINT","values":[0]}]}]
        """)])
        let created = Timestamp.parse("2027-05-31T12:00:00Z")!
        #expect(m.windows.map(\.startMs) == [created])
        #expect(m.windows.map(\.durationMs) == [OpenADREvents.maxWindowMs])
    }

    @Test func eventDurationClipsAndEndedWindowsAreDropped() {
        let e = ev("c", """
        "duration":"PT25M","intervalPeriod":{"start":"\(t0s)","duration":"PT10M"},
        "intervals":[{"id":0,"payloads":[{"type":"DISPATCH_SETPOINT","values":[1]}]},{"id":1,"payloads":[{"type":"DISPATCH_SETPOINT","values":[2]}]},
                     {"id":2,"payloads":[{"type":"DISPATCH_SETPOINT","values":[3]}]},{"id":3,"payloads":[{"type":"DISPATCH_SETPOINT","values":[4]}]}]
        """)
        #expect(map([e]).windows.map(\.durationMs) == [600_000, 600_000, 300_000])
        #expect(map([e], now: t0 + 650_000).windows.map(\.id) == ["oadr:c:1", "oadr:c:2"])
    }

    @Test func intervalsWithTheirOwnPeriods() {
        let later = "2027-06-01T18:00:00Z"
        let m = map([ev("v", """
        "intervalPeriod":{"start":"\(t0s)","duration":"PT1H"},
        "intervals":[{"id":0,"payloads":[{"type":"DISPATCH_SETPOINT","values":[1]}]},
                     {"id":1,"intervalPeriod":{"duration":"PT2H"},"payloads":[{"type":"DISPATCH_SETPOINT","values":[2]}]},
                     {"id":9,"intervalPeriod":{"start":"\(later)","duration":"PT5M"},"payloads":[{"type":"DISPATCH_SETPOINT","values":[3]}]},
                     {"id":9,"payloads":[{"type":"DISPATCH_SETPOINT","values":[4]}]}]
        """)])
        #expect(m.windows.map(\.startMs) == [t0, t0 + 3_600_000, Timestamp.parse(later)!])
        #expect(m.windows.map(\.durationMs) == [3_600_000, 7_200_000, 300_000])
        #expect(m.problems == ["event 'v' interval [3]: interval id 9 is used twice; ignored"])
    }

    @Test func longEventIDsAreHashedIntoTheIdLimit() {
        let long = String(repeating: "a", count: 100)
        let id = OpenADREvents.windowID(eventID: long, intervalID: -3, sub: 2)
        #expect(id.utf8.count <= 64 && CommandParser.validID(id) && id.hasPrefix("oadr:") && id.hasSuffix(":-3.2"))
        #expect(OpenADREvents.windowID(eventID: long, intervalID: -3, sub: 2) == id)
        #expect(OpenADREvents.windowID(eventID: "e1", intervalID: 0, sub: nil) == "oadr:e1:0")
    }
}

@Suite struct EngineOpenADRTests {
    let windows = map([twoIntervals]).windows

    @Test func aPollReplacesOnlyTheOpenADREvents() {
        var e = engine()
        _ = e.handle(.event(event("mqtt-1", at: 3600, limit: 1000)), nowMs: t0 - 60_000)
        var o = e.replaceOpenADR(windows, nowMs: t0 - 60_000)
        #expect(o.changed && o.error == nil)
        #expect(o.responses.map(\.status) == [.received, .received])
        #expect(e.events.map(\.id) == ["mqtt-1", "oadr:e1:0", "oadr:e1:1"])
        // The same poll again changes nothing and says nothing.
        o = e.replaceOpenADR(windows, nowMs: t0 - 30_000)
        #expect(!o.changed && o.responses.isEmpty)
        // The VTN changed the second interval: received again, the first untouched.
        var changed = windows
        changed[1].limitW = 5000
        o = e.replaceOpenADR(changed, nowMs: t0 - 20_000)
        #expect(o.responses.map(\.event) == ["oadr:e1:1"] && o.responses.map(\.status) == [.received])
        // MQTT's full set replaces the MQTT events only.
        o = e.handle(.events(version: 1, events: [event("mqtt-2", at: 7200, limit: 2000)]), nowMs: t0 - 10_000)
        #expect(o.responses.map(\.event) == ["mqtt-1", "mqtt-2"])
        #expect(e.events.map(\.id) == ["mqtt-2", "oadr:e1:0", "oadr:e1:1"])
        // The event is deleted at the VTN during its first interval: both cancelled, MQTT untouched.
        let d = e.step(t0 + 1000)
        #expect(d.source == "dispatch:oadr:e1:0" && d.limitW == 4140)
        o = e.replaceOpenADR([], nowMs: t0 + 2000)
        #expect(o.responses.map(\.status) == [.cancelled, .cancelled])
        #expect(e.events.map(\.id) == ["mqtt-2"])
    }

    @Test func aWindowThatEndedIsCompletedNotCancelled() {
        var e = engine()
        _ = e.replaceOpenADR(windows, nowMs: t0 - 60_000)
        _ = e.step(t0 + 1000)
        // The next poll no longer lists the first interval (over); before advance saw its end.
        let o = e.replaceOpenADR(Array(windows.dropFirst()), nowMs: t0 + 600_000)
        #expect(o.responses.isEmpty)
        let adv = e.advance(nowMs: t0 + 600_000)
        #expect(adv.responses.map(\.status) == [.completed, .started])
    }

    @Test func mqttCannotUseOpenADRIds() {
        for (name, payload) in [("event", #"{"id":"oadr:e1:0","duration_s":60,"limit_w":0}"#), ("cancel", #"{"id":"oadr:e1:0"}"#)] {
            let p = CommandParser.parse(name: name, payload: Array(payload.utf8), nowMs: t0)
            guard case let .failure(err) = p.result else { Issue.record("accepted \(name)"); continue }
            #expect(err.path == "id" && err.message.contains("reserved for events from the OpenADR VTN"))
        }
    }

    @Test func openADREventsSurviveARestart() {
        var e = engine()
        _ = e.replaceOpenADR(windows, nowMs: t0 - 60_000)
        var restored = engine()
        #expect(restored.restorePersistentState(e.persistentState).isEmpty)
        #expect(restored.events == e.events)
        #expect(restored.replaceOpenADR(windows, nowMs: t0 - 30_000).changed == false)
    }
}
