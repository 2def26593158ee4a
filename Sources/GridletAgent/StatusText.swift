import GridletCore

/// `gridlet status` for people: the daemon's status JSON (and the next planned transitions from
/// `schedule`) as text with units, local times in the site's zone with their age, the source
/// explained, and problems first, in words. Pure: the caller passes the time and the zone.
public struct StatusText {
    public var status: JSONValue
    /// `transitions` of the daemon's `schedule` answer (may be empty): what the source becomes next.
    public var transitions: [JSONValue]
    public var nowMs: Int64
    public var zone: TimeZoneRules

    public init(status: JSONValue, transitions: [JSONValue] = [], nowMs: Int64, zone: TimeZoneRules) {
        self.status = status; self.transitions = transitions; self.nowMs = nowMs; self.zone = zone
    }

    /// A queue whose oldest record is older than this while the broker is connected is not draining.
    public static let drainingWithinS = 60.0

    /// The site's zone by name (`status.site.timezone`), UTC when it cannot be loaded.
    public static func zone(named name: String?) -> TimeZoneRules {
        guard let name, let z = try? Agent.loadZone(name) else { return .utc }
        return z
    }

    public struct Problem: Equatable {
        /// For the one-line summary.
        public var short: String
        public var detail: String
    }

    var state: JSONValue? { status["state"] }

    // MARK: problems

    /// What needs attention, causes before their consequences (a charger not answering, then the
    /// derate it causes).
    public var problems: [Problem] {
        var out: [Problem] = []
        let mqtt = status["mqtt"]
        let broker = mqtt?["broker"]?.stringValue ?? "the broker"
        let records = Int(status["queue"]?["records"]?.doubleValue ?? 0)
        if mqtt?["connected"]?.boolValue == false {
            var d = "broker \(broker) unreachable"
            if let t = timestamp(mqtt?["last_contact"]) { d += " since \(when(t))" }
            if let e = mqtt?["last_error"]?.stringValue { d += " (\(e))" }
            d += records > 0 ? "; \(records) record\(records == 1 ? "" : "s") wait in the queue" : "; records wait in the queue"
            out.append(Problem(short: "broker unreachable", detail: d))
        }
        if state?["comm"]?["ok"]?.boolValue == false {
            var d = "utility link lost"
            if let t = timestamp(state?["comm"]?["since"]) { d += " since \(when(t))" }
            d += ": running the fallback limit (events already received keep running)"
            out.append(Problem(short: "utility link lost", detail: d))
        }
        let devices = state?["devices"]?.objectValue ?? []
        for (name, h) in devices where h["ok"]?.boolValue == false {
            var d = "\(name) not answering"
            if let e = status["devices"]?[name]?["error"]?.stringValue { d += ": \(e)" }
            if let t = timestamp(h["last_seen"]) { d += "; last reading \(when(t))" } else { d += "; no reading since the start" }
            out.append(Problem(short: "\(name) not answering", detail: d))
        }
        if let src = state?["source"]?.stringValue, src.hasPrefix("derate:") {
            let reason = String(src.dropFirst(7))
            if reason == "meter_stale" {
                out.append(Problem(short: "site meter stale", detail: "site meter stale: no fresh reading, limit derated to the fallback"))
            } else {
                let device = reason.hasSuffix("_fault") ? String(reason.dropLast(6)) : reason
                out.append(Problem(short: "derated: \(device) fault",
                                   detail: "limit derated to the fallback: charger \(device) does not answer or reports a fault"))
            }
        }
        if mqtt?["connected"]?.boolValue == true, records > 0, let age = status["queue"]?["oldest_age_s"]?.doubleValue,
           age > Self.drainingWithinS {
            out.append(Problem(short: "queue not draining",
                               detail: "queue not draining: \(records) record\(records == 1 ? "" : "s"), the oldest \(duration(age)) old, while the broker is connected"))
        }
        if let e = status["queue"]?["last_error"]?.stringValue {
            let failed = status["queue"]?["ok"]?.boolValue == false
            out.append(Problem(short: failed ? "queue failed" : "queue I/O error",
                               detail: (failed ? "queue FAILED, refusing writes: " : "queue recovered from an I/O error: ")
                                   + "\(e); check the disk under site.state_dir (operations.md, \"Queue I/O error\")"))
        }
        if let o = status["openadr"], o != .null, o["ok"]?.boolValue == false {
            out.append(Problem(short: "VTN failing",
                               detail: "OpenADR VTN \(o["vtn"]?.stringValue ?? "?") failing: \(o["last_error"]?["message"]?.stringValue ?? "?"); see docs/openadr.md"))
        }
        if let dropped = mqtt?["commands_dropped"]?.doubleValue, dropped > 0 {
            out.append(Problem(short: "commands dropped",
                               detail: "\(Int(dropped)) command\(dropped == 1 ? "" : "s") dropped unanswered (mailbox full); the sender re-sends what got no reply"))
        }
        if state?["clock_synced"]?.boolValue == false {
            out.append(Problem(short: "clock not synchronised",
                               detail: "clock not synchronised: times may be off; check NTP (timedatectl status)"))
        }
        return out
    }

    // MARK: the source in words

    /// `dispatch evt-1 until 14:00, then default`.
    public var sourceExplained: String {
        let src = state?["source"]?.stringValue ?? "default"
        let next = transitions.first
        let nextAt = timestamp(next?["at"])
        let nextSource = next?["source"]?.stringValue.map(Self.sourceWords)
        var text: String
        switch src {
        case "fallback":
            text = "fallback (utility link lost)"
        case "site_limit":
            text = "site limit (max_import_w minus the other site load)"
        case "default":
            text = "default (no event or schedule)"
            if let at = nextAt, let s = nextSource { return text + "; next: \(s) at \(clockTime(at, seconds: false))" }
            return text
        default:
            text = Self.sourceWords(src)
            if src.hasPrefix("derate:") { return text }
        }
        let until = nextAt ?? timestamp(state?["next_transition"])
        if let u = until { text += " until \(clockTime(u, seconds: false))" }
        if let s = nextSource { text += ", then \(s)" }
        return text
    }

    static func sourceWords(_ s: String) -> String {
        if s.hasPrefix("dispatch:") { return "dispatch \(s.dropFirst(9))" }
        if s.hasPrefix("schedule:") { return "schedule \(s.dropFirst(9))" }
        if s == "derate:meter_stale" { return "derated (site meter stale)" }
        if s.hasPrefix("derate:") { return "derated (\(String(s.dropFirst(7)).replacingUnderscores()))" }
        return s.replacingUnderscores()
    }

    // MARK: text

    /// The full report: header, problems, control, links, devices.
    public func render() -> String {
        var lines: [String] = []
        func row(_ label: String, _ text: String) { lines.append(label.padded(11) + text) }
        let site = status["site"]?["id"]?.stringValue ?? "?"
        lines.append("gridlet \(site), \(clockTime(nowMs)) (\(zone.name))")
        let ps = problems
        if ps.isEmpty { row("problems", "none") }
        for p in ps { row("PROBLEM", p.detail) }
        row("limit", limitText)
        row("source", sourceExplained)
        let events = (state?["events"]?.arrayValue ?? []).compactMap(\.stringValue)
        if !events.isEmpty { row("events", events.joined(separator: ", ")) }
        if let comm = state?["comm"] {
            let since = timestamp(comm["since"]).map { " since \(when($0))" } ?? ""
            row("comm", (comm["ok"]?.boolValue == true ? "ok" : "LOST") + since)
        }
        row("clock", state?["clock_synced"]?.boolValue == false ? "NOT synchronised" : "synchronised")
        let mqtt = status["mqtt"]
        row("broker", (mqtt?["connected"]?.boolValue == true ? "connected to " : "NOT connected to ") + (mqtt?["broker"]?.stringValue ?? "?"))
        if let o = status["openadr"], o != .null {
            let state = o["ok"]?.boolValue == true ? "ok" : "FAILING: " + (o["last_error"]?["message"]?.stringValue ?? "?")
            let last = timestamp(o["last_poll"]).map { ", last poll " + when($0) } ?? ""
            row("openadr", "\(o["vtn"]?.stringValue ?? "?") \(state)\(last), \((o["events"]?.arrayValue ?? []).count) event(s)")
            if let r = o["reports"], r != .null {
                var text = "\(Int(r["queued"]?.doubleValue ?? 0)) queued, \(Int(r["delivered"]?.doubleValue ?? 0)) delivered, \(Int(r["dropped"]?.doubleValue ?? 0)) dropped"
                if let l = r["last"], l != .null {
                    text += "; last \(l["report"]?.stringValue ?? "?"): \(l["result"]?.stringValue ?? "?")"
                    if let at = timestamp(l["at"]) { text += " " + when(at) }
                }
                if let n = timestamp(r["next_try"]) { text += "; next try " + when(n) }
                row("reports", text)
            }
            if let reg = o["registration"], reg != .null {
                let entries = [reg["ven"]].compactMap { $0 } + (reg["resources"]?.arrayValue ?? [])
                let states = entries.map { "\($0["name"]?.stringValue ?? "?") \($0["state"]?.stringValue.map { $0.replacingUnderscores() } ?? "?")" }
                var text = states.joined(separator: ", ")
                if let problem = entries.first(where: { $0["message"]?.stringValue != nil })?["message"]?.stringValue { text += ": " + problem }
                row("registered", text)
            }
        }
        row("queue", queueText)
        for (name, d) in status["devices"]?.objectValue ?? [] { row(name, deviceText(name, d)) }
        for (name, b) in status["buses"]?.objectValue ?? [] {
            let direction = b["rs485_direction"]?.stringValue.map { ", RS-485 direction: \($0)" } ?? ""
            row("bus", "\(name): \(b["endpoint"]?.stringValue ?? "?")\(direction)")
        }
        return lines.joined(separator: "\n")
    }

    /// One line for a live view: `13:02:11 EDT  dispatch evt-1 until 14:00  limit 4.80 kW  6 A  meter 2.33 kW  queue 0  ok`.
    public func line() -> String {
        var parts = [clockTime(nowMs), sourceExplained.split(separator: ",").first.map(String.init) ?? "", "limit \(limitPower)"]
        if state?["paused"]?.boolValue == true { parts.append("paused") } else if let a = state?["applied_a"]?.doubleValue, a > 0 {
            parts.append("\(Self.number(a, 0)) A")
        }
        for (name, d) in status["devices"]?.objectValue ?? [] {
            if let w = d["power_w"]?.doubleValue { parts.append("\(name) \(Self.power(w))") }
        }
        parts.append("queue \(Int(status["queue"]?["records"]?.doubleValue ?? 0))")
        let ps = problems
        parts.append(ps.isEmpty ? "ok" : "! " + ps.map(\.short).joined(separator: "; "))
        return parts.joined(separator: "  ")
    }

    var limitPower: String { state?["limit_w"]?.doubleValue.map(Self.power) ?? "?" }

    var limitText: String {
        var t = limitPower
        if state?["paused"]?.boolValue == true {
            t += ", chargers paused (0 A)"
        } else if let a = state?["applied_a"]?.doubleValue, a > 0 {
            t += ", chargers at \(Self.number(a, a == a.rounded() ? 0 : 1)) A"
        }
        return t
    }

    var queueText: String {
        let q = status["queue"]
        let records = Int(q?["records"]?.doubleValue ?? 0)
        guard records > 0 else { return "empty" }
        var t = "\(records) record\(records == 1 ? "" : "s")"
        if let b = q?["bytes"]?.doubleValue { t += " (\(Self.bytes(b)))" }
        if let age = q?["oldest_age_s"]?.doubleValue { t += ", the oldest \(duration(age)) old" }
        return t
    }

    func deviceText(_ name: String, _ d: JSONValue) -> String {
        guard d["ok"]?.boolValue == true else { return "NOT ANSWERING: \(d["error"]?.stringValue ?? "no reading yet")" }
        var parts: [String] = []
        if let w = d["power_w"]?.doubleValue { parts.append(Self.power(w)) }
        if let v = d["voltage_v"]?.arrayValue?.compactMap(\.doubleValue), !v.isEmpty {
            parts.append(v.map { Self.number($0, 1) }.joined(separator: " / ") + " V")
        }
        if let a = d["current_a"]?.arrayValue?.compactMap(\.doubleValue), !a.isEmpty {
            parts.append(a.map { Self.number($0, 1) }.joined(separator: " / ") + " A")
        }
        if let f = d["frequency_hz"]?.doubleValue { parts.append(Self.number(f, 2) + " Hz") }
        if let e = d["import_wh"]?.doubleValue { parts.append("import " + Self.number(e / 1000, 1) + " kWh") }
        if let e = d["export_wh"]?.doubleValue { parts.append("export " + Self.number(e / 1000, 1) + " kWh") }
        if let c = d["charging"]?.boolValue { parts.append(c ? "charging" : "not charging") }
        var text = parts.joined(separator: "   ")
        if let t = timestamp(state?["devices"]?[name]?["last_seen"]) { text += "   (\(when(t)))" }
        return text
    }

    // MARK: units and times

    func timestamp(_ v: JSONValue?) -> Int64? { v?.stringValue.flatMap(Timestamp.parse) }

    /// `13:02:11 EDT`; with the date when it is not today's local date.
    func clockTime(_ ms: Int64, seconds: Bool = true) -> String {
        let l = zone.local(fromUTC: ms)
        let today = zone.local(fromUTC: nowMs)
        var t = Self.two(l.hour) + ":" + Self.two(l.minute)
        if seconds { t += ":" + Self.two(l.second) }
        if (l.year, l.month, l.day) != (today.year, today.month, today.day) {
            t = "\(l.year)-\(Self.two(l.month))-\(Self.two(l.day)) " + t
        }
        return seconds ? t + " " + zone.abbreviation(atUTC: ms) : t
    }

    /// `13:02:11 EDT, 2 s ago` (or `in 5 min`).
    func when(_ ms: Int64) -> String {
        let s = Double(nowMs - ms) / 1000
        return clockTime(ms) + ", " + (s >= 0 ? "\(duration(s)) ago" : "in \(duration(-s))")
    }

    /// `2 s`, `4 min`, `3 h`, `2 d` (rounded down).
    func duration(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min" }
        if s < 86_400 { return "\(s / 3600) h" }
        return "\(s / 86_400) d"
    }

    /// `850 W`, `2.33 kW`.
    static func power(_ w: Double) -> String { abs(w) >= 1000 ? number(w / 1000, 2) + " kW" : number(w, 0) + " W" }

    static func bytes(_ b: Double) -> String {
        if b >= 1_048_576 { return number(b / 1_048_576, 1) + " MiB" }
        if b >= 1024 { return number(b / 1024, 1) + " KiB" }
        return number(b, 0) + " B"
    }

    /// Fixed decimals without Foundation: `number(231.7046, 1)` = `231.7`.
    static func number(_ v: Double, _ decimals: Int) -> String {
        guard v.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let n = (abs(v) * scale).rounded()
        guard n < 9e15 else { return JSONValue.format(v) }
        let units = Int64(n)
        let whole = units / Int64(scale)
        let frac = units % Int64(scale)
        var t = (v < 0 && units != 0 ? "-" : "") + String(whole)
        if decimals > 0 {
            let f = String(frac)
            t += "." + String(repeating: "0", count: decimals - f.count) + f
        }
        return t
    }

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}

extension String {
    func padded(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
    func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}
