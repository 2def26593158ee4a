import Testing
@testable import GridletCore

@Suite struct TimestampTests {
    static let june1 = Int64(1_811_869_200_000) // 2027-06-01T17:00:00Z

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(1), "1970-01-01T00:00:00.001Z"),
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (Int64(-86_400_000), "1969-12-31T00:00:00.000Z"),
        (june1, "2027-06-01T17:00:00.000Z"),
        (june1 + 123, "2027-06-01T17:00:00.123Z"),
        (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
        (Int64(1_709_164_800_000), "2024-02-29T00:00:00.000Z"),
        (Int64(1_709_251_199_999), "2024-02-29T23:59:59.999Z"),
        (Int64(4_107_542_400_000), "2100-03-01T00:00:00.000Z"),
        (Int64(-2_208_988_800_000), "1900-01-01T00:00:00.000Z"),
        (Int64(253_402_300_799_999), "9999-12-31T23:59:59.999Z"),
    ])
    func format(ms: Int64, text: String) {
        #expect(Timestamp.format(ms: ms) == text)
        #expect(Timestamp.parse(text) == ms)
    }

    @Test(arguments: [
        ("2027-06-01T17:00:00Z", june1),
        ("2027-06-01T17:00:00.000Z", june1),
        ("2027-06-01t17:00:00z", june1),
        ("2027-06-01 17:00:00Z", june1),
        ("2027-06-01T19:00:00+02:00", june1),
        ("2027-06-01T11:30:00-05:30", june1),
        ("2027-06-01T17:00:00+00:00", june1),
        ("2027-06-01T17:00:00-00:00", june1),
        ("2027-06-02T01:00:00.5+08:00", june1 + 500),
        ("2027-06-01T17:00:00.1Z", june1 + 100),
        ("2027-06-01T17:00:00.12Z", june1 + 120),
        ("2027-06-01T17:00:00.123456789Z", june1 + 123),
        ("2027-06-01T16:59:60Z", june1 - 1000),
    ])
    func parseAccepts(text: String, ms: Int64) {
        #expect(Timestamp.parse(text) == ms)
    }

    @Test(arguments: [
        "", "2027-06-01", "2027-06-01T17:00:00", "2027-02-30T00:00:00Z", "2027-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2027-04-31T00:00:00Z", "2027-13-01T00:00:00Z", "2027-00-01T00:00:00Z", "2027-06-00T00:00:00Z",
        "2027-06-01T24:00:00Z", "2027-06-01T17:60:00Z", "2027-06-01T17:00:61Z", "2027-06-01T17:00:00.Z",
        "2027-06-01T17:00:00+0200", "2027-06-01T17:00:00+02", "2027-06-01T17:00:00+24:00", "2027-06-01T17:00:00+02:60",
        "2027-06-01T17:00:00Zjunk", "2027-06-01T17:00:00+02:00x", "2027/06/01T17:00:00Z", "2027-06-01X17:00:00Z",
        "27-06-01T17:00:00Z", "2027-6-01T17:00:00Z", "+027-06-01T17:00:00Z", "2027-06-01T17:00:0aZ",
    ])
    func parseRejects(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test func roundTripManyValues() {
        var x: UInt64 = 0x1234_5678
        var count = 0
        // From 1600 to 2400, including negative ms, every leap day and random instants.
        let lo: Int64 = -11_676_096_000_000, hi: Int64 = 13_569_465_600_000
        for _ in 0..<20_000 {
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let ms = lo + Int64(x >> 1 % UInt64(hi - lo))
            let clamped = lo + (ms - lo) % (hi - lo)
            let text = Timestamp.format(ms: clamped)
            #expect(Timestamp.parse(text) == clamped, "\(clamped) -> \(text)")
            count += 1
        }
        for year in Int64(1600)...2400 where Timestamp.daysIn(year: year, month: 2) == 29 {
            let ms = Timestamp.days(fromCivil: year, 2, 29) * 86_400_000 + 43_200_123
            let text = Timestamp.format(ms: ms)
            #expect(text == "\(year)-02-29T12:00:00.123Z")
            #expect(Timestamp.parse(text) == ms)
        }
        #expect(count == 20_000)
    }

    @Test func daysRoundTripAroundEpoch() {
        for d in Int64(-200_000)...200_000 where d % 7 == 0 || abs(d) < 1000 {
            let (y, m, day) = Timestamp.civil(fromDays: d)
            #expect(Timestamp.days(fromCivil: y, m, day) == d)
            #expect((1...Timestamp.daysIn(year: y, month: m)).contains(day))
        }
    }

    @Test(arguments: [(Int64(2024), Int64(2), Int64(29)), (2023, 2, 28), (2000, 2, 29), (1900, 2, 28), (2100, 2, 28),
                      (2027, 4, 30), (2027, 12, 31), (2027, 1, 31)])
    func daysInMonth(year: Int64, month: Int64, days: Int64) {
        #expect(Timestamp.daysIn(year: year, month: month) == days)
    }
}
