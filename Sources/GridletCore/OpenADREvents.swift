/// OpenADR 3.1 event objects from a VTN -> gridlet dispatch windows (docs/openadr.md). Pure: the
/// VEN hands in what `GET /programs` and `GET /events` returned and the time; what comes out is
/// the complete set of OpenADR-sourced `DispatchEvent`s, for `ControlEngine.replaceOpenADR`, plus
/// what is shown but not enforced, and one line per thing it ignored, naming the object.
public struct OpenADREvents: Sendable, Equatable {
    /// Ids of OpenADR-sourced events start with this; MQTT commands may not use it.
    public static let idPrefix = "oadr:"
    /// At most this many windows are handed to the engine (its 256 stored events are shared with MQTT).
    public static let maxWindows = 192
    /// A window's length is capped here (`P9999Y` is OpenADR's infinity; the engine stores at most a year).
    public static let maxWindowMs: Int64 = 365 * 86_400_000

    /// What the mapping needs besides the objects.
    public struct Settings: Sendable, Equatable {
        /// The programme names the site follows.
        public var programs: [String]
        /// An event with targets applies when it names one of these (the VEN name, its resources,
        /// the configured targets).
        public var acceptedTargets: Set<String>
        /// `SIMPLE` level -> limit W (nil: no limit).
        public var simpleLevels: [Int: Double?]
        /// Seeds the randomizeStart draw: the same event gets the same offset at every poll and after
        /// a restart, and different sites get different ones (the agent uses its site id).
        public var randomSeed: UInt64
        /// The site has a bidirectional device: `EXPORT_CAPACITY_LIMIT` becomes the window's export
        /// limit; without one it is only shown.
        public var exportControl: Bool
        public init(programs: [String], acceptedTargets: Set<String>, simpleLevels: [Int: Double?] = [:], randomSeed: UInt64 = 0,
                    exportControl: Bool = false) {
            self.programs = programs; self.acceptedTargets = acceptedTargets; self.simpleLevels = simpleLevels
            self.randomSeed = randomSeed; self.exportControl = exportControl
        }
    }

    /// A payload shown but not enforced (`PRICE`, `EXPORT_PRICE`, and `EXPORT_CAPACITY_LIMIT` at a
    /// site without a bidirectional device).
    public struct InformationalInterval: Sendable, Equatable {
        public var eventID: String
        public var intervalID: Int
        public var startMs: Int64
        public var endMs: Int64
        public var type: String
        public var value: Double
        public var units: String?
        public var currency: String?
    }

    /// One VTN event as the VEN understood it, for `gridlet status`.
    public struct EventSummary: Sendable, Equatable {
        public var id: String
        public var name: String?
        public var programName: String
        public var priority: Int?
        public var modifiedMs: Int64?
        /// The dispatch ids its enforced windows got.
        public var windows: [String]
        /// Why it was ignored as a whole, if it was.
        public var ignored: String?
    }

    public struct Program: Sendable, Equatable {
        public var id: String
        public var name: String
        /// payloadType -> (units, currency) from the programme's payloadDescriptors.
        public var descriptors: [String: Descriptor]
    }

    public struct Descriptor: Sendable, Equatable {
        public var units: String?
        public var currency: String?
    }

    public var programs: [Program] = []
    public var windows: [DispatchEvent] = []
    /// The reports the events ask for that gridlet produces (`USAGE`, `OPERATING_STATE`; see
    /// OpenADRReports.swift), with the events' interval spans.
    public var reportRequests: [OpenADRReportRequest] = []
    public var informational: [InformationalInterval] = []
    public var events: [EventSummary] = []
    /// Every object (or part of one) that was ignored, with the reason.
    public var problems: [String] = []

    public init() {}

    /// The id of window `intervalID` (and sub-interval `sub`) of VTN event `eventID`:
    /// `oadr:<eventID>:<intervalID>[.<sub>]`; an event id too long for the 64-character limit of
    /// event ids is replaced by its 64-bit FNV-1a digest in hex.
    public static func windowID(eventID: String, intervalID: Int, sub: Int?) -> String {
        let tail = ":\(intervalID)" + (sub.map { ".\($0)" } ?? "")
        let plain = idPrefix + eventID + tail
        if plain.utf8.count <= 64 { return plain }
        let h = payloadDigest(Array(eventID.utf8))
        let hex = String(h, radix: 16)
        return idPrefix + String(repeating: "0", count: 16 - hex.count) + hex + tail
    }

    /// True for ids of OpenADR-sourced events.
    public static func owns(_ id: String) -> Bool { id.hasPrefix(idPrefix) }

    /// Maps the objects of one complete poll. `programObjects` is what `GET /programs` returned,
    /// `eventObjects` what `GET /events` returned for the followed programmes.
    public static func map(programObjects: [JSONValue], eventObjects: [JSONValue], settings: Settings, nowMs: Int64) -> OpenADREvents {
        var out = OpenADREvents()
        for (i, p) in programObjects.enumerated() {
            guard let id = p["id"]?.stringValue, let name = p["programName"]?.stringValue else {
                out.problems.append("programme [\(i)] has no id or programName; ignored")
                continue
            }
            guard settings.programs.contains(name) else { continue }
            if out.programs.contains(where: { $0.name == name }) {
                out.problems.append("programme '\(name)' (id \(id)) is listed twice by the VTN; the first one is followed")
                continue
            }
            out.programs.append(Program(id: id, name: name, descriptors: descriptors(p["payloadDescriptors"])))
        }
        for name in settings.programs where !out.programs.contains(where: { $0.name == name }) {
            out.problems.append("programme '\(name)' is not offered by the VTN (not in GET /programs)")
        }
        var seen: Set<String> = []
        for (i, e) in eventObjects.enumerated() {
            var mapper = EventMapper(object: e, index: i, settings: settings, nowMs: nowMs, programs: out.programs)
            guard let summary = mapper.run() else {
                out.problems += mapper.problems
                continue
            }
            if seen.contains(summary.id) {
                out.problems.append("event '\(summary.id)' is listed twice by the VTN; the first one is used")
                continue
            }
            seen.insert(summary.id)
            out.events.append(summary)
            out.windows += mapper.windows
            out.informational += mapper.informational
            out.reportRequests += mapper.reportRequests
            out.problems += mapper.problems
        }
        out.windows.sort { $0.startMs != $1.startMs ? $0.startMs < $1.startMs : $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
        if out.windows.count > maxWindows {
            out.problems.append("the VTN's events have \(out.windows.count) windows; only the first \(maxWindows) are kept")
            let dropped = Set(out.windows[maxWindows...].map(\.id))
            out.windows.removeLast(out.windows.count - maxWindows)
            for i in out.events.indices { out.events[i].windows.removeAll { dropped.contains($0) } }
        }
        out.windows.sort { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
        if out.informational.count > 256 { out.informational.removeLast(out.informational.count - 256) }
        return out
    }

    static func descriptors(_ v: JSONValue?) -> [String: Descriptor] {
        var d: [String: Descriptor] = [:]
        for item in v?.arrayValue ?? [] {
            guard let t = item["payloadType"]?.stringValue, d[t] == nil else { continue }
            d[t] = Descriptor(units: item["units"]?.stringValue, currency: item["currency"]?.stringValue)
        }
        return d
    }
}

/// One event object -> its windows. Collects problems instead of failing, so one bad interval
/// does not hide the rest of the event.
private struct EventMapper {
    let object: JSONValue
    let index: Int
    let settings: OpenADREvents.Settings
    let nowMs: Int64
    let programs: [OpenADREvents.Program]
    var windows: [DispatchEvent] = []
    var informational: [OpenADREvents.InformationalInterval] = []
    var reportRequests: [OpenADRReportRequest] = []
    var problems: [String] = []

    init(object: JSONValue, index: Int, settings: OpenADREvents.Settings, nowMs: Int64, programs: [OpenADREvents.Program]) {
        self.object = object; self.index = index; self.settings = settings; self.nowMs = nowMs; self.programs = programs
    }

    static let limitTypes: Set<String> = ["IMPORT_CAPACITY_LIMIT", "DISPATCH_SETPOINT", "SIMPLE"]
    static let shownTypes: Set<String> = ["EXPORT_CAPACITY_LIMIT", "PRICE", "EXPORT_PRICE"]
    /// Power units accepted for limits, as the factor to W. `W` is not in the OpenADR enumeration
    /// but is a natural private string; absent units mean kW (the enumeration's power unit).
    static let powerUnits: [String: Double] = ["KW": 1000, "W": 1]
    /// The import limit of a window that only limits export: none of its own (the engine's largest
    /// limit; hardware and site limits bind).
    static let noImportLimitW = 10_000_000.0

    /// The summary, or nil when the whole event is ignored (the reason is in `problems`).
    mutating func run() -> OpenADREvents.EventSummary? {
        guard object.objectValue != nil else {
            problems.append("event [\(index)] is not a JSON object; ignored")
            return nil
        }
        guard let id = object["id"]?.stringValue, isObjectID(id) else {
            problems.append("event [\(index)] has no valid id; ignored")
            return nil
        }
        let label = "event '\(id)'"
        if let t = object["objectType"], t.stringValue != "EVENT" {
            problems.append("\(label): objectType is \(t.serialized), not \"EVENT\"; ignored")
            return nil
        }
        guard let programID = object["programID"]?.stringValue else {
            problems.append("\(label) has no programID; ignored")
            return nil
        }
        guard let program = programs.first(where: { $0.id == programID }) else {
            problems.append("\(label) belongs to programme id \(programID), which this site does not follow; ignored")
            return nil
        }
        var summary = OpenADREvents.EventSummary(id: id, name: object["eventName"]?.stringValue, programName: program.name,
                                                 priority: nil, modifiedMs: nil, windows: [], ignored: nil)
        func ignore(_ why: String) -> OpenADREvents.EventSummary? {
            problems.append("\(label) (programme \(program.name)): \(why); ignored")
            return nil
        }
        if let targets = object["targets"], targets != .null {
            guard let list = targets.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                return ignore("targets is not a list of strings")
            }
            let names = list.compactMap(\.stringValue)
            if !names.isEmpty, !names.contains(where: settings.acceptedTargets.contains) {
                return ignore("its targets \(names) name none of this site's (\(settings.acceptedTargets.sorted()))")
            }
        }
        var primacy = 64
        if let p = object["priority"], p != .null {
            guard let d = p.doubleValue, d >= 0, d == d.rounded(), d < 1e9 else { return ignore("priority \(p.serialized) is not an integer >= 0") }
            summary.priority = Int(d)
            primacy = min(Int(d), 64)
        }
        var createdAtReceipt = false
        var created = nowMs
        if let m = (object["modificationDateTime"] ?? object["createdDateTime"])?.stringValue {
            guard let ms = Timestamp.parse(m) else { return ignore("modificationDateTime '\(m)' is not an RFC 3339 time") }
            created = ms
            summary.modifiedMs = ms
        } else {
            createdAtReceipt = true
        }
        // 'Do it now' (no start, or the 0001-01-01 marker): from when the VTN created the event, so
        // the window is the same at every poll and after a restart.
        let createdMs = object["createdDateTime"]?.stringValue.flatMap(Timestamp.parse)
        var descriptors = program.descriptors
        for (k, v) in OpenADREvents.descriptors(object["payloadDescriptors"]) { descriptors[k] = v }

        let eventPeriod = object["intervalPeriod"]
        guard let period = Period(eventPeriod, outer: nil) else {
            return ignore("intervalPeriod \(eventPeriod?.serialized ?? "") is not valid (start RFC 3339, durations ISO 8601)")
        }
        var eventEndMs: Int64?   // event.duration clips the intervals
        if let d = object["duration"], d != .null {
            guard let s = d.stringValue, let ms = ISODuration.parseMs(s) else { return ignore("duration \(d.serialized) is not an ISO 8601 duration") }
            eventEndMs = ms == ISODuration.infinite ? nil : ms   // relative to the first start; resolved below
        }
        guard let intervals = object["intervals"]?.arrayValue else { return ignore("it has no intervals list") }

        // randomizeStart: one draw per event, the same for every interval (they stay contiguous),
        // stable across polls and restarts (a hash of the seed and the event id), in [0, randomizeStart].
        let randomizeMs = period.randomizeMs ?? intervals.first.flatMap { Period($0["intervalPeriod"], outer: nil)?.randomizeMs } ?? 0
        let offset = randomizeMs > 0 ? Int64(payloadDigest(Array("\(settings.randomSeed):\(id)".utf8)) % UInt64(min(randomizeMs, 86_400_000) + 1)) : 0

        var previousEnd: Int64? = nil
        var firstStart: Int64? = nil
        var intervalIDs: Set<Int> = []
        var spans: [OpenADRReportRequest.Span] = []
        for (i, interval) in intervals.enumerated() {
            let where_ = "\(label) interval [\(i)]"
            guard let idValue = interval["id"]?.doubleValue, idValue == idValue.rounded(), abs(idValue) < 2_147_483_648 else {
                problems.append("\(where_) has no integer id; ignored")
                previousEnd = nil
                continue
            }
            let intervalID = Int(idValue)
            guard !intervalIDs.contains(intervalID) else {
                problems.append("\(where_): interval id \(intervalID) is used twice; ignored")
                continue
            }
            intervalIDs.insert(intervalID)
            guard let own = Period(interval["intervalPeriod"], outer: period) else {
                problems.append("\(where_) (id \(intervalID)): intervalPeriod is not valid; ignored")
                previousEnd = nil
                continue
            }
            // Start: the interval's own absolute start, else the event's for the first interval,
            // else right after the previous interval; none at all = 'do it now' (the first receipt).
            var start: Int64
            if let s = own.ownStartMs {
                start = s + offset
            } else if i == 0 {
                if let s = period.ownStartMs {
                    start = s + offset
                } else if let c = createdMs {
                    start = c + offset
                } else {
                    return ignore("it starts 'now' but has no createdDateTime to anchor that")
                }
            } else if let p = previousEnd {
                start = p
            } else {
                problems.append("\(where_) (id \(intervalID)) has no start and follows an interval without an end; ignored")
                continue
            }
            guard let durationMs = own.durationMs else {
                problems.append("\(where_) (id \(intervalID)) has no duration; ignored")
                previousEnd = nil
                continue
            }
            if firstStart == nil { firstStart = start }
            var end = durationMs == ISODuration.infinite ? Int64.max : start + durationMs
            previousEnd = end == Int64.max ? nil : end
            if let clip = eventEndMs, let first = firstStart { end = min(end, first + clip) }
            end = min(end, start + OpenADREvents.maxWindowMs)
            guard end > start else { continue }
            spans.append(.init(id: intervalID, startMs: start, endMs: end))
            mapPayloads(interval["payloads"], label: "\(where_) (id \(intervalID))", eventID: id, intervalID: intervalID,
                        startMs: start, endMs: end, descriptors: descriptors, created: created, createdAtReceipt: createdAtReceipt,
                        primacy: primacy)
        }
        summary.windows = windows.map(\.id)
        reportRequests = OpenADRReportRequest.parse(object["reportDescriptors"], label: label, eventID: id, programID: programID,
                                                    spans: spans, acceptedTargets: settings.acceptedTargets, problems: &problems)
        // An event that asks for OPERATING_STATE reports can be told of a local opt-out: its windows
        // allow one (docs/openadr.md, "Opt-out").
        if reportRequests.contains(where: { $0.kind == .operatingState }) {
            for i in windows.indices { windows[i].optOutAllowed = true }
        }
        return summary
    }

    mutating func mapPayloads(_ payloads: JSONValue?, label: String, eventID: String, intervalID: Int, startMs: Int64, endMs: Int64,
                              descriptors: [String: OpenADREvents.Descriptor], created: Int64, createdAtReceipt: Bool,
                              primacy: Int) {
        guard let list = payloads?.arrayValue else {
            problems.append("\(label) has no payloads list; ignored")
            return
        }
        // Each limit payload as its limits in W per sub-interval (nil = no limit in it).
        var limitSets: [(type: String, limits: [Double?])] = []
        var exportSets: [[Double]] = []
        for p in list {
            guard let type = p["type"]?.stringValue, let values = p["values"]?.arrayValue, !values.isEmpty else {
                problems.append("\(label): a payload without type or values; ignored")
                continue
            }
            let units = descriptors[type]?.units
            if type == "EXPORT_CAPACITY_LIMIT" && settings.exportControl {
                guard let factor = Self.powerUnits[(units ?? "KW").uppercased()] else {
                    problems.append("\(label): \(type) in units \(units ?? "") (gridlet takes KW or W); ignored")
                    continue
                }
                var xs: [Double] = []
                for v in values {
                    guard let d = v.doubleValue, d >= 0, d * factor <= 10_000_000 else {
                        problems.append("\(label): \(type) value \(v.serialized) is not a power between 0 and 10 MW; ignored")
                        xs = []
                        break
                    }
                    xs.append(d * factor)
                }
                if !xs.isEmpty { exportSets.append(xs) }
                continue
            }
            if Self.shownTypes.contains(type) {
                let subMs = (endMs - startMs) / Int64(values.count)
                for (k, v) in values.enumerated() {
                    guard let d = v.doubleValue else {
                        problems.append("\(label): \(type) value \(v.serialized) is not a number; ignored")
                        continue
                    }
                    informational.append(.init(eventID: eventID, intervalID: intervalID, startMs: startMs + Int64(k) * subMs,
                                               endMs: k == values.count - 1 ? endMs : startMs + Int64(k + 1) * subMs, type: type,
                                               value: d, units: units, currency: descriptors[type]?.currency))
                }
                continue
            }
            guard Self.limitTypes.contains(type) else {
                problems.append("\(label): payload type \(type) is not one gridlet acts on; ignored")
                continue
            }
            var limits: [Double?] = []
            if type == "SIMPLE" {
                guard !settings.simpleLevels.isEmpty else {
                    problems.append("\(label): SIMPLE payload but openadr.simple_levels is not configured; ignored")
                    continue
                }
                for v in values {
                    guard let d = v.doubleValue, d == d.rounded(), (0...3).contains(d) else {
                        problems.append("\(label): SIMPLE value \(v.serialized) is not a level 0 to 3; ignored")
                        limits = []
                        break
                    }
                    limits.append(settings.simpleLevels[Int(d)] ?? nil)
                }
            } else {
                guard let factor = Self.powerUnits[(units ?? "KW").uppercased()] else {
                    problems.append("\(label): \(type) in units \(units ?? "") (gridlet takes KW or W); ignored")
                    continue
                }
                for v in values {
                    guard let d = v.doubleValue, d >= 0, d * factor <= 10_000_000 else {
                        problems.append("\(label): \(type) value \(v.serialized) is not a power between 0 and 10 MW; ignored")
                        limits = []
                        break
                    }
                    limits.append(d * factor)
                }
            }
            if !limits.isEmpty { limitSets.append((type, limits)) }
        }
        guard !limitSets.isEmpty || !exportSets.isEmpty else { return }
        // Several limit payloads in one interval: the lowest applies; with sub-intervals only one may be given.
        var combined: [Double?] = []
        if limitSets.count == 1 {
            combined = limitSets[0].limits
        } else if limitSets.count > 1 {
            guard limitSets.allSatisfy({ $0.limits.count == 1 }) else {
                problems.append("\(label): several limit payloads with several values each cannot be combined; ignored")
                return
            }
            let present = limitSets.compactMap { $0.limits[0] }
            combined = [present.min()]
        }
        var exports: [Double] = []
        if exportSets.count == 1 {
            exports = exportSets[0]
        } else if exportSets.count > 1 {
            guard exportSets.allSatisfy({ $0.count == 1 }) else {
                problems.append("\(label): several EXPORT_CAPACITY_LIMIT payloads with several values each cannot be combined; ignored")
                return
            }
            exports = [exportSets.map { $0[0] }.min()!]
        }
        // Import and export limits side by side: one window per sub-interval, a single value applying to all.
        let n = max(combined.count, exports.count)
        guard combined.count <= 1 || combined.count == n, exports.count <= 1 || exports.count == n else {
            problems.append("\(label): import and export limits with different numbers of values cannot be combined; ignored")
            return
        }
        let subMs = (endMs - startMs) / Int64(n)
        for k in 0..<n {
            let limit: Double? = combined.isEmpty ? nil : combined[combined.count == 1 ? 0 : k]
            let exportLimit: Double? = exports.isEmpty ? nil : exports[exports.count == 1 ? 0 : k]
            guard limit != nil || exportLimit != nil else { continue }   // SIMPLE level without a limit: normal operation
            let s = startMs + Int64(k) * subMs
            let e = k == n - 1 ? endMs : s + subMs
            guard e > nowMs, e > s else { continue }   // over already: the engine completed it (or never needed it)
            let id = OpenADREvents.windowID(eventID: eventID, intervalID: intervalID, sub: n > 1 ? k : nil)
            var w = DispatchEvent(id: id, createdMs: created, startMs: s, durationMs: e - s, limitW: limit ?? Self.noImportLimitW,
                                  primacy: primacy, createdAtReceipt: createdAtReceipt)
            w.exportLimitW = exportLimit
            windows.append(w)
        }
    }
}

/// An `intervalPeriod`, with the event's as defaults for an interval's.
private struct Period {
    /// The absolute start written here (nil when absent or the 0001-01-01 'now' marker).
    var ownStartMs: Int64?
    var durationMs: Int64?
    var randomizeMs: Int64?

    init?(_ v: JSONValue?, outer: Period?) {
        durationMs = outer?.durationMs
        randomizeMs = nil
        guard let v, v != .null else { return }
        guard v.objectValue != nil else { return nil }
        if let s = v["start"], s != .null {
            guard let text = s.stringValue else { return nil }
            if !text.hasPrefix("0001-01-01") {
                guard let ms = Timestamp.parse(text) else { return nil }
                ownStartMs = ms
            }
        }
        if let d = v["duration"], d != .null {
            guard let text = d.stringValue, let ms = ISODuration.parseMs(text) else { return nil }
            durationMs = ms
        }
        if let r = v["randomizeStart"], r != .null {
            guard let text = r.stringValue, let ms = ISODuration.parseMs(text) else { return nil }
            randomizeMs = ms
        }
    }
}

/// OpenADR's objectID: 1 to 128 characters of [A-Za-z0-9_-].
private func isObjectID(_ s: String) -> Bool {
    let u = s.utf8
    return (1...128).contains(u.count) && u.allSatisfy { c in
        (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F || c == 0x2D
    }
}
