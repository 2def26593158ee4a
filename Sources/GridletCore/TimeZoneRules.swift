/// A local wall-clock date and time (no zone attached).
public struct LocalDateTime: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int
    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year; self.month = month; self.day = day; self.hour = hour; self.minute = minute; self.second = second
    }

    /// Days since 1970-01-01 of the date part.
    public var epochDay: Int64 { Timestamp.days(fromCivil: Int64(year), Int64(month), Int64(day)) }

    /// Milliseconds since 1970-01-01T00:00 of this wall-clock reading, as if it were UTC ("local ms").
    public var localMs: Int64 {
        epochDay * 86_400_000 + Int64((hour * 60 + minute) * 60 + second) * 1000
    }

    public init(localMs: Int64) {
        let days = Timestamp.floorDiv(localMs, 86_400_000)
        let msOfDay = localMs - days * 86_400_000
        let (y, m, d) = Timestamp.civil(fromDays: days)
        self.init(year: Int(y), month: Int(m), day: Int(d), hour: Int(msOfDay / 3_600_000),
                  minute: Int(msOfDay / 60_000 % 60), second: Int(msOfDay / 1000 % 60))
    }

    public var description: String {
        "\(Timestamp.pad(Int64(year), 4))-\(Timestamp.pad(Int64(month), 2))-\(Timestamp.pad(Int64(day), 2))T"
            + "\(Timestamp.pad(Int64(hour), 2)):\(Timestamp.pad(Int64(minute), 2)):\(Timestamp.pad(Int64(second), 2))"
    }
}

public struct TimeZoneError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The rules of one IANA time zone, from the compiled tz database (TZif, RFC 8536, versions 1 to 4)
/// and its POSIX TZ footer for instants after the last transition. Pure Swift: no Foundation, no libc
/// `localtime`; the caller reads `/usr/share/zoneinfo/<name>` and passes the bytes.
///
/// Conversions from local time to UTC are total:
/// - a local time that does not exist (in a spring-forward gap) maps forward by the length of the gap
///   (02:30 on the day New York skips 02:00-03:00 is 03:30 EDT = 07:30Z), as in RFC 5545 and java.time;
/// - a local time that occurs twice (autumn overlap) maps to its first occurrence (the earlier instant,
///   still on daylight time).
/// Leap-second records ("right/" zones) are ignored: instants are POSIX time.
public struct TimeZoneRules: Sendable, Equatable {
    public struct LocalType: Sendable, Equatable {
        public var utcOffsetS: Int
        public var isDST: Bool
        public var abbreviation: String
    }

    public let name: String
    /// Transition instants in UTC seconds, ascending.
    public let transitions: [Int64]
    /// Index into `types` in effect from the transition of the same index.
    public let transitionTypes: [Int]
    public let types: [LocalType]
    /// The POSIX TZ string for instants after the last transition (nil when absent or empty).
    public let footer: PosixTZ?

    public static let utc = TimeZoneRules(name: "UTC", transitions: [], transitionTypes: [],
                                          types: [LocalType(utcOffsetS: 0, isDST: false, abbreviation: "UTC")], footer: nil)

    public init(name: String, transitions: [Int64], transitionTypes: [Int], types: [LocalType], footer: PosixTZ?) {
        self.name = name; self.transitions = transitions; self.transitionTypes = transitionTypes
        self.types = types; self.footer = footer
    }

    /// Rules from a POSIX TZ string alone (e.g. `EST5EDT,M3.2.0,M11.1.0`).
    public init(name: String, posix: String) throws(TimeZoneError) {
        let p = try PosixTZ.parse(posix)
        self.init(name: name, transitions: [], transitionTypes: [],
                  types: [LocalType(utcOffsetS: p.stdOffsetS, isDST: false, abbreviation: p.stdName)], footer: p)
    }

    /// Parses TZif bytes (v1, v2, v3, v4). For v2+ the 64-bit block and the footer are used.
    public init(name: String, tzif bytes: [UInt8]) throws(TimeZoneError) {
        var r = ByteReader(bytes: bytes)
        func header() throws(TimeZoneError) -> (version: UInt8, isut: Int, isstd: Int, leap: Int, time: Int, type: Int, char: Int) {
            guard Array(try r.take(4)) == Array("TZif".utf8) else { throw TimeZoneError("\(name): not a TZif file") }
            let version = try r.take(1).first!
            _ = try r.take(15)
            var c: [Int] = []
            for _ in 0..<6 { c.append(Int(try r.u32())) }
            guard c[4] >= 1, c[4] <= 256, c[3] <= 1_000_000, c[5] <= 65_536, c[2] <= 100_000,
                  c[0] == 0 || c[0] == c[4], c[1] == 0 || c[1] == c[4] else {
                throw TimeZoneError("\(name): invalid TZif header counts")
            }
            return (version, c[0], c[1], c[2], c[3], c[4], c[5])
        }
        let h1 = try header()
        var h = h1
        var timeSize = 4
        if h1.version >= 0x32 { // '2' or later: skip the v1 block
            _ = try r.take(h1.time * 5 + h1.type * 6 + h1.char + h1.leap * 8 + h1.isstd + h1.isut)
            h = try header()
            timeSize = 8
        }
        var times: [Int64] = []
        times.reserveCapacity(h.time)
        for _ in 0..<h.time { times.append(timeSize == 8 ? Int64(bitPattern: try r.u64()) : Int64(Int32(bitPattern: try r.u32()))) }
        var idx: [Int] = []
        for _ in 0..<h.time {
            let i = Int(try r.take(1).first!)
            guard i < h.type else { throw TimeZoneError("\(name): transition type index out of range") }
            idx.append(i)
        }
        var raw: [(Int, Bool, Int)] = []
        for _ in 0..<h.type {
            let off = Int(Int32(bitPattern: try r.u32()))
            let b = Array(try r.take(2))
            guard abs(off) <= 26 * 3600 else { throw TimeZoneError("\(name): implausible UTC offset \(off)") }
            raw.append((off, b[0] != 0, Int(b[1])))
        }
        let chars = Array(try r.take(h.char))
        _ = try r.take(h.leap * (timeSize + 4) + h.isstd + h.isut)
        var types: [LocalType] = []
        for (off, dst, ai) in raw {
            var end = ai
            while end < chars.count, chars[end] != 0 { end += 1 }
            let abbr = ai < chars.count ? String(decoding: chars[ai..<end], as: UTF8.self) : ""
            types.append(LocalType(utcOffsetS: off, isDST: dst, abbreviation: abbr))
        }
        for i in times.indices.dropFirst() where times[i] <= times[i - 1] {
            throw TimeZoneError("\(name): transition times are not ascending")
        }
        var footer: PosixTZ? = nil
        if timeSize == 8 {
            let rest = r.rest
            guard rest.first == 0x0A, let close = rest.dropFirst().firstIndex(of: 0x0A) else {
                throw TimeZoneError("\(name): missing TZ string footer")
            }
            let text = String(decoding: rest[(rest.startIndex + 1)..<close], as: UTF8.self)
            if !text.isEmpty { footer = try PosixTZ.parse(text) }
        }
        self.init(name: name, transitions: times, transitionTypes: idx, types: types, footer: footer)
    }

    // MARK: queries

    /// Seconds east of UTC in effect at the UTC instant (milliseconds).
    public func utcOffset(atUTC ms: Int64) -> Int {
        let s = Timestamp.floorDiv(ms, 1000)
        if let last = transitions.last, s >= last, let f = footer { return f.utcOffset(atUTC: s) }
        if transitions.isEmpty { return footer?.utcOffset(atUTC: s) ?? types[0].utcOffsetS }
        if s < transitions[0] { return types[0].utcOffsetS }
        // Binary search: the last transition <= s.
        var lo = 0, hi = transitions.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if transitions[mid] <= s { lo = mid } else { hi = mid - 1 }
        }
        return types[transitionTypes[lo]].utcOffsetS
    }

    /// True when daylight saving time is in effect at the instant.
    public func isDST(atUTC ms: Int64) -> Bool {
        let s = Timestamp.floorDiv(ms, 1000)
        guard let t = typeIndex(atUTCSeconds: s) else { return footer!.isDST(atUTC: s) }
        return types[t].isDST
    }

    /// The TZif type in effect at the UTC second, nil when the POSIX footer rule applies (after the
    /// last transition).
    func typeIndex(atUTCSeconds s: Int64) -> Int? {
        if footer != nil, transitions.isEmpty || s >= transitions.last! { return nil }
        if transitions.isEmpty || s < transitions[0] { return 0 }
        var lo = 0, hi = transitions.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if transitions[mid] <= s { lo = mid } else { hi = mid - 1 }
        }
        return transitionTypes[lo]
    }

    /// Local wall-clock milliseconds ("local ms", see `LocalDateTime.localMs`) of a UTC instant.
    public func localMs(fromUTC ms: Int64) -> Int64 { ms + Int64(utcOffset(atUTC: ms)) * 1000 }

    public func local(fromUTC ms: Int64) -> LocalDateTime { LocalDateTime(localMs: localMs(fromUTC: ms)) }

    /// The UTC instant of a local wall-clock reading: gaps map forward by the gap length, overlaps to
    /// the first occurrence (see the type's documentation).
    public func utcMs(fromLocalMs l: Int64) -> Int64 {
        // Offsets in force a day either side cover every real zone (transitions are further apart).
        let before = utcOffset(atUTC: l - 86_400_000 - 14 * 3_600_000)
        let after = utcOffset(atUTC: l + 86_400_000 + 14 * 3_600_000)
        var best: Int64? = nil
        for o in before == after ? [before] : [before, after] {
            let u = l - Int64(o) * 1000
            if utcOffset(atUTC: u) == o, best.map({ u < $0 }) ?? true { best = u }
        }
        if let b = best { return b }
        // A third offset in between (rare), found by asking at the candidate instants.
        for base in [before, after] {
            let o = utcOffset(atUTC: l - Int64(base) * 1000)
            let u = l - Int64(o) * 1000
            if utcOffset(atUTC: u) == o, best.map({ u < $0 }) ?? true { best = u }
        }
        if let b = best { return b }
        // In a gap: keep the offset from before the gap, which lands after the transition.
        return l - Int64(before) * 1000
    }

    public func utcMs(fromLocal t: LocalDateTime) -> Int64 { utcMs(fromLocalMs: t.localMs) }
}

/// A POSIX TZ string (as in the TZif footer): `std offset [dst [offset] [,start[/time],end[/time]]]`.
public struct PosixTZ: Sendable, Equatable {
    public enum Rule: Sendable, Equatable {
        /// Jn: day 1...365, February 29 never counted.
        case julian1(Int)
        /// n: day 0...365, February 29 counted in leap years.
        case julian0(Int)
        /// Mm.w.d: month 1...12, week 1...5 (5 = last), weekday 0 (Sunday)...6.
        case monthWeekDay(month: Int, week: Int, weekday: Int)
    }

    public var stdName: String
    /// Seconds east of UTC (the POSIX sign is inverted on parse).
    public var stdOffsetS: Int
    public var dstName: String?
    public var dstOffsetS: Int
    public var start: Rule?
    public var startTimeS: Int
    public var end: Rule?
    public var endTimeS: Int

    public static func parse(_ text: String) throws(TimeZoneError) -> PosixTZ {
        var p = Scanner(b: Array(text.utf8))
        func err(_ m: String) -> TimeZoneError { TimeZoneError("TZ string '\(text)': \(m)") }
        guard let std = p.name() else { throw err("expected a zone abbreviation") }
        guard let stdOff = p.hms(signed: true) else { throw err("expected the standard offset") }
        var tz = PosixTZ(stdName: std, stdOffsetS: -stdOff, dstName: nil, dstOffsetS: -stdOff + 3600, start: nil,
                         startTimeS: 7200, end: nil, endTimeS: 7200)
        if p.atEnd { return tz }
        guard let dst = p.name() else { throw err("expected a daylight abbreviation") }
        tz.dstName = dst
        if !p.atEnd, p.peek != UInt8(ascii: ",") {
            guard let o = p.hms(signed: true) else { throw err("bad daylight offset") }
            tz.dstOffsetS = -o
        }
        if p.atEnd {
            // No rule: the POSIX default is M3.2.0,M11.1.0 (US rules).
            tz.start = .monthWeekDay(month: 3, week: 2, weekday: 0); tz.end = .monthWeekDay(month: 11, week: 1, weekday: 0)
            return tz
        }
        guard p.eat(UInt8(ascii: ",")), let s = p.rule() else { throw err("bad start rule") }
        tz.start = s
        if p.eat(UInt8(ascii: "/")) { guard let t = p.hms(signed: true) else { throw err("bad start time") }; tz.startTimeS = t }
        guard p.eat(UInt8(ascii: ",")), let e = p.rule() else { throw err("bad end rule") }
        tz.end = e
        if p.eat(UInt8(ascii: "/")) { guard let t = p.hms(signed: true) else { throw err("bad end time") }; tz.endTimeS = t }
        guard p.atEnd else { throw err("unexpected text after the end rule") }
        return tz
    }

    /// The epoch day on which a rule falls in `year`.
    static func day(of rule: Rule, year: Int64) -> Int64 {
        let jan1 = Timestamp.days(fromCivil: year, 1, 1)
        switch rule {
        case let .julian1(n):
            let leap = Timestamp.daysIn(year: year, month: 2) == 29
            return jan1 + Int64(n) - 1 + (leap && n >= 60 ? 1 : 0)
        case let .julian0(n):
            return jan1 + Int64(n)
        case let .monthWeekDay(m, w, d):
            let first = Timestamp.days(fromCivil: year, Int64(m), 1)
            let firstWeekday = (first + 4) % 7 // 1970-01-01 was a Thursday (4), Sunday = 0
            let wd = ((firstWeekday % 7) + 7) % 7
            var day = first + (Int64(d) - wd + 7) % 7 + Int64(w - 1) * 7
            let dim = Timestamp.daysIn(year: year, month: Int64(m))
            while day >= first + dim { day -= 7 }
            return day
        }
    }

    /// DST start and end in UTC seconds for a year.
    func bounds(year: Int64) -> (start: Int64, end: Int64)? {
        guard let s = start, let e = end else { return nil }
        let startUTC = Self.day(of: s, year: year) * 86_400 + Int64(startTimeS) - Int64(stdOffsetS)
        let endUTC = Self.day(of: e, year: year) * 86_400 + Int64(endTimeS) - Int64(dstOffsetS)
        return (startUTC, endUTC)
    }

    public func isDST(atUTC s: Int64) -> Bool {
        guard dstName != nil else { return false }
        let year = Timestamp.civil(fromDays: Timestamp.floorDiv(s + Int64(stdOffsetS), 86_400)).0
        guard let b = bounds(year: year) else { return false }
        if b.start < b.end { return s >= b.start && s < b.end }
        return !(s >= b.end && s < b.start) // southern hemisphere: DST spans the new year
    }

    public func utcOffset(atUTC s: Int64) -> Int { isDST(atUTC: s) ? dstOffsetS : stdOffsetS }
}

private struct Scanner {
    let b: [UInt8]
    var i = 0
    var atEnd: Bool { i >= b.count }
    var peek: UInt8? { i < b.count ? b[i] : nil }
    mutating func eat(_ c: UInt8) -> Bool { if peek == c { i += 1; return true }; return false }

    mutating func name() -> String? {
        if eat(UInt8(ascii: "<")) {
            let s = i
            while let c = peek, c != UInt8(ascii: ">") { i += 1 }
            guard i > s, eat(UInt8(ascii: ">")) else { return nil }
            return String(decoding: b[s..<(i - 1)], as: UTF8.self)
        }
        let s = i
        while let c = peek, (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) { i += 1 }
        return i - s >= 3 ? String(decoding: b[s..<i], as: UTF8.self) : nil
    }

    mutating func number() -> Int? {
        let s = i
        var v = 0
        while let c = peek, c >= 0x30, c <= 0x39, i - s < 4 { v = v * 10 + Int(c - 0x30); i += 1 }
        return i > s ? v : nil
    }

    /// [+-]hh[:mm[:ss]] in seconds.
    mutating func hms(signed: Bool) -> Int? {
        var sign = 1
        if signed { if eat(UInt8(ascii: "-")) { sign = -1 } else { _ = eat(UInt8(ascii: "+")) } }
        guard let h = number(), h <= 167 else { return nil }
        var total = h * 3600
        if eat(UInt8(ascii: ":")) {
            guard let m = number(), m < 60 else { return nil }
            total += m * 60
            if eat(UInt8(ascii: ":")) {
                guard let s = number(), s < 60 else { return nil }
                total += s
            }
        }
        return sign * total
    }

    mutating func rule() -> PosixTZ.Rule? {
        if eat(UInt8(ascii: "J")) {
            guard let n = number(), (1...365).contains(n) else { return nil }
            return .julian1(n)
        }
        if eat(UInt8(ascii: "M")) {
            guard let m = number(), (1...12).contains(m), eat(UInt8(ascii: ".")), let w = number(), (1...5).contains(w),
                  eat(UInt8(ascii: ".")), let d = number(), (0...6).contains(d) else { return nil }
            return .monthWeekDay(month: m, week: w, weekday: d)
        }
        guard let n = number(), (0...365).contains(n) else { return nil }
        return .julian0(n)
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    var i = 0
    mutating func take(_ n: Int) throws(TimeZoneError) -> ArraySlice<UInt8> {
        guard n >= 0, i + n <= bytes.count else { throw TimeZoneError("TZif data is truncated") }
        defer { i += n }
        return bytes[i..<(i + n)]
    }
    mutating func u32() throws(TimeZoneError) -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }
    mutating func u64() throws(TimeZoneError) -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
    var rest: ArraySlice<UInt8> { bytes[i...] }
}
