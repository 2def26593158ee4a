import Testing
@testable import GridletCore

/// An engine in New York with the SPEC's summer-peak programme configured.
func nyEngine(_ s: ControlSettings = settings(), schedules: [ScheduleConfig] = [summerPeak], seed: UInt64 = 42,
              at now: Int64 = utc("2027-05-30T12:00:00Z")) throws -> ControlEngine {
    var e = ControlEngine(settings: s, nowMs: now, seed: seed)
    e.sessionConnected(nowMs: now)
    e.configureSchedules(schedules, holidays: summerHolidays, zone: try zone("America/New_York"))
    return e
}

func ev(_ id: String, _ start: String, minutes: Int64, limit: Double, primacy: Int = 1, created: String = "2027-06-01T00:00:00Z",
        optOut: Bool = false) -> DispatchEvent {
    DispatchEvent(id: id, createdMs: utc(created), startMs: utc(start), durationMs: minutes * 60_000, limitW: limit, primacy: primacy,
                  optOutAllowed: optOut)
}

@Suite struct EngineScheduleTests {
    @Test func summerProgrammeDrivesTheTarget() throws {
        var e = try nyEngine()
        // Hour by hour over the season: the schedule is the source exactly in its 85 windows of 8 hours.
        var t = utc("2027-05-31T00:00:00Z")
        var hours = 0
        var days = Set<String>()
        while t < utc("2027-10-02T00:00:00Z") {
            let d = e.step(t)
            if d.source == "schedule:summer-peak" {
                hours += 1
                #expect(d.limitW == 0)
                #expect(d.activeSchedules == ["schedule:summer-peak"])
                days.insert(String(Timestamp.format(ms: t - 4 * 3_600_000).prefix(10)))
            } else {
                #expect(d.source == "default")
            }
            t += 3_600_000
        }
        #expect(hours == 85 * 8)
        #expect(days.count == 85)
        #expect(!days.contains("2027-06-18") && !days.contains("2027-07-05") && !days.contains("2027-09-06"))
        let d = e.step(utc("2027-06-01T16:00:00Z"))
        #expect(d.nextTransitionMs == utc("2027-06-01T17:00:00Z"))
    }

    @Test func scheduleEndIsRestoredWithoutSnapBack() throws {
        var e = try nyEngine(settings(delayMs: 10_000, ramp: 1000))
        #expect(e.step(utc("2027-06-01T20:59:00Z")).limitW == 0)
        let end = utc("2027-06-02T01:00:00Z")
        let d = e.step(end)
        #expect(d.source == "default")
        #expect(d.targetSource == "default")
        #expect(d.restoring)
        #expect(d.limitW == 0)
        #expect(e.step(end + 10_000).limitW == 0)
        #expect(e.step(end + 15_000).limitW == 5000)
    }

    @Test func dispatchBeatsScheduleInstantByInstant() throws {
        var e = try nyEngine(settings(delayMs: 0, ramp: 1_000_000))
        _ = e.handle(.event(ev("boost", "2027-06-01T18:00:00Z", minutes: 60, limit: 7000, primacy: 64)), nowMs: utc("2027-06-01T12:00:00Z"))
        #expect(e.step(utc("2027-06-01T17:30:00Z")).source == "schedule:summer-peak")
        let during = e.step(utc("2027-06-01T18:30:00Z"))
        #expect(during.source == "dispatch:boost")
        #expect(during.limitW == 7000)
        #expect(during.activeSchedules == ["schedule:summer-peak"])
        #expect(e.step(utc("2027-06-01T19:00:00Z")).source == "schedule:summer-peak")
    }

    @Test func schedulesApplyDuringCommLossOverFallback() throws {
        var e = try nyEngine()
        e.sessionDisconnected(nowMs: utc("2027-06-01T10:00:00Z"))
        #expect(e.step(utc("2027-06-01T16:00:00Z")).source == "fallback")
        let d = e.step(utc("2027-06-01T17:00:00Z"))
        #expect(d.source == "schedule:summer-peak")
        #expect(!d.commOK)
    }

    @Test func winterSeasonAndOvernightThroughEngine() throws {
        let night = ScheduleConfig(id: "night", limitW: 2000, from: "22:00", to: "06:00", seasonFrom: "11-01", seasonTo: "02-28",
                                   primacy: 150)
        var e = try nyEngine(settings(delayMs: 0, ramp: 1_000_000), schedules: [night], at: utc("2027-10-30T00:00:00Z"))
        // Oct 31 22:00 EDT is outside the season; Nov 1 22:00 EST... Nov 1 is still EDT (DST ends Nov 7).
        #expect(e.step(utc("2027-11-01T03:00:00Z")).source == "default")
        #expect(e.step(utc("2027-11-02T02:00:00Z")).source == "schedule:night") // Nov 1 22:00 EDT
        #expect(e.step(utc("2027-11-02T09:59:59Z")).source == "schedule:night") // Nov 2 05:59:59 EDT
        #expect(e.step(utc("2027-11-02T10:00:00Z")).source == "default")
        // The night of the DST end (Nov 6 22:00 EDT to Nov 7 06:00 EST) lasts 9 hours.
        #expect(e.step(utc("2027-11-07T02:00:00Z")).source == "schedule:night")
        #expect(e.step(utc("2027-11-07T10:59:59Z")).source == "schedule:night")
        #expect(e.step(utc("2027-11-07T11:00:00Z")).source == "default")
        // The last night of the season starts Feb 28 and runs into Feb 29 (2028 is a leap year).
        #expect(e.step(utc("2028-02-29T10:00:00Z")).source == "schedule:night")
        #expect(e.step(utc("2028-02-29T11:00:00Z")).source == "default")
        #expect(e.step(utc("2028-03-01T04:00:00Z")).source == "default") // Feb 29 22:00 EST: out of season
    }

    // MARK: precedence and supersede

    struct OverlapRow: Sendable, CustomTestStringConvertible {
        var name: String
        var events: [DispatchEvent]
        /// (instant, expected source)
        var expect: [(String, String)]
        var superseded: [String]
        var testDescription: String { name }
    }

    static let overlapRows: [OverlapRow] = [
        OverlapRow(name: "different primacy, partial overlap: the loser runs in the rest of its window",
                   events: [ev("a", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, primacy: 2),
                            ev("b", "2027-06-02T10:30:00Z", minutes: 60, limit: 3000, primacy: 1)],
                   expect: [("2027-06-02T10:10:00Z", "dispatch:a"), ("2027-06-02T10:30:00Z", "dispatch:b"),
                            ("2027-06-02T11:10:00Z", "dispatch:b"), ("2027-06-02T11:30:00Z", "default")],
                   superseded: []),
        OverlapRow(name: "different primacy, covered entirely: superseded",
                   events: [ev("a", "2027-06-02T10:15:00Z", minutes: 30, limit: 5000, primacy: 2),
                            ev("b", "2027-06-02T10:00:00Z", minutes: 60, limit: 3000, primacy: 1)],
                   expect: [("2027-06-02T10:20:00Z", "dispatch:b")], superseded: ["a"]),
        OverlapRow(name: "lower primacy number wins even with a higher limit",
                   events: [ev("a", "2027-06-02T10:15:00Z", minutes: 30, limit: 500, primacy: 10),
                            ev("b", "2027-06-02T10:00:00Z", minutes: 60, limit: 9000, primacy: 0)],
                   expect: [("2027-06-02T10:20:00Z", "dispatch:b")], superseded: ["a"]),
        OverlapRow(name: "equal primacy: the later created wins; the earlier, covered, is superseded",
                   events: [ev("old", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, created: "2027-06-01T00:00:00Z"),
                            ev("new", "2027-06-02T09:00:00Z", minutes: 180, limit: 6000, created: "2027-06-01T01:00:00Z")],
                   expect: [("2027-06-02T10:30:00Z", "dispatch:new")], superseded: ["old"]),
        OverlapRow(name: "equal primacy: the later created covers only part: both run",
                   events: [ev("old", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, created: "2027-06-01T00:00:00Z"),
                            ev("new", "2027-06-02T10:30:00Z", minutes: 60, limit: 6000, created: "2027-06-01T01:00:00Z")],
                   expect: [("2027-06-02T10:15:00Z", "dispatch:old"), ("2027-06-02T10:45:00Z", "dispatch:new")],
                   superseded: []),
        OverlapRow(name: "equal primacy and created: the larger id wins",
                   events: [ev("evt-a", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000),
                            ev("evt-b", "2027-06-02T10:00:00Z", minutes: 60, limit: 6000)],
                   expect: [("2027-06-02T10:15:00Z", "dispatch:evt-b")], superseded: ["evt-a"]),
        OverlapRow(name: "covered by the union of two winners: superseded",
                   events: [ev("x", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, primacy: 5),
                            ev("y", "2027-06-02T09:30:00Z", minutes: 60, limit: 1000, primacy: 1),
                            ev("z", "2027-06-02T10:30:00Z", minutes: 60, limit: 2000, primacy: 3)],
                   expect: [("2027-06-02T10:00:00Z", "dispatch:y"), ("2027-06-02T10:45:00Z", "dispatch:z")],
                   superseded: ["x"]),
        OverlapRow(name: "a one-minute hole between the winners: not superseded, runs in the hole",
                   events: [ev("x", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, primacy: 5),
                            ev("y", "2027-06-02T09:30:00Z", minutes: 60, limit: 1000, primacy: 1),
                            ev("z", "2027-06-02T10:31:00Z", minutes: 60, limit: 2000, primacy: 3)],
                   expect: [("2027-06-02T10:30:00Z", "dispatch:x"), ("2027-06-02T10:31:00Z", "dispatch:z")],
                   superseded: []),
        OverlapRow(name: "no overlap: nothing superseded",
                   events: [ev("p", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, primacy: 5),
                            ev("q", "2027-06-02T11:00:00Z", minutes: 60, limit: 1000, primacy: 1)],
                   expect: [("2027-06-02T10:59:59Z", "dispatch:p"), ("2027-06-02T11:00:00Z", "dispatch:q")],
                   superseded: []),
    ]

    @Test(arguments: overlapRows)
    func overlappingEvents(row: OverlapRow) throws {
        for order in [row.events, row.events.reversed()] {
            var e = try nyEngine(settings(delayMs: 0, ramp: 1_000_000), schedules: [])
            var responses: [EventResponse] = []
            for x in order { responses += e.handle(.event(x), nowMs: utc("2027-06-02T08:00:00Z")).responses }
            let sup = responses.filter { $0.status == .superseded }.map(\.event)
            #expect(sup.sorted() == row.superseded.sorted(), "order \(order.map(\.id))")
            #expect(responses.filter { $0.status == .received }.count == row.events.count)
            var lifecycle = e
            for (at, source) in row.expect { #expect(e.step(utc(at)).source == source, "at \(at)") }
            // A superseded event never starts and never completes.
            var later: [EventResponse] = []
            var t = utc("2027-06-02T08:00:00Z")
            while t <= utc("2027-06-02T13:00:00Z") { later += lifecycle.advance(nowMs: t).responses; t += 60_000 }
            for id in row.superseded { #expect(!later.contains { $0.event == id }, "\(id) reported after supersede") }
            for x in row.events where !row.superseded.contains(x.id) {
                #expect(later.filter { $0.event == x.id }.map(\.status) == [.started, .completed])
            }
        }
    }

    @Test func runningEventCoveredByANewOneIsSupersededThen() throws {
        var e = try nyEngine(schedules: [])
        _ = e.handle(.event(ev("a", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, primacy: 5)), nowMs: utc("2027-06-02T09:00:00Z"))
        #expect(e.advance(nowMs: utc("2027-06-02T10:00:00Z")).responses.map(\.status) == [.started])
        let r = e.handle(.event(ev("b", "2027-06-02T10:20:00Z", minutes: 60, limit: 1000, primacy: 1)), nowMs: utc("2027-06-02T10:20:00Z"))
        #expect(r.responses.map(\.status) == [.received, .superseded])
        #expect(r.responses.last?.event == "a")
        // Not superseded while some of its remaining window still wins.
        var f = try nyEngine(schedules: [])
        _ = f.handle(.event(ev("a", "2027-06-02T10:00:00Z", minutes: 60, limit: 5000, primacy: 5)), nowMs: utc("2027-06-02T09:00:00Z"))
        let r2 = f.handle(.event(ev("b", "2027-06-02T10:20:00Z", minutes: 30, limit: 1000, primacy: 1)), nowMs: utc("2027-06-02T10:20:00Z"))
        #expect(r2.responses.map(\.status) == [.received])
    }

    @Test func schedulesDoNotSupersedeEvents() throws {
        var e = try nyEngine()
        let r = e.handle(.event(ev("x", "2027-06-01T18:00:00Z", minutes: 60, limit: 5000, primacy: 64)), nowMs: utc("2027-06-01T12:00:00Z"))
        #expect(r.responses.map(\.status) == [.received])
    }

    @Test func eventAfterItsEndIsRejectedExpired() throws {
        var e = try nyEngine(schedules: [])
        let r = e.handle(.event(ev("late", "2027-06-02T10:00:00Z", minutes: 30, limit: 0)), nowMs: utc("2027-06-02T10:30:00Z"))
        #expect(r.error == nil)
        #expect(r.responses.map(\.status) == [.rejectedExpired])
        #expect(r.responses.first?.status.rawValue == 254)
        #expect(e.events.isEmpty)
    }

    // MARK: opt-out

    @Test func optOutOfEventWithoutPermissionIsRefused() throws {
        var e = try nyEngine(schedules: [])
        _ = e.handle(.event(ev("firm", "2027-06-02T10:00:00Z", minutes: 60, limit: 0)), nowMs: utc("2027-06-02T09:00:00Z"))
        let r = e.handle(.optOut(id: "firm"), nowMs: utc("2027-06-02T10:05:00Z"))
        #expect(r.error == CommandError(code: "not_allowed", message: "event 'firm' does not allow opt-out (opt_out: false)", path: "id"))
        #expect(r.responses.isEmpty)
        #expect(e.step(utc("2027-06-02T10:06:00Z")).source == "dispatch:firm")
    }

    @Test func optOutOfScheduleEndsOnlyThatOccurrence() throws {
        var e = try nyEngine(settings(delayMs: 0, ramp: 1_000_000))
        // Before the window: the opt-out takes the next occurrence (June 1).
        let r = e.handle(.optOut(id: "summer-peak"), nowMs: utc("2027-06-01T12:00:00Z"))
        #expect(r.error == nil)
        #expect(r.changed)
        #expect(r.responses == [EventResponse(event: "schedule:summer-peak@2027-06-01T17:00:00.000Z", status: .optedOut,
                                              atMs: utc("2027-06-01T12:00:00Z"), effectiveStartMs: utc("2027-06-01T17:00:00Z"))])
        #expect(e.step(utc("2027-06-01T18:00:00Z")).source == "default")
        // Redelivery is idempotent.
        let again = e.handle(.optOut(id: "summer-peak"), nowMs: utc("2027-06-01T18:00:00Z"))
        #expect(again.error == nil && again.responses.isEmpty && !again.changed)
        #expect(e.step(utc("2027-06-02T17:00:00Z")).source == "schedule:summer-peak")
        // During a window: that window ends now, the next one still applies.
        let now = utc("2027-06-02T19:00:00Z")
        let r2 = e.handle(.optOut(id: "summer-peak"), nowMs: now)
        #expect(r2.responses.map(\.event) == ["schedule:summer-peak@2027-06-02T17:00:00.000Z"])
        #expect(e.step(now).source == "default")
        #expect(e.step(utc("2027-06-03T17:00:00Z")).source == "schedule:summer-peak")
        // Expired opt-outs are pruned (and that is a state change to persist).
        #expect(e.scheduleOptOuts.isEmpty)
    }

    @Test func optOutOfFirmScheduleIsRefused() throws {
        let firm = ScheduleConfig(id: "firm", limitW: 0, from: "13:00", to: "21:00", optOut: false)
        var e = try nyEngine(schedules: [firm])
        let r = e.handle(.optOut(id: "firm"), nowMs: utc("2027-06-01T18:00:00Z"))
        #expect(r.error?.code == "not_allowed")
        #expect(r.error?.message == "schedule 'firm' does not allow opt-out (opt_out: false)")
        #expect(e.handle(.optOut(id: "nothing"), nowMs: utc("2027-06-01T18:00:00Z")).error?.code == "not_found")
    }

    // MARK: cmd/schedules

    @Test func remoteSchedulesAreVersionedAndReplaceTheRemoteSet() throws {
        var e = try nyEngine()
        let cmd = CommandParser.parse(name: "schedules", payload: Array(#"""
            {"version":3,"schedules":[{"id":"evening","limit_w":2500,"days":["sat","sun"],"from":"17:00","to":"20:00","primacy":80,
              "except":"family"}],"holidays":{"family":["2027-06-05"]}}
            """#.utf8), nowMs: 0)
        let c = try cmd.result.get()
        #expect(e.handle(c, nowMs: utc("2027-06-01T00:00:00Z")).changed)
        #expect(e.schedulesVersion == 3)
        #expect(e.step(utc("2027-06-05T22:00:00Z")).source == "default") // Sat June 5 is a listed holiday
        #expect(e.step(utc("2027-06-06T22:00:00Z")).source == "schedule:evening")
        // The config schedule stays.
        #expect(e.step(utc("2027-06-07T18:00:00Z")).source == "schedule:summer-peak")
        // Older or equal versions are ignored.
        let old = Command.schedules(version: 3, schedules: [], holidays: [:])
        #expect(!e.handle(old, nowMs: utc("2027-06-01T00:00:00Z")).changed)
        #expect(e.step(utc("2027-06-06T22:00:00Z")).source == "schedule:evening")
        // A newer version replaces the remote set (here: empty) and may override a config id.
        let override = ScheduleConfig(id: "summer-peak", limitW: 4000, days: [.mon], from: "14:00", to: "15:00")
        #expect(e.handle(.schedules(version: 4, schedules: [override], holidays: [:]), nowMs: utc("2027-06-01T00:00:00Z")).changed)
        #expect(e.step(utc("2027-06-06T22:00:00Z")).source == "default")
        #expect(e.step(utc("2027-06-07T17:00:00Z")).source == "default")
        let d = e.step(utc("2027-06-07T18:30:00Z"))
        #expect(d.source == "schedule:summer-peak")
        #expect(d.limitW == 4000)
        // An unknown holiday list is refused with its path (config lists count).
        let bad = ScheduleConfig(id: "x", limitW: 0, from: "10:00", to: "11:00", except: "nope")
        let r = e.handle(.schedules(version: 5, schedules: [bad], holidays: [:]), nowMs: 0)
        #expect(r.error?.path == "schedules[0].except")
        #expect(e.schedulesVersion == 4)
        let ok = ScheduleConfig(id: "x", limitW: 0, from: "10:00", to: "11:00", except: "holidays")
        #expect(e.handle(.schedules(version: 5, schedules: [ok], holidays: [:]), nowMs: 0).error == nil)
    }

    struct BadSchedule: Sendable, CustomTestStringConvertible {
        var json: String, code: String, path: String
        var testDescription: String { json }
    }

    @Test(arguments: [
        BadSchedule(json: #"{"schedules":[]}"#, code: "missing_field", path: "version"),
        BadSchedule(json: #"{"version":1}"#, code: "missing_field", path: "schedules"),
        BadSchedule(json: #"{"version":1,"schedules":[],"x":1}"#, code: "unknown_field", path: "x"),
        BadSchedule(json: #"{"version":1,"schedules":[{"limit_w":0,"from":"10:00","to":"11:00"}]}"#, code: "missing_field", path: "schedules[0].id"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a b","limit_w":0,"from":"10:00","to":"11:00"}]}"#, code: "invalid", path: "schedules[0].id"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":-1,"from":"10:00","to":"11:00"}]}"#, code: "invalid", path: "schedules[0].limit_w"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"24:00","to":"11:00"}]}"#, code: "invalid", path: "schedules[0].from"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:60"}]}"#, code: "invalid", path: "schedules[0].to"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00"}]}"#, code: "missing_field", path: "schedules[0].to"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","days":[]}]}"#, code: "invalid", path: "schedules[0].days"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","days":["mon","mon"]}]}"#, code: "invalid", path: "schedules[0].days[1]"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","days":["monday"]}]}"#, code: "invalid", path: "schedules[0].days[0]"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","season":{"from":"02-30","to":"03-01"}}]}"#, code: "invalid", path: "schedules[0].season.from"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","season":{"from":"02-01"}}]}"#, code: "missing_field", path: "schedules[0].season.to"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","season":{"from":"02-01","to":"03-01","x":1}}]}"#, code: "unknown_field", path: "schedules[0].season.x"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","primacy":64}]}"#, code: "invalid", path: "schedules[0].primacy"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","opt_out":"yes"}]}"#, code: "invalid", path: "schedules[0].opt_out"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00","color":"red"}]}"#, code: "unknown_field", path: "schedules[0].color"),
        BadSchedule(json: #"{"version":1,"schedules":[{"id":"a","limit_w":0,"from":"10:00","to":"11:00"},{"id":"a","limit_w":0,"from":"10:00","to":"11:00"}]}"#, code: "invalid", path: "schedules[1].id"),
        BadSchedule(json: #"{"version":1,"schedules":[],"holidays":{"h":["2027-02-29"]}}"#, code: "invalid", path: "holidays.h[0]"),
    ])
    func schedulesCommandValidation(row: BadSchedule) {
        let p = CommandParser.parse(name: "schedules", payload: Array(row.json.utf8), nowMs: 0)
        guard case let .failure(err) = p.result else { Issue.record("accepted \(row.json)"); return }
        #expect(err.code == row.code)
        #expect(err.path == row.path)
    }

    @Test func schedulesCommandDefaultsMatchTheConfig() throws {
        let p = CommandParser.parse(name: "schedules", payload: Array(#"{"version":7,"schedules":[{"id":"s","limit_w":100,"from":"22:00","to":"06:00"}]}"#.utf8), nowMs: 0)
        #expect(try p.result.get() == .schedules(version: 7, schedules: [ScheduleConfig(id: "s", limitW: 100, from: "22:00", to: "06:00")],
                                                holidays: [:]))
        #expect(Command.schedules(version: 1, schedules: [], holidays: [:]).name == "schedules")
    }

    // MARK: clock trust

    @Test func unsyncedClockBeforeBuildDateActivatesRestrictingSchedules() throws {
        let generous = ScheduleConfig(id: "generous", limitW: 50_000, from: "01:00", to: "02:00", primacy: 70)
        var s = settings(defaultLimitW: 11_000)
        s.buildDateMs = utc("2027-01-01T00:00:00Z")
        var e = try nyEngine(s, schedules: [summerPeak, generous], at: utc("2026-03-01T00:00:00Z"))
        let at = utc("2026-03-01T09:00:00Z") // a Sunday morning in March, outside every window
        let untrusted = e.step(at, ControlInputs(hardwareMaxW: hw, clockSynced: false))
        #expect(!untrusted.clockSynced)
        #expect(!untrusted.clockTrusted)
        #expect(untrusted.source == "schedule:summer-peak")
        #expect(untrusted.limitW == 0)
        #expect(untrusted.activeSchedules == ["schedule:summer-peak"]) // the generous one does not restrict
        #expect(untrusted.nextTransitionMs != nil)
        // Synchronised: the calendar decides.
        let trusted = e.step(at + 1000, ControlInputs(hardwareMaxW: hw, clockSynced: true))
        #expect(trusted.clockTrusted)
        #expect(trusted.source == "default")
        // Unsynchronised but after the build date: trusted.
        var f = try nyEngine(s, schedules: [summerPeak])
        let late = f.step(utc("2027-03-07T09:00:00Z"), ControlInputs(hardwareMaxW: hw, clockSynced: false))
        #expect(late.clockTrusted)
        #expect(!late.clockSynced)
        #expect(late.source == "default")
    }

    // MARK: planned transitions (gridlet schedule --next)

    @Test func plannedTransitionsMergeEventsAndSchedules() throws {
        var e = try nyEngine(schedules: [summerPeak])
        _ = e.handle(.event(ev("boost", "2027-06-01T18:00:00Z", minutes: 60, limit: 7000)), nowMs: utc("2027-06-01T12:00:00Z"))
        let p = e.plannedTransitions(fromMs: utc("2027-06-01T12:00:00Z"), limit: 5, defaultW: hw)
        #expect(p.map { "\(Timestamp.format(ms: $0.atMs)) \($0.source) \(JSONValue.format($0.limitW))" } == [
            "2027-06-01T17:00:00.000Z schedule:summer-peak 0",
            "2027-06-01T18:00:00.000Z dispatch:boost 7000",
            "2027-06-01T19:00:00.000Z schedule:summer-peak 0",
            "2027-06-02T01:00:00.000Z default 22080",
            "2027-06-02T17:00:00.000Z schedule:summer-peak 0",
        ])
    }

    // MARK: persistence

    @Test func persistentStateRoundTripsSchedulesOptOutsAndRestore() throws {
        var e = try nyEngine(settings(delayMs: 60_000, randomMs: 30_000, ramp: 100), seed: 5)
        _ = e.handle(.schedules(version: 8, schedules: [ScheduleConfig(id: "eve", limitW: 1500, days: [.sun], from: "17:00", to: "20:00",
                                                                       except: "fam", optOut: true, primacy: 90)],
                                holidays: ["fam": ["2027-06-13"]]), nowMs: utc("2027-06-01T12:00:00Z"))
        _ = e.handle(.event(ev("o", "2027-06-01T10:00:00Z", minutes: 600, limit: 3000, primacy: 9, optOut: true)), nowMs: utc("2027-06-01T12:00:00Z"))
        _ = e.handle(.event(ev("s", "2027-06-01T13:00:00Z", minutes: 10, limit: 3000, primacy: 10)), nowMs: utc("2027-06-01T12:00:00Z"))
        _ = e.handle(.optOut(id: "o"), nowMs: utc("2027-06-01T12:00:01Z"))
        _ = e.handle(.optOut(id: "eve"), nowMs: utc("2027-06-01T12:00:02Z"))
        #expect(e.events.map(\.id) == ["o", "s"])
        #expect(e.events.map(\.optedOut) == [true, false])
        // A restore in progress: the schedule window (0 W) of June 2 ends at 01:00Z.
        #expect(e.step(utc("2027-06-02T17:30:00Z")).limitW == 0)
        let d = e.step(utc("2027-06-03T01:00:00Z"))
        #expect(d.restoring)

        for state in [e.persistentState, try JSONValue.parse(e.persistentState.serialized)] {
            var r = try nyEngine(settings(delayMs: 60_000, randomMs: 30_000, ramp: 100), seed: 999)
            r.restorePersistentState(state)
            #expect(r.persistentState == e.persistentState)
            #expect(r.schedulesVersion == 8)
            #expect(r.remoteSchedules == e.remoteSchedules)
            #expect(r.remoteHolidays == ["fam": ["2027-06-13"]])
            #expect(r.scheduleOptOuts.map(\.startMs) == [utc("2027-06-06T21:00:00Z")])
            #expect(r.events == e.events)
            // The restore continues where it was: no snap-back across a restart.
            var a = e, b = r
            for t in stride(from: utc("2027-06-03T01:00:01Z"), through: utc("2027-06-03T01:05:00Z"), by: 7000) {
                #expect(a.step(t) == b.step(t))
            }
        }
    }
}
