/// One occurrence of a local schedule, in UTC.
public struct ScheduleWindow: Sendable, Equatable, Hashable {
    public var scheduleID: String
    public var startMs: Int64
    public var endMs: Int64
    public var limitW: Double
    public var primacy: Int
    public var optOutAllowed: Bool

    public init(scheduleID: String, startMs: Int64, endMs: Int64, limitW: Double, primacy: Int, optOutAllowed: Bool) {
        self.scheduleID = scheduleID; self.startMs = startMs; self.endMs = endMs; self.limitW = limitW
        self.primacy = primacy; self.optOutAllowed = optOutAllowed
    }

    /// `schedule:<id>`, the control source while this window wins.
    public var source: String { "schedule:\(scheduleID)" }
    /// `schedule:<id>@<start RFC 3339>`: the id an opt-out of this occurrence is reported under on `root/responses`.
    public var occurrenceID: String { "schedule:\(scheduleID)@\(Timestamp.format(ms: startMs))" }

    public func contains(_ ms: Int64) -> Bool { ms >= startMs && ms < endMs }

    /// True when `a` takes precedence over `b`: lower primacy, then the lower limit, then the larger id (byte order).
    public static func precedes(_ a: ScheduleWindow, _ b: ScheduleWindow) -> Bool {
        if a.primacy != b.primacy { return a.primacy < b.primacy }
        if a.limitW != b.limitW { return a.limitW < b.limitW }
        if a.scheduleID != b.scheduleID { return b.scheduleID.utf8.lexicographicallyPrecedes(a.scheduleID.utf8) }
        return a.startMs > b.startMs
    }
}

/// A schedule boundary: a window of `scheduleID` starts or ends at `atMs`.
public struct ScheduleTransition: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable { case start, end }
    public var atMs: Int64
    public var kind: Kind
    public var window: ScheduleWindow
}

/// A `ScheduleConfig` with its text fields parsed.
public struct ResolvedSchedule: Sendable, Equatable {
    public var id: String
    public var limitW: Double
    /// Index 0 = Monday ... 6 = Sunday.
    public var weekdays: [Bool]
    /// Minutes after local midnight, 0...1439.
    public var fromMin: Int
    /// Minutes after local midnight, 0...1440; `to <= from` means the next day.
    public var toMin: Int
    /// Season as month × 100 + day, inclusive; `from > to` wraps the year end.
    public var season: (from: Int, to: Int)?
    /// Local dates (epoch days) on which no window starts.
    public var holidays: Set<Int64>
    public var optOut: Bool
    public var primacy: Int

    public static func == (a: ResolvedSchedule, b: ResolvedSchedule) -> Bool {
        a.id == b.id && a.limitW == b.limitW && a.weekdays == b.weekdays && a.fromMin == b.fromMin && a.toMin == b.toMin
            && a.season?.from == b.season?.from && a.season?.to == b.season?.to && a.holidays == b.holidays
            && a.optOut == b.optOut && a.primacy == b.primacy
    }

    /// Nil when a text field does not parse (config and `cmd/schedules` validate before this).
    public init?(_ c: ScheduleConfig, holidays: [String: [String]]) {
        guard let f = CalendarText.minutes(c.from, allow24: false), let t = CalendarText.minutes(c.to, allow24: true) else { return nil }
        id = c.id; limitW = c.limitW; fromMin = f; toMin = t; optOut = c.optOut; primacy = c.primacy
        weekdays = Weekday.allCases.map { c.days.contains($0) }
        if let sf = c.seasonFrom, let st = c.seasonTo {
            guard let a = CalendarText.monthDay(sf), let b = CalendarText.monthDay(st) else { return nil }
            season = (a, b)
        } else {
            season = nil
        }
        var days = Set<Int64>()
        if let name = c.except {
            for d in holidays[name] ?? [] { if let day = CalendarText.epochDay(d) { days.insert(day) } }
        }
        self.holidays = days
    }

    /// Whether a window starts on this local date.
    public func starts(onLocalDay day: Int64) -> Bool {
        let weekday = Int(((day + 3) % 7 + 7) % 7) // 1970-01-01 was a Thursday; Monday = 0
        guard weekdays[weekday], !holidays.contains(day) else { return false }
        if let s = season {
            let (_, m, d) = Timestamp.civil(fromDays: day)
            let md = Int(m * 100 + d)
            if s.from <= s.to { if md < s.from || md > s.to { return false } } else if md < s.from && md > s.to { return false }
        }
        return true
    }
}

/// Evaluates local schedules (SPEC §1 `schedules:`) in the site's time zone:
/// - `days`: the weekday of the local date on which a window starts;
/// - `from`/`to`: local wall-clock times; `to <= from` crosses midnight and the window belongs to the day it starts
///   on; `to: "24:00"` is the next midnight. A 13:00-21:00 window is 13:00-21:00 local on both sides of a DST change
///   (so 7 or 9 hours long only when the change falls inside it). Local times in a spring-forward gap map forward by
///   the gap, ambiguous ones take the first occurrence (`TimeZoneRules`); an occurrence left empty is dropped.
/// - `season`: month-day bounds, inclusive, of the window's start date; `from > to` wraps the year end
///   (11-01..02-28 covers November to February 28; February 29 only when the season names 02-29).
/// - `except`: a holiday list; a holiday excludes the windows that start on that local date.
public struct ScheduleCalendar: Sendable, Equatable {
    public var zone: TimeZoneRules
    public private(set) var schedules: [ResolvedSchedule]

    public init(schedules: [ScheduleConfig], holidays: [String: [String]], zone: TimeZoneRules) {
        self.zone = zone
        self.schedules = schedules.compactMap { ResolvedSchedule($0, holidays: holidays) }
    }

    public init(resolved: [ResolvedSchedule], zone: TimeZoneRules) {
        self.zone = zone
        self.schedules = resolved
    }

    /// The occurrence of `s` that starts on local date `day`, if any.
    public func occurrence(of s: ResolvedSchedule, onLocalDay day: Int64) -> ScheduleWindow? {
        guard s.starts(onLocalDay: day) else { return nil }
        let base = day * 86_400_000
        let startLocal = base + Int64(s.fromMin) * 60_000
        let endLocal = base + Int64(s.toMin) * 60_000 + (s.toMin <= s.fromMin ? 86_400_000 : 0)
        let start = zone.utcMs(fromLocalMs: startLocal), end = zone.utcMs(fromLocalMs: endLocal)
        guard end > start else { return nil }
        return ScheduleWindow(scheduleID: s.id, startMs: start, endMs: end, limitW: s.limitW, primacy: s.primacy,
                              optOutAllowed: s.optOut)
    }

    /// Every occurrence overlapping [fromMs, toMs), ordered by start then id.
    public func windows(fromUTC fromMs: Int64, toUTC toMs: Int64) -> [ScheduleWindow] {
        guard toMs > fromMs else { return [] }
        let firstDay = Timestamp.floorDiv(zone.localMs(fromUTC: fromMs), 86_400_000) - 2
        let lastDay = Timestamp.floorDiv(zone.localMs(fromUTC: toMs), 86_400_000) + 1
        var out: [ScheduleWindow] = []
        for s in schedules {
            var day = firstDay
            while day <= lastDay {
                if let w = occurrence(of: s, onLocalDay: day), w.startMs < toMs, w.endMs > fromMs { out.append(w) }
                day += 1
            }
        }
        out.sort { $0.startMs != $1.startMs ? $0.startMs < $1.startMs : $0.scheduleID.utf8.lexicographicallyPrecedes($1.scheduleID.utf8) }
        return out
    }

    /// Windows containing the instant, the winner first (`ScheduleWindow.precedes`).
    public func activeWindows(atUTC ms: Int64) -> [ScheduleWindow] {
        windows(fromUTC: ms, toUTC: ms + 1).sorted(by: ScheduleWindow.precedes)
    }

    /// The occurrence of schedule `id` containing `ms`, else its next one (within about a year), else nil.
    public func currentOrNext(scheduleID id: String, atUTC ms: Int64) -> ScheduleWindow? {
        guard let s = schedules.first(where: { $0.id == id }) else { return nil }
        let one = ScheduleCalendar(resolved: [s], zone: zone)
        // A window running now (it may have started up to ~49 h ago), else the next one to start.
        if let current = one.windows(fromUTC: ms - 49 * 3_600_000, toUTC: ms + 1)
            .filter({ $0.startMs <= ms && $0.endMs > ms }).min(by: { $0.startMs < $1.startMs }) {
            return current
        }
        return one.transitions(fromUTC: ms, limit: 2, horizonDays: 370).first { $0.kind == .start }?.window
    }

    /// The next `limit` schedule boundaries strictly after `fromMs`, in time order (at most `horizonDays` ahead).
    public func transitions(fromUTC fromMs: Int64, limit: Int, horizonDays: Int = 400) -> [ScheduleTransition] {
        guard limit > 0, !schedules.isEmpty else { return [] }
        var out: [ScheduleTransition] = []
        var seen = Set<ScheduleWindow>()
        let chunk: Int64 = 7 * 86_400_000
        var lo = fromMs
        let horizon = fromMs + Int64(horizonDays) * 86_400_000
        while lo < horizon {
            let hi = min(lo + chunk, horizon)
            var found: [ScheduleTransition] = []
            for w in windows(fromUTC: lo, toUTC: hi) where !seen.contains(w) {
                seen.insert(w)
                if w.startMs > fromMs { found.append(ScheduleTransition(atMs: w.startMs, kind: .start, window: w)) }
                if w.endMs > fromMs { found.append(ScheduleTransition(atMs: w.endMs, kind: .end, window: w)) }
            }
            out += found
            out.sort { $0.atMs != $1.atMs ? $0.atMs < $1.atMs : ($0.kind == .end && $1.kind == .start) }
            // Everything before `hi` is complete once [lo, hi) has been scanned.
            if out.filter({ $0.atMs < hi }).count >= limit { break }
            lo = hi
        }
        return Array(out.prefix(limit))
    }

    /// The first schedule boundary after `fromMs`, if any within a year or so.
    public func nextTransition(afterUTC fromMs: Int64) -> Int64? {
        transitions(fromUTC: fromMs, limit: 1).first?.atMs
    }
}

/// Parsers for the text forms used by schedules (shared by the config and `cmd/schedules`).
public enum CalendarText {
    static func digits(_ s: Substring, count: Int) -> Int? {
        guard s.utf8.count == count, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }

    /// "HH:MM" (00:00...23:59, plus 24:00 when `allow24`) in minutes.
    public static func minutes(_ s: String, allow24: Bool) -> Int? {
        let p = s.split(separator: ":", omittingEmptySubsequences: false)
        guard p.count == 2, let h = digits(p[0], count: 2), let m = digits(p[1], count: 2) else { return nil }
        if allow24 && h == 24 && m == 0 { return 1440 }
        return h <= 23 && m <= 59 ? h * 60 + m : nil
    }

    /// "MM-DD" (02-29 allowed) as month × 100 + day.
    public static func monthDay(_ s: String) -> Int? {
        let p = s.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == 2, let m = digits(p[0], count: 2), let d = digits(p[1], count: 2), (1...12).contains(m),
              d >= 1, d <= Int(Timestamp.daysIn(year: 2000, month: Int64(m))) else { return nil }
        return m * 100 + d
    }

    /// "YYYY-MM-DD" as days since 1970-01-01.
    public static func epochDay(_ s: String) -> Int64? {
        let p = s.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == 3, let y = digits(p[0], count: 4), let m = digits(p[1], count: 2), let d = digits(p[2], count: 2),
              (1...12).contains(m), d >= 1, d <= Int(Timestamp.daysIn(year: Int64(y), month: Int64(m))) else { return nil }
        return Timestamp.days(fromCivil: Int64(y), Int64(m), Int64(d))
    }
}
