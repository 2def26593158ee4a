/// What the engine persists in `state_dir/control.json` (SPEC §2: everything received survives a
/// restart), and its read-back with the same range checks a command gets: a damaged or edited file
/// never puts an out-of-range event into force, and never traps.
extension ControlEngine {
    /// A whole number that fits an Int64 comfortably (Unix ms, durations, counts), else nil.
    fileprivate func whole(_ v: JSONValue?) -> Int64? {
        guard let d = v?.doubleValue, d.isFinite, d == d.rounded(), abs(d) < 1e15 else { return nil }
        return Int64(d)
    }

    // MARK: persistence

    /// Everything received that must survive a restart, as JSON.
    public var persistentState: JSONValue {
        var o: [(String, JSONValue)] = [
            ("version", .number(2)),
            ("events_version", .number(Double(eventsVersion))),
            ("events_digest", .string(String(eventsDigest))),
            ("schedules_digest", .string(String(schedulesDigest))),
            ("events", .array(events.map { e in
                var o: [(String, JSONValue)] = [
                    ("id", .string(e.id)), ("created_ms", .number(Double(e.createdMs))),
                    ("start_ms", .number(Double(e.startMs))), ("duration_ms", .number(Double(e.durationMs))),
                    ("limit_w", .number(e.limitW)), ("primacy", .number(Double(e.primacy))),
                    ("randomize_start_s", .number(Double(e.randomizeStartS))),
                    ("random_delay_ms", .number(Double(e.randomDelayMs))), ("opt_out", .bool(e.optOutAllowed)),
                    ("phase", .string(e.phase.rawValue)),
                ]
                if let m = e.maxOfflineS { o.append(("max_offline_s", .number(Double(m)))) }
                if let c = e.cancelAtMs { o.append(("cancel_at_ms", .number(Double(c)))) }
                if e.optedOut { o.append(("opted_out", .bool(true))) }
                if e.superseded { o.append(("superseded", .bool(true))) }
                o += EventPowerFields.json(e)
                return .object(o)
            })),
            ("schedules_version", .number(Double(schedulesVersion))),
            ("schedules", .array(remoteSchedules.map(\.json))),
            ("holidays", .object(remoteHolidays.keys.sorted().map { k in (k, .array(remoteHolidays[k]!.map { .string($0) })) })),
            ("schedule_opt_outs", .array(scheduleOptOuts.map { w in
                .object([("id", .string(w.scheduleID)), ("start_ms", .number(Double(w.startMs))), ("end_ms", .number(Double(w.endMs)))])
            })),
            ("rng", .string(String(rng.state))),
            ("last_source", .string(lastSource)),
        ]
        if let t = lastTargetW, t.isFinite { o.append(("last_target_w", .number(t))) }
        if let r = restore {
            o.append(("restore", .object([("from_w", .number(r.fromW)), ("ramp_start_ms", .number(Double(r.rampStartMs)))])))
        }
        return .object(o)
    }

    /// Restores what `persistentState` saved; entries that do not parse or are out of range (as a
    /// command would be refused) are skipped and named in the result. Call after `configureSchedules`.
    @discardableResult
    public mutating func restorePersistentState(_ json: JSONValue) -> [String] {
        var problems: [String] = []
        func version(_ key: String) -> Int? {
            guard let v = json[key]?.doubleValue else { return nil }
            guard v >= -1, v <= Double(Int32.max), v == v.rounded() else { problems.append("\(key) \(v) out of range"); return nil }
            return Int(v)
        }
        if let v = version("events_version") { eventsVersion = v }
        if let s = json["events_digest"]?.stringValue, let d = UInt64(s) { eventsDigest = d }
        if let s = json["schedules_digest"]?.stringValue, let d = UInt64(s) { schedulesDigest = d }
        if let list = json["events"]?.arrayValue {
            var restored: [DispatchEvent] = []
            for item in list {
                guard let id = item["id"]?.stringValue, let created = whole(item["created_ms"]),
                      let start = whole(item["start_ms"]), let duration = whole(item["duration_ms"]),
                      let limit = item["limit_w"]?.doubleValue, let primacy = whole(item["primacy"]),
                      let randomize = whole(item["randomize_start_s"] ?? .number(0)),
                      let delay = whole(item["random_delay_ms"] ?? .number(0)) else {
                    problems.append("event \(item["id"]?.stringValue.map { "'\($0)'" } ?? "without id") unreadable")
                    continue
                }
                var e = DispatchEvent(
                    id: id, createdMs: created, startMs: start, durationMs: duration, limitW: limit,
                    primacy: Int(primacy), randomizeStartS: Int(randomize), randomDelayMs: delay,
                    optOutAllowed: item["opt_out"]?.boolValue ?? false,
                    maxOfflineS: whole(item["max_offline_s"]).map { Int($0) },
                    phase: DispatchEvent.Phase(rawValue: item["phase"]?.stringValue ?? "") ?? .scheduled,
                    cancelAtMs: whole(item["cancel_at_ms"]))
                e.optedOut = item["opted_out"]?.boolValue ?? false
                e.superseded = item["superseded"]?.boolValue ?? false
                guard let power = EventPowerFields.restore(item) else {
                    problems.append("event '\(id)' out of range")
                    continue
                }
                power.apply(to: &e)
                guard CommandParser.validID(id), e.durationMs > 0, e.durationMs <= 366 * 86_400_000,
                      limit >= 0, limit <= 10_000_000, (0...64).contains(e.primacy), (0...86_400).contains(e.randomizeStartS),
                      e.randomDelayMs >= 0, e.randomDelayMs <= Int64(e.randomizeStartS) * 1000 else {
                    problems.append("event '\(id)' out of range")
                    continue
                }
                restored.append(e)
            }
            events = Array(restored.prefix(Self.maxEvents))
        }
        if let v = version("schedules_version") { schedulesVersion = v }
        if let list = json["schedules"]?.arrayValue {
            remoteSchedules = list.compactMap { item in
                guard let o = item.objectValue else { return nil }
                return try? CommandParser.schedule(o, path: "")
            }
        }
        if let h = json["holidays"]?.objectValue {
            var out: [String: [String]] = [:]
            for (k, v) in h { out[k] = v.arrayValue?.compactMap(\.stringValue) ?? [] }
            remoteHolidays = out
        }
        rebuildCalendar()
        if let list = json["schedule_opt_outs"]?.arrayValue {
            scheduleOptOuts = list.compactMap { item in
                guard let id = item["id"]?.stringValue, let s = whole(item["start_ms"]), let e = whole(item["end_ms"]) else { return nil }
                let sched = calendar.schedules.first { $0.id == id }
                return ScheduleWindow(scheduleID: id, startMs: s, endMs: e, limitW: sched?.limitW ?? 0,
                                      primacy: sched?.primacy ?? 100, optOutAllowed: true)
            }
        }
        if let s = json["rng"]?.stringValue, let v = UInt64(s) { rng = SplitMix64(seed: v) }
        if let s = json["last_source"]?.stringValue { lastSource = s }
        if let t = json["last_target_w"]?.doubleValue, t.isFinite, t >= 0 { lastTargetW = t }
        if let r = json["restore"], let f = r["from_w"]?.doubleValue, let t = r["ramp_start_ms"]?.doubleValue {
            if f.isFinite, f >= 0, let t = whole(.number(t)) { restore = (f, t) } else { problems.append("restore out of range") }
        }
        return problems
    }
}
