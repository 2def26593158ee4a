/// `cmd/schedules` (SPEC §3): `{"version":3,"schedules":[...],"holidays":{"name":["YYYY-MM-DD",...]}}`.
/// Each schedule has the shape of a config `schedules:` entry and the same rules (docs/configuration.md):
/// id `[A-Za-z0-9_-]{1,64}` unique, `limit_w` >= 0, `days` a non-empty list without repeats (default all),
/// `from` HH:MM 00:00..23:59, `to` HH:MM 00:00..24:00, `season` {from,to} MM-DD, `opt_out` bool,
/// `primacy` 65..191 (default 100), `except` the name of a holiday list, from this command's `holidays`
/// or from the config file (the engine checks the latter, `ControlEngine.handle`).
extension CommandParser {
    public static let maxSchedules = 256

    static func schedulesCommand(_ object: [(String, JSONValue)]) throws(CommandError) -> Command {
        var f = Fields(object, path: "")
        let version = try f.requiredInt("version", 0...Int(Int32.max))
        let items = try f.requiredArray("schedules")
        var holidays: [String: [String]] = [:]
        if let h = f.take("holidays") {
            guard let o = h.objectValue else { throw f.invalid("holidays", "holidays must be an object of lists of dates") }
            for (name, list) in o {
                let path = "holidays.\(name)"
                guard validScheduleID(name) else {
                    throw CommandError(code: "invalid", message: "holiday list names are 1 to 64 characters of A-Z a-z 0-9 _ -", path: path)
                }
                guard let dates = list.arrayValue else { throw CommandError(code: "invalid", message: "must be a list of dates", path: path) }
                var out: [String] = []
                for (i, d) in dates.enumerated() {
                    guard let s = d.stringValue, CalendarText.epochDay(s) != nil else {
                        throw CommandError(code: "invalid", message: "expected a valid date YYYY-MM-DD", path: "\(path)[\(i)]")
                    }
                    out.append(s)
                }
                holidays[name] = out
            }
        }
        try f.finish()
        guard items.count <= maxSchedules else {
            throw CommandError(code: "invalid", message: "at most \(maxSchedules) schedules", path: "schedules")
        }
        var schedules: [ScheduleConfig] = []
        for (i, item) in items.enumerated() {
            let path = "schedules[\(i)]"
            guard let o = item.objectValue else { throw CommandError(code: "invalid", message: "must be an object", path: path) }
            let s = try schedule(o, path: path)
            if schedules.contains(where: { $0.id == s.id }) {
                throw CommandError(code: "invalid", message: "duplicate schedule id '\(s.id)'", path: "\(path).id")
            }
            schedules.append(s)
        }
        return .schedules(version: version, schedules: schedules, holidays: holidays)
    }

    static func validScheduleID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...64).contains(u.count) else { return false }
        return u.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }

    /// One schedule object, validated like a config entry (paths like `schedules[2].season.from`).
    public static func schedule(_ object: [(String, JSONValue)], path: String) throws(CommandError) -> ScheduleConfig {
        var f = Fields(object, path: path)
        guard let idValue = f.take("id") else { throw f.missing("id") }
        guard let id = idValue.stringValue, validScheduleID(id) else {
            throw f.invalid("id", "schedule id must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")
        }
        guard let limit = try f.double("limit_w") else { throw f.missing("limit_w") }
        guard limit >= 0 else { throw f.invalid("limit_w", "limit_w must be >= 0") }
        guard limit <= 10_000_000 else { throw f.invalid("limit_w", "limit_w must be at most 10000000") }
        var days = Weekday.allCases
        if let d = f.take("days") {
            guard let list = d.arrayValue else { throw f.invalid("days", "days must be a list of mon, tue, wed, thu, fri, sat, sun") }
            if list.isEmpty { throw f.invalid("days", "list at least one day (mon, tue, wed, thu, fri, sat, sun), or omit the key for every day") }
            days = []
            for (i, n) in list.enumerated() {
                let p = "\(f.p("days"))[\(i)]"
                guard let s = n.stringValue, let w = Weekday(rawValue: s) else {
                    throw CommandError(code: "invalid", message: "must be one of mon, tue, wed, thu, fri, sat, sun", path: p)
                }
                if days.contains(w) { throw CommandError(code: "invalid", message: "'\(s)' is listed twice", path: p) }
                days.append(w)
            }
        }
        guard let fromV = f.take("from") else { throw f.missing("from") }
        guard let from = fromV.stringValue, CalendarText.minutes(from, allow24: false) != nil else {
            throw f.invalid("from", "expected a time HH:MM between 00:00 and 23:59")
        }
        guard let toV = f.take("to") else { throw f.missing("to") }
        guard let to = toV.stringValue, CalendarText.minutes(to, allow24: true) != nil else {
            throw f.invalid("to", "expected a time HH:MM between 00:00 and 24:00")
        }
        var s = ScheduleConfig(id: id, limitW: limit, days: days, from: from, to: to)
        if let season = f.take("season") {
            guard let o = season.objectValue else { throw f.invalid("season", "season must be an object {from, to}") }
            var sf = Fields(o, path: f.p("season"))
            guard let a = sf.take("from") else { throw sf.missing("from") }
            guard let from = a.stringValue, CalendarText.monthDay(from) != nil else {
                throw sf.invalid("from", "expected a month and day MM-DD such as 06-01")
            }
            guard let b = sf.take("to") else { throw sf.missing("to") }
            guard let to = b.stringValue, CalendarText.monthDay(to) != nil else {
                throw sf.invalid("to", "expected a month and day MM-DD such as 09-30")
            }
            try sf.finish()
            s.seasonFrom = from; s.seasonTo = to
        }
        if let e = f.take("except") {
            guard let name = e.stringValue, validScheduleID(name) else { throw f.invalid("except", "except must name a holiday list") }
            s.except = name
        }
        if let v = try f.bool("opt_out") { s.optOut = v }
        if let v = try f.int("primacy", 65...191) { s.primacy = v }
        try f.finish()
        return s
    }
}

extension ScheduleConfig {
    /// The JSON form accepted by `cmd/schedules` (used to persist the remote set).
    public var json: JSONValue {
        var o: [(String, JSONValue)] = [
            ("id", .string(id)), ("limit_w", .number(limitW)), ("days", .array(days.map { .string($0.rawValue) })),
            ("from", .string(from)), ("to", .string(to)),
        ]
        if let a = seasonFrom, let b = seasonTo { o.append(("season", .object([("from", .string(a)), ("to", .string(b))]))) }
        if let e = except { o.append(("except", .string(e))) }
        o.append(("opt_out", .bool(optOut)))
        o.append(("primacy", .number(Double(primacy))))
        return .object(o)
    }
}
