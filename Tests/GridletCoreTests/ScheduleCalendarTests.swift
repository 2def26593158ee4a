import Testing
@testable import GridletCore

let summerHolidays = ["holidays": ["2027-05-31", "2027-06-18", "2027-07-05", "2027-09-06"]]
let summerPeak = ScheduleConfig(id: "summer-peak", limitW: 0, days: [.mon, .tue, .wed, .thu, .fri], from: "13:00", to: "21:00",
                                seasonFrom: "06-01", seasonTo: "09-30", except: "holidays", optOut: true, primacy: 100)

func calendar(_ s: [ScheduleConfig], zone name: String = "America/New_York",
              holidays: [String: [String]] = summerHolidays) throws -> ScheduleCalendar {
    ScheduleCalendar(schedules: s, holidays: holidays, zone: try zone(name))
}

@Suite struct ScheduleCalendarTests {
    /// The weekdays of June 1 to September 30, 2027 except June 18, July 5 and September 6 (computed independently).
    static let summerDays = [
        "06-01", "06-02", "06-03", "06-04", "06-07", "06-08", "06-09", "06-10", "06-11", "06-14", "06-15", "06-16", "06-17",
        "06-21", "06-22", "06-23", "06-24", "06-25", "06-28", "06-29", "06-30", "07-01", "07-02", "07-06", "07-07", "07-08",
        "07-09", "07-12", "07-13", "07-14", "07-15", "07-16", "07-19", "07-20", "07-21", "07-22", "07-23", "07-26", "07-27",
        "07-28", "07-29", "07-30", "08-02", "08-03", "08-04", "08-05", "08-06", "08-09", "08-10", "08-11", "08-12", "08-13",
        "08-16", "08-17", "08-18", "08-19", "08-20", "08-23", "08-24", "08-25", "08-26", "08-27", "08-30", "08-31", "09-01",
        "09-02", "09-03", "09-07", "09-08", "09-09", "09-10", "09-13", "09-14", "09-15", "09-16", "09-17", "09-20", "09-21",
        "09-22", "09-23", "09-24", "09-27", "09-28", "09-29", "09-30",
    ]

    @Test func fullSummerProgramme() throws {
        let cal = try calendar([summerPeak])
        let windows = cal.windows(fromUTC: utc("2027-05-01T00:00:00Z"), toUTC: utc("2027-11-01T00:00:00Z"))
        #expect(windows.count == 85)
        // EDT (UTC-4) all summer: 13:00-21:00 local = 17:00Z-01:00Z the next day.
        let expected = Self.summerDays.map { d in
            let start = utc("2027-\(d)T17:00:00Z")
            return ScheduleWindow(scheduleID: "summer-peak", startMs: start, endMs: start + 8 * 3_600_000, limitW: 0,
                                  primacy: 100, optOutAllowed: true)
        }
        #expect(windows == expected)

        // Every 5 minutes over the whole season (all boundaries are whole hours), activeWindows agrees with the list (boundaries exact).
        var t = utc("2027-05-31T00:00:00Z")
        let end = utc("2027-10-01T06:00:00Z")
        var activeMinutes = 0
        var wrong = 0
        while t < end {
            let a = cal.activeWindows(atUTC: t)
            let inList = expected.contains { $0.contains(t) }
            if a.isEmpty == inList { wrong += 1 }
            if !a.isEmpty { activeMinutes += 1 }
            t += 300_000
        }
        #expect(wrong == 0)
        #expect(activeMinutes == 85 * 8 * 12)
        #expect(cal.activeWindows(atUTC: utc("2027-06-01T16:59:59.999Z")).isEmpty)
        #expect(cal.activeWindows(atUTC: utc("2027-06-01T17:00:00Z")).map(\.scheduleID) == ["summer-peak"])
        #expect(cal.activeWindows(atUTC: utc("2027-06-02T00:59:59.999Z")).count == 1)
        #expect(cal.activeWindows(atUTC: utc("2027-06-02T01:00:00Z")).isEmpty)
        #expect(cal.activeWindows(atUTC: utc("2027-06-18T18:00:00Z")).isEmpty) // holiday (Friday)
        #expect(cal.activeWindows(atUTC: utc("2027-06-19T18:00:00Z")).isEmpty) // Saturday
    }

    @Test func transitionsListTheNextBoundaries() throws {
        let cal = try calendar([summerPeak])
        let next = cal.transitions(fromUTC: utc("2027-06-17T18:00:00Z"), limit: 3)
        #expect(next.map { Timestamp.format(ms: $0.atMs) } == [
            "2027-06-18T01:00:00.000Z", "2027-06-21T17:00:00.000Z", "2027-06-22T01:00:00.000Z",
        ])
        #expect(next.map(\.kind) == [.end, .start, .end])
        // From the end of the season, the next start is next June.
        #expect(cal.nextTransition(afterUTC: utc("2027-10-01T02:00:00Z")) == utc("2028-06-01T17:00:00Z"))
        #expect(cal.currentOrNext(scheduleID: "summer-peak", atUTC: utc("2027-06-18T18:00:00Z"))?.startMs == utc("2027-06-21T17:00:00Z"))
        #expect(cal.currentOrNext(scheduleID: "summer-peak", atUTC: utc("2027-06-21T20:00:00Z"))?.startMs == utc("2027-06-21T17:00:00Z"))
        #expect(cal.currentOrNext(scheduleID: "nope", atUTC: 0) == nil)
    }

    /// A daily window that is running now is the one an opt-out ends (found by the end-to-end
    /// test: earlier days' windows used to hide it).
    @Test func currentOrNextFindsTheRunningWindowOfADailySchedule() throws {
        let daily = ScheduleConfig(id: "daily", limitW: 0, from: "13:00", to: "21:00", optOut: true)
        let cal = try calendar([daily], zone: "UTC")
        #expect(cal.currentOrNext(scheduleID: "daily", atUTC: utc("2027-06-21T14:00:00Z"))?.startMs == utc("2027-06-21T13:00:00Z"))
        #expect(cal.currentOrNext(scheduleID: "daily", atUTC: utc("2027-06-21T22:00:00Z"))?.startMs == utc("2027-06-22T13:00:00Z"))
        let overnight = ScheduleConfig(id: "night", limitW: 0, from: "22:00", to: "06:00")
        let cal2 = try calendar([overnight], zone: "UTC")
        #expect(cal2.currentOrNext(scheduleID: "night", atUTC: utc("2027-06-22T03:00:00Z"))?.startMs == utc("2027-06-21T22:00:00Z"))
    }

    struct DSTRow: Sendable, CustomTestStringConvertible {
        var name: String, zone: String, from: String, to: String, day: String, start: String, end: String
        var testDescription: String { name }
    }

    @Test(arguments: [
        // 13:00-21:00 on both sides of a change is 13:00-21:00 local (8 h), with the offset of the day.
        DSTRow(name: "NY before spring", zone: "America/New_York", from: "13:00", to: "21:00", day: "2027-03-13",
               start: "2027-03-13T18:00:00.000Z", end: "2027-03-14T02:00:00.000Z"),
        DSTRow(name: "NY spring day", zone: "America/New_York", from: "13:00", to: "21:00", day: "2027-03-14",
               start: "2027-03-14T17:00:00.000Z", end: "2027-03-15T01:00:00.000Z"),
        DSTRow(name: "NY autumn day", zone: "America/New_York", from: "13:00", to: "21:00", day: "2027-11-07",
               start: "2027-11-07T18:00:00.000Z", end: "2027-11-08T02:00:00.000Z"),
        DSTRow(name: "NY day before autumn", zone: "America/New_York", from: "13:00", to: "21:00", day: "2027-11-06",
               start: "2027-11-06T17:00:00.000Z", end: "2027-11-07T01:00:00.000Z"),
        // Windows containing the change: 7 h in spring, 9 h in autumn.
        DSTRow(name: "NY overnight across spring (7 h)", zone: "America/New_York", from: "22:00", to: "06:00", day: "2027-03-13",
               start: "2027-03-14T03:00:00.000Z", end: "2027-03-14T10:00:00.000Z"),
        DSTRow(name: "NY overnight across autumn (9 h)", zone: "America/New_York", from: "22:00", to: "06:00", day: "2027-11-06",
               start: "2027-11-07T02:00:00.000Z", end: "2027-11-07T11:00:00.000Z"),
        DSTRow(name: "NY start in the gap maps forward", zone: "America/New_York", from: "02:30", to: "05:00", day: "2027-03-14",
               start: "2027-03-14T07:30:00.000Z", end: "2027-03-14T09:00:00.000Z"),
        DSTRow(name: "NY start in the overlap takes the first", zone: "America/New_York", from: "01:30", to: "03:00", day: "2027-11-07",
               start: "2027-11-07T05:30:00.000Z", end: "2027-11-07T08:00:00.000Z"),
        DSTRow(name: "Sydney autumn (April) 9 h overnight", zone: "Australia/Sydney", from: "22:00", to: "06:00", day: "2027-04-03",
               start: "2027-04-03T11:00:00.000Z", end: "2027-04-03T20:00:00.000Z"),
        DSTRow(name: "Sydney summer evening", zone: "Australia/Sydney", from: "17:00", to: "20:00", day: "2027-01-11",
               start: "2027-01-11T06:00:00.000Z", end: "2027-01-11T09:00:00.000Z"),
        DSTRow(name: "Berlin to 24:00", zone: "Europe/Berlin", from: "18:00", to: "24:00", day: "2027-07-01",
               start: "2027-07-01T16:00:00.000Z", end: "2027-07-01T22:00:00.000Z"),
        DSTRow(name: "from == to is a full day", zone: "Europe/Berlin", from: "06:00", to: "06:00", day: "2027-10-30",
               start: "2027-10-30T04:00:00.000Z", end: "2027-10-31T05:00:00.000Z"),
        DSTRow(name: "UTC across midnight", zone: "UTC", from: "22:00", to: "06:00", day: "2027-03-13",
               start: "2027-03-13T22:00:00.000Z", end: "2027-03-14T06:00:00.000Z"),
    ])
    func windowsAcrossDST(row: DSTRow) throws {
        let s = ScheduleConfig(id: "w", limitW: 1000, from: row.from, to: row.to)
        let cal = try calendar([s], zone: row.zone)
        let day = try #require(CalendarText.epochDay(row.day))
        let w = try #require(cal.occurrence(of: cal.schedules[0], onLocalDay: day))
        #expect(Timestamp.format(ms: w.startMs) == row.start)
        #expect(Timestamp.format(ms: w.endMs) == row.end)
        // And the window list finds it as the occurrence of that day.
        #expect(cal.windows(fromUTC: w.startMs, toUTC: w.startMs + 1).contains(w))
    }

    @Test func overnightWindowBelongsToItsStartDay() throws {
        // Fridays only, 22:00-06:00: active Friday night into Saturday morning, not Thursday night.
        let s = ScheduleConfig(id: "night", limitW: 2000, days: [.fri], from: "22:00", to: "06:00")
        let cal = try calendar([s], zone: "Europe/Berlin")
        #expect(cal.activeWindows(atUTC: utc("2027-07-02T03:00:00Z")).isEmpty)  // Fri 05:00: Thursday is not listed
        #expect(cal.activeWindows(atUTC: utc("2027-07-02T19:59:59Z")).isEmpty)  // Fri 21:59:59
        #expect(cal.activeWindows(atUTC: utc("2027-07-02T20:00:00Z")).count == 1) // Fri 22:00
        #expect(cal.activeWindows(atUTC: utc("2027-07-03T03:59:59Z")).count == 1) // Sat 05:59:59
        #expect(cal.activeWindows(atUTC: utc("2027-07-03T04:00:00Z")).isEmpty)  // Sat 06:00
        let all = cal.windows(fromUTC: utc("2027-07-01T00:00:00Z"), toUTC: utc("2027-08-01T00:00:00Z"))
        #expect(all.count == 5) // Fridays of July 2027: 2, 9, 16, 23, 30
        #expect(all.allSatisfy { $0.endMs - $0.startMs == 8 * 3_600_000 })
        // A holiday on the Friday removes the window that starts then, not the next morning's part of Thursday's.
        let h = ScheduleConfig(id: "night", limitW: 2000, days: [.thu, .fri], from: "22:00", to: "06:00", except: "h")
        let cal2 = try calendar([h], zone: "Europe/Berlin", holidays: ["h": ["2027-07-02"]])
        #expect(cal2.activeWindows(atUTC: utc("2027-07-02T03:00:00Z")).count == 1) // Thu night into the Friday holiday
        #expect(cal2.activeWindows(atUTC: utc("2027-07-02T21:00:00Z")).isEmpty)   // Fri night: excluded
    }

    struct SeasonRow: Sendable, CustomTestStringConvertible {
        var from: String, to: String, day: String, active: Bool
        var testDescription: String { "\(from)..\(to) \(day) \(active)" }
    }

    @Test(arguments: [
        SeasonRow(from: "11-01", to: "02-28", day: "2027-10-31", active: false),
        SeasonRow(from: "11-01", to: "02-28", day: "2027-11-01", active: true),
        SeasonRow(from: "11-01", to: "02-28", day: "2027-12-31", active: true),
        SeasonRow(from: "11-01", to: "02-28", day: "2028-01-01", active: true),
        SeasonRow(from: "11-01", to: "02-28", day: "2028-02-28", active: true),
        SeasonRow(from: "11-01", to: "02-28", day: "2028-02-29", active: false), // leap day is after 02-28
        SeasonRow(from: "11-01", to: "02-28", day: "2028-03-01", active: false),
        SeasonRow(from: "11-01", to: "02-28", day: "2027-07-01", active: false),
        SeasonRow(from: "11-01", to: "02-29", day: "2028-02-29", active: true),
        SeasonRow(from: "11-01", to: "02-29", day: "2027-02-28", active: true),
        SeasonRow(from: "11-01", to: "02-29", day: "2027-03-01", active: false),
        SeasonRow(from: "02-29", to: "03-31", day: "2027-02-28", active: false),
        SeasonRow(from: "02-29", to: "03-31", day: "2027-03-01", active: true),
        SeasonRow(from: "06-01", to: "09-30", day: "2027-05-31", active: false),
        SeasonRow(from: "06-01", to: "09-30", day: "2027-09-30", active: true),
        SeasonRow(from: "06-01", to: "06-01", day: "2027-06-01", active: true),
        SeasonRow(from: "06-01", to: "06-01", day: "2027-06-02", active: false),
    ])
    func seasons(row: SeasonRow) throws {
        let s = ScheduleConfig(id: "winter", limitW: 3000, from: "17:00", to: "20:00", seasonFrom: row.from, seasonTo: row.to)
        let cal = try calendar([s], zone: "Europe/Berlin")
        let day = try #require(CalendarText.epochDay(row.day))
        #expect((cal.occurrence(of: cal.schedules[0], onLocalDay: day) != nil) == row.active)
    }

    @Test func winterSeasonCountsDays() throws {
        let s = ScheduleConfig(id: "winter", limitW: 3000, from: "17:00", to: "20:00", seasonFrom: "11-01", seasonTo: "02-28")
        let cal = try calendar([s], zone: "Europe/Berlin")
        let w = cal.windows(fromUTC: utc("2027-07-01T00:00:00Z"), toUTC: utc("2028-07-01T00:00:00Z"))
        #expect(w.count == 30 + 31 + 31 + 28) // Nov, Dec, Jan, Feb 1-28 (2028 is a leap year: the 29th is out)
        #expect(Timestamp.format(ms: w.first!.startMs) == "2027-11-01T16:00:00.000Z")
        #expect(Timestamp.format(ms: w.last!.startMs) == "2028-02-28T16:00:00.000Z")
    }

    @Test func precedenceAmongSchedules() throws {
        let a = ScheduleConfig(id: "a", limitW: 5000, from: "10:00", to: "14:00", primacy: 120)
        let b = ScheduleConfig(id: "b", limitW: 7000, from: "12:00", to: "16:00", primacy: 90)
        let c = ScheduleConfig(id: "c", limitW: 4000, from: "12:00", to: "13:00", primacy: 90)
        let cal = try calendar([a, b, c], zone: "UTC")
        #expect(cal.activeWindows(atUTC: utc("2027-07-01T11:00:00Z")).map(\.scheduleID) == ["a"])
        #expect(cal.activeWindows(atUTC: utc("2027-07-01T12:30:00Z")).map(\.scheduleID) == ["c", "b", "a"])
        #expect(cal.activeWindows(atUTC: utc("2027-07-01T13:30:00Z")).map(\.scheduleID) == ["b", "a"])
    }
}
