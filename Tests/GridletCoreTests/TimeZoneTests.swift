import Glibc
import Testing
@testable import GridletCore

/// Reads a file of the system tz database (tests only; the agent has its own loader).
func zoneBytes(_ name: String) -> [UInt8]? {
    guard let f = fopen("/usr/share/zoneinfo/\(name)", "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

func zone(_ name: String) throws -> TimeZoneRules {
    let bytes = try #require(zoneBytes(name), "no /usr/share/zoneinfo/\(name)")
    return try TimeZoneRules(name: name, tzif: bytes)
}

func utc(_ s: String) -> Int64 { Timestamp.parse(s)! }

@Suite struct TimeZoneTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var zone: String, at: String, offsetS: Int
        var testDescription: String { "\(zone) \(at) \(offsetS)" }
    }

    // Transitions checked against Python's zoneinfo; 2045 lies beyond the file's table (footer rules).
    @Test(arguments: [
        Row(zone: "America/New_York", at: "2027-03-14T06:59:59.999Z", offsetS: -5 * 3600),
        Row(zone: "America/New_York", at: "2027-03-14T07:00:00.000Z", offsetS: -4 * 3600),
        Row(zone: "America/New_York", at: "2027-07-01T12:00:00.000Z", offsetS: -4 * 3600),
        Row(zone: "America/New_York", at: "2027-11-07T05:59:59.999Z", offsetS: -4 * 3600),
        Row(zone: "America/New_York", at: "2027-11-07T06:00:00.000Z", offsetS: -5 * 3600),
        Row(zone: "America/New_York", at: "1950-01-01T00:00:00.000Z", offsetS: -5 * 3600),
        Row(zone: "America/New_York", at: "2045-03-12T06:59:59.000Z", offsetS: -5 * 3600),
        Row(zone: "America/New_York", at: "2045-03-12T07:00:00.000Z", offsetS: -4 * 3600),
        Row(zone: "America/New_York", at: "2045-11-05T05:59:59.000Z", offsetS: -4 * 3600),
        Row(zone: "America/New_York", at: "2045-11-05T06:00:00.000Z", offsetS: -5 * 3600),
        Row(zone: "Europe/Berlin", at: "2027-03-28T00:59:59.000Z", offsetS: 3600),
        Row(zone: "Europe/Berlin", at: "2027-03-28T01:00:00.000Z", offsetS: 7200),
        Row(zone: "Europe/Berlin", at: "2027-10-31T00:59:59.000Z", offsetS: 7200),
        Row(zone: "Europe/Berlin", at: "2027-10-31T01:00:00.000Z", offsetS: 3600),
        Row(zone: "Australia/Sydney", at: "2027-01-15T00:00:00.000Z", offsetS: 11 * 3600),
        Row(zone: "Australia/Sydney", at: "2027-04-03T15:59:59.000Z", offsetS: 11 * 3600),
        Row(zone: "Australia/Sydney", at: "2027-04-03T16:00:00.000Z", offsetS: 10 * 3600),
        Row(zone: "Australia/Sydney", at: "2027-10-02T15:59:59.000Z", offsetS: 10 * 3600),
        Row(zone: "Australia/Sydney", at: "2027-10-02T16:00:00.000Z", offsetS: 11 * 3600),
        Row(zone: "Australia/Sydney", at: "2045-04-01T15:59:59.000Z", offsetS: 11 * 3600),
        Row(zone: "Australia/Sydney", at: "2045-04-01T16:00:00.000Z", offsetS: 10 * 3600),
        Row(zone: "Australia/Sydney", at: "2045-09-30T16:00:00.000Z", offsetS: 11 * 3600),
        Row(zone: "Australia/Sydney", at: "2045-12-31T23:00:00.000Z", offsetS: 11 * 3600),
        Row(zone: "UTC", at: "2027-07-01T12:00:00.000Z", offsetS: 0),
        Row(zone: "UTC", at: "2045-07-01T12:00:00.000Z", offsetS: 0),
    ])
    func offsets(row: Row) throws {
        let z = try zone(row.zone)
        #expect(z.utcOffset(atUTC: utc(row.at)) == row.offsetS)
    }

    /// The footer alone reproduces every table transition from 2008 to 2037 (the US rule since 2007,
    /// the EU rule since 1996, the Sydney rule since 2008).
    @Test(arguments: ["America/New_York", "Europe/Berlin", "Australia/Sydney"])
    func footerAgreesWithTable(name: String) throws {
        let z = try zone(name)
        let footer = try #require(z.footer)
        var checked = 0
        for (i, t) in z.transitions.enumerated() where t >= utc("2008-06-01T00:00:00Z") / 1000 && t < utc("2037-01-01T00:00:00Z") / 1000 {
            let off = z.types[z.transitionTypes[i]].utcOffsetS
            #expect(footer.utcOffset(atUTC: t) == off, "\(name) at \(Timestamp.format(ms: t * 1000))")
            #expect(footer.utcOffset(atUTC: t - 1) != off, "\(name) before \(Timestamp.format(ms: t * 1000))")
            checked += 1
        }
        #expect(checked >= 56)
    }

    @Test func posixStrings() throws {
        let ny = try PosixTZ.parse("EST5EDT,M3.2.0,M11.1.0")
        #expect(ny.stdOffsetS == -18000)
        #expect(ny.dstOffsetS == -14400)
        #expect(ny.start == .monthWeekDay(month: 3, week: 2, weekday: 0))
        let lord = try PosixTZ.parse("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0")
        #expect(lord.stdName == "+1030")
        #expect(lord.stdOffsetS == 37800)
        #expect(lord.dstOffsetS == 39600)
        let fixed = try PosixTZ.parse("<-03>3")
        #expect(fixed.stdOffsetS == -10800)
        #expect(fixed.dstName == nil)
        let godthab = try PosixTZ.parse("<-02>2<-01>,M3.5.0/-1,M10.5.0/0")
        #expect(godthab.startTimeS == -3600)
        #expect(godthab.endTimeS == 0)
        let julian = try PosixTZ.parse("XXX3YYY,J60/2,300")
        #expect(julian.start == .julian1(60))
        #expect(julian.end == .julian0(300))
        for bad in ["", "E5", "EST", "EST5EDT,M13.1.0,M11.1.0", "EST5EDT,M3.2.0", "EST5EDT,M3.2.0,M11.1.0x"] {
            #expect(throws: TimeZoneError.self, "\(bad)") { _ = try PosixTZ.parse(bad) }
        }
    }

    @Test func rejectsGarbage() {
        #expect(throws: TimeZoneError.self) { _ = try TimeZoneRules(name: "x", tzif: Array("not a zone".utf8)) }
        if let b = zoneBytes("Europe/Berlin") {
            #expect(throws: TimeZoneError.self) { _ = try TimeZoneRules(name: "x", tzif: Array(b.prefix(100))) }
        }
    }

    /// Version 1 files (no 64-bit block, no footer): the 32-bit block alone.
    @Test func versionOneBlock() throws {
        var b = try #require(zoneBytes("America/New_York"))
        b[4] = 0 // pretend v1: the parser must stop after the first block
        let z = try TimeZoneRules(name: "v1", tzif: b)
        #expect(z.footer == nil)
        #expect(z.utcOffset(atUTC: utc("2027-07-01T12:00:00Z")) == -14400)
        #expect(z.utcOffset(atUTC: utc("2027-12-01T12:00:00Z")) == -18000)
    }

    struct LocalRow: Sendable, CustomTestStringConvertible {
        var zone: String, local: LocalDateTime, utc: String
        var testDescription: String { "\(zone) \(local) -> \(utc)" }
    }

    @Test(arguments: [
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 7, day: 1, hour: 13), utc: "2027-07-01T17:00:00.000Z"),
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 12, day: 1, hour: 13), utc: "2027-12-01T18:00:00.000Z"),
        // Spring-forward gap: 02:30 does not exist; maps forward by the gap to 03:30 EDT.
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 3, day: 14, hour: 2, minute: 30), utc: "2027-03-14T07:30:00.000Z"),
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 3, day: 14, hour: 2), utc: "2027-03-14T07:00:00.000Z"),
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 3, day: 14, hour: 3), utc: "2027-03-14T07:00:00.000Z"),
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 3, day: 14, hour: 1, minute: 59), utc: "2027-03-14T06:59:00.000Z"),
        // Autumn overlap: 01:30 occurs twice; the first (EDT) is taken.
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 11, day: 7, hour: 1, minute: 30), utc: "2027-11-07T05:30:00.000Z"),
        LocalRow(zone: "America/New_York", local: LocalDateTime(year: 2027, month: 11, day: 7, hour: 2), utc: "2027-11-07T07:00:00.000Z"),
        LocalRow(zone: "Europe/Berlin", local: LocalDateTime(year: 2027, month: 3, day: 28, hour: 2, minute: 15), utc: "2027-03-28T01:15:00.000Z"),
        LocalRow(zone: "Europe/Berlin", local: LocalDateTime(year: 2027, month: 10, day: 31, hour: 2, minute: 30), utc: "2027-10-31T00:30:00.000Z"),
        LocalRow(zone: "Australia/Sydney", local: LocalDateTime(year: 2027, month: 10, day: 3, hour: 2, minute: 30), utc: "2027-10-02T16:30:00.000Z"),
        LocalRow(zone: "Australia/Sydney", local: LocalDateTime(year: 2027, month: 4, day: 4, hour: 2, minute: 30), utc: "2027-04-03T15:30:00.000Z"),
        LocalRow(zone: "Australia/Sydney", local: LocalDateTime(year: 2045, month: 4, day: 2, hour: 2, minute: 30), utc: "2045-04-01T15:30:00.000Z"),
        LocalRow(zone: "UTC", local: LocalDateTime(year: 2027, month: 3, day: 14, hour: 2, minute: 30), utc: "2027-03-14T02:30:00.000Z"),
    ])
    func localToUTC(row: LocalRow) throws {
        let z = try zone(row.zone)
        #expect(Timestamp.format(ms: z.utcMs(fromLocal: row.local)) == row.utc)
    }

    @Test(arguments: ["America/New_York", "Europe/Berlin", "Australia/Sydney"])
    func roundTripEveryQuarterHourOf2027(name: String) throws {
        let z = try zone(name)
        var t = utc("2027-01-01T00:00:00Z")
        let end = utc("2028-01-01T00:00:00Z")
        var mismatches = 0
        while t < end {
            let l = z.local(fromUTC: t)
            let back = z.utcMs(fromLocal: l)
            // Only the second pass through an autumn overlap maps back elsewhere (to the first, an hour earlier).
            if back != t, !(back == t - 3_600_000 && z.utcOffset(atUTC: t) < z.utcOffset(atUTC: back)) { mismatches += 1 }
            t += 900_000
        }
        #expect(mismatches == 0)
    }
}
