/// OpenADR 3.1 reports (docs/openadr.md, "Reports"). Pure: what an event's `reportDescriptors`
/// ask for (`OpenADRReportRequest`), the `USAGE` report per ledger interval built from the energy
/// ledger's records (`UsageReporter`), and when a report that failed is tried again
/// (`ReportBackoff`, `ReportDelivery`). The VEN's thread posts them; the agent queues them.

/// A report an event asks for and gridlet produces, with the event's interval spans (the report's
/// interval ids come from them, User Guide 7.5 "interval id").
public struct OpenADRReportRequest: Sendable, Equatable {
    public enum Kind: String, Sendable { case usage = "USAGE", operatingState = "OPERATING_STATE" }
    public struct Span: Sendable, Equatable {
        public var id: Int
        public var startMs: Int64
        public var endMs: Int64
        public init(id: Int, startMs: Int64, endMs: Int64) { self.id = id; self.startMs = startMs; self.endMs = endMs }
    }
    public var kind: Kind
    public var eventID: String
    public var programID: String
    /// `KWH` or `WH` for `USAGE` (the descriptor's, `KWH` when absent); nil for `OPERATING_STATE`.
    public var units: String?
    public var spans: [Span]

    public init(kind: Kind, eventID: String, programID: String, units: String?, spans: [Span]) {
        self.kind = kind; self.eventID = eventID; self.programID = programID; self.units = units; self.spans = spans
    }

    /// The span that holds `fromMs`, else the first one overlapping `fromMs..<toMs`.
    public func span(overlapping fromMs: Int64, _ toMs: Int64) -> Span? {
        spans.first { $0.startMs <= fromMs && fromMs < $0.endMs } ?? spans.first { $0.startMs < toMs && fromMs < $0.endMs }
    }

    /// End of the last span (nil without spans).
    public var endMs: Int64? { spans.map(\.endMs).max() }

    /// Energy units gridlet reports in, as the factor from mWh.
    static let energyUnits: [String: Double] = ["KWH": 1e-6, "WH": 1e-3]

    /// The requests in an event's `reportDescriptors`; one problem line per descriptor ignored.
    static func parse(_ v: JSONValue?, label: String, eventID: String, programID: String, spans: [Span],
                      acceptedTargets: Set<String>, problems: inout [String]) -> [OpenADRReportRequest] {
        guard let v, v != .null else { return [] }
        guard let list = v.arrayValue else {
            problems.append("\(label): reportDescriptors is not a list; no reports for it")
            return []
        }
        var out: [OpenADRReportRequest] = []
        for (k, d) in list.enumerated() {
            let at = "\(label) reportDescriptors[\(k)]"
            guard d.objectValue != nil, let type = d["payloadType"]?.stringValue else {
                problems.append("\(at) has no payloadType; ignored")
                continue
            }
            if let t = d["targets"], t != .null {
                guard let names = t.arrayValue?.compactMap(\.stringValue), names.count == t.arrayValue?.count else {
                    problems.append("\(at) (\(type)): targets is not a list of strings; ignored")
                    continue
                }
                if !names.isEmpty, !names.contains(where: acceptedTargets.contains) {
                    problems.append("\(at) (\(type)): its targets \(names) name none of this site's; not reported")
                    continue
                }
            }
            switch type {
            case Kind.usage.rawValue:
                if d["historical"]?.boolValue == false {
                    problems.append("\(at) (USAGE): a forecast (historical: false) is not produced; ignored")
                    continue
                }
                let units = (d["units"]?.stringValue ?? "KWH").uppercased()
                guard energyUnits[units] != nil else {
                    problems.append("\(at) (USAGE): units \(d["units"]?.serialized ?? "") (gridlet reports KWH or WH); ignored")
                    continue
                }
                guard !spans.isEmpty else {
                    problems.append("\(at) (USAGE): the event has no intervals to report on; ignored")
                    continue
                }
                guard !out.contains(where: { $0.kind == .usage }) else { continue }
                out.append(.init(kind: .usage, eventID: eventID, programID: programID, units: units, spans: spans))
            case Kind.operatingState.rawValue:
                guard !out.contains(where: { $0.kind == .operatingState }) else { continue }
                out.append(.init(kind: .operatingState, eventID: eventID, programID: programID, units: nil, spans: spans))
            default:
                problems.append("\(at): report type \(type) is not one gridlet produces; ignored")
            }
        }
        return out
    }

    var json: JSONValue {
        .object([("kind", .string(kind.rawValue)), ("event", .string(eventID)), ("program", .string(programID)),
                 ("units", units.map { .string($0) } ?? .null),
                 ("spans", .array(spans.map { .array([.number(Double($0.id)), .number(Double($0.startMs)), .number(Double($0.endMs))]) }))])
    }

    init?(json v: JSONValue) {
        guard let k = v["kind"]?.stringValue.flatMap(Kind.init(rawValue:)), let e = v["event"]?.stringValue,
              let p = v["program"]?.stringValue, let s = v["spans"]?.arrayValue else { return nil }
        var spans: [Span] = []
        for x in s {
            guard let a = x.arrayValue, a.count == 3, let i = a[0].doubleValue, let f = a[1].doubleValue, let t = a[2].doubleValue,
                  abs(i) < 2_147_483_648, abs(f) < 9e15, abs(t) < 9e15 else { return nil }
            spans.append(Span(id: Int(i), startMs: Int64(f), endMs: Int64(t)))
        }
        self.init(kind: k, eventID: e, programID: p, units: v["units"]?.stringValue, spans: spans)
    }
}

/// One report ready to be queued: the `POST /reports` body (a `reportRequest`).
public struct OpenADRReport: Sendable, Equatable {
    public var eventID: String
    public var reportName: String
    public var body: JSONValue

    /// Site import above this is 'significant energy consumption' (`RUNNING_OPTED_OUT`).
    public static let runningAboveW = 100.0

    /// A local opt-out of interval `intervalID` of event `eventID`, for the rest of its window
    /// `fromMs..<toMs`: an `OPERATING_STATE` report, `RUNNING_OPTED_OUT` when the site imports
    /// more than `runningAboveW` (`sitePowerW`), else `IDLE_OPTED_OUT` (the CTA-2045 states of the
    /// report-payloads enumeration: opted out, with or without significant consumption).
    public static func optOut(eventID: String, intervalID: Int, fromMs: Int64, toMs: Int64, sitePowerW: Double?,
                              clientName: String, resourceName: String) -> OpenADRReport {
        let state = (sitePowerW ?? 0) > runningAboveW ? "RUNNING_OPTED_OUT" : "IDLE_OPTED_OUT"
        let name = "optout:\(eventID):\(intervalID)"
        let body = JSONValue.object([
            ("eventID", .string(eventID)), ("clientName", .string(clientName)), ("reportName", .string(name)),
            ("payloadDescriptors", .array([.object([("objectType", .string("REPORT_PAYLOAD_DESCRIPTOR")),
                                                    ("payloadType", .string("OPERATING_STATE"))])])),
            ("resources", .array([.object([
                ("resourceName", .string(resourceName)),
                ("intervalPeriod", .object([("start", .string(Timestamp.format(ms: fromMs))),
                                            ("duration", .string(UsageReporter.isoDuration(ms: max(0, toMs - fromMs))))])),
                ("intervals", .array([.object([("id", .number(Double(intervalID))),
                                               ("payloads", .array([.object([("type", .string("OPERATING_STATE")),
                                                                             ("values", .array([.string(state)]))])]))])])),
            ])])),
        ])
        return OpenADRReport(eventID: eventID, reportName: name, body: body)
    }
}

/// The `USAGE` reports: the energy ledger's records are summed per ledger interval (they never
/// cross an interval boundary); when an interval is complete, one report goes to every event that
/// asked for `USAGE` and whose intervals overlap it. The value is the site meter's import energy
/// over the interval (exact like the ledger: the records telescope to the register difference),
/// `readingType` `ESTIMATED` when any record of it was. State survives a restart with the ledger's
/// (`persistentState`, saved in the same file), so an interval is reported once.
public struct UsageReporter: Sendable, Equatable {
    public struct Interval: Sendable, Equatable {
        public var fromMs: Int64
        public var toMs: Int64
        public var importMWh: Int64
        public var estimated: Bool
        public init(fromMs: Int64, toMs: Int64, importMWh: Int64, estimated: Bool) {
            self.fromMs = fromMs; self.toMs = toMs; self.importMWh = importMWh; self.estimated = estimated
        }
    }

    public let intervalMs: Int64
    public private(set) var requests: [OpenADRReportRequest] = []
    /// The interval being summed.
    public private(set) var open: Interval?

    public init(intervalMs: Int64) {
        precondition(intervalMs > 0)
        self.intervalMs = intervalMs
    }

    /// The `USAGE` requests of the events the VTN lists now (others are kept out). Requests whose
    /// intervals are all over before `nowMs - intervalMs` are forgotten: nothing of theirs is left to close.
    public mutating func setRequests(_ all: [OpenADRReportRequest], nowMs: Int64) {
        requests = all.filter { $0.kind == .usage && ($0.endMs ?? .min) > nowMs - 2 * intervalMs }
    }

    /// Ledger records in their order -> the intervals they completed.
    public mutating func add(_ records: [LedgerRecord]) -> [Interval] {
        var closed: [Interval] = []
        for r in records where r.toMs > r.fromMs {
            let k = Timestamp.floorDiv(r.fromMs, intervalMs)
            if let o = open, Timestamp.floorDiv(o.fromMs, intervalMs) != k {
                closed.append(o)   // a record of a later interval: this one will get no more
                open = nil
            }
            if var o = open {
                o.toMs = max(o.toMs, r.toMs)
                o.importMWh += r.importMWh
                o.estimated = o.estimated || r.estimated
                open = o
            } else {
                open = Interval(fromMs: r.fromMs, toMs: r.toMs, importMWh: r.importMWh, estimated: r.estimated)
            }
            if r.toMs >= (k + 1) * intervalMs, let o = open {
                closed.append(o)
                open = nil
            }
        }
        return closed
    }

    /// The reports for a completed interval: one per event asking for `USAGE` whose intervals overlap it.
    public func reports(for iv: Interval, clientName: String, resourceName: String) -> [OpenADRReport] {
        var out: [OpenADRReport] = []
        for r in requests where r.kind == .usage {
            guard let span = r.span(overlapping: iv.fromMs, iv.toMs) else { continue }
            let units = r.units ?? "KWH"
            let value = Double(max(0, iv.importMWh)) * (OpenADRReportRequest.energyUnits[units] ?? 1e-6)
            let name = "usage:\(r.eventID):\(Timestamp.format(ms: iv.fromMs))"
            let body = JSONValue.object([
                ("eventID", .string(r.eventID)), ("clientName", .string(clientName)), ("reportName", .string(name)),
                ("payloadDescriptors", .array([.object([
                    ("objectType", .string("REPORT_PAYLOAD_DESCRIPTOR")), ("payloadType", .string("USAGE")),
                    ("readingType", .string(iv.estimated ? "ESTIMATED" : "DIRECT_READ")), ("units", .string(units)),
                ])])),
                ("resources", .array([.object([
                    ("resourceName", .string(resourceName)),
                    ("intervalPeriod", .object([("start", .string(Timestamp.format(ms: iv.fromMs))),
                                                ("duration", .string(Self.isoDuration(ms: iv.toMs - iv.fromMs)))])),
                    ("intervals", .array([.object([("id", .number(Double(span.id))),
                                                   ("payloads", .array([.object([("type", .string("USAGE")),
                                                                                 ("values", .array([.number(value)]))])]))])])),
                ])])),
            ])
            out.append(OpenADRReport(eventID: r.eventID, reportName: name, body: body))
        }
        return out
    }

    /// `PT<seconds>S`, with milliseconds when there are any.
    public static func isoDuration(ms: Int64) -> String {
        ms % 1000 == 0 ? "PT\(ms / 1000)S" : "PT\(JSONValue.format(Double(ms) / 1000))S"
    }

    public var persistentState: JSONValue {
        .object([("v", .number(1)),
                 ("open", open.map { o in .array([.number(Double(o.fromMs)), .number(Double(o.toMs)), .number(Double(o.importMWh)),
                                                  .bool(o.estimated)]) } ?? .null),
                 ("requests", .array(requests.map(\.json)))])
    }

    /// Restores `persistentState`; false (and nothing changed) when it is not one.
    public mutating func restore(_ v: JSONValue) -> Bool {
        guard v["v"]?.doubleValue == 1, let list = v["requests"]?.arrayValue else { return false }
        var o: Interval?
        if let a = v["open"]?.arrayValue {
            guard a.count == 4, let f = a[0].doubleValue, let t = a[1].doubleValue, let e = a[2].doubleValue, let est = a[3].boolValue,
                  abs(f) < 9e15, abs(t) < 9e15, abs(e) < 9e15 else { return false }
            o = Interval(fromMs: Int64(f), toMs: Int64(t), importMWh: Int64(e), estimated: est)
        }
        var rs: [OpenADRReportRequest] = []
        for x in list {
            guard let r = OpenADRReportRequest(json: x) else { return false }
            rs.append(r)
        }
        open = o
        requests = rs
        return true
    }
}

/// What became of one `POST /reports`.
public enum ReportDelivery: Sendable, Equatable {
    /// 2xx: the VTN has it; it leaves the queue.
    case accepted(status: Int)
    /// Looked up before sending again (after a restart or a failed try) and the VTN had it already.
    case alreadyThere
    /// A 4xx that sending again cannot fix (400, 404, 409, 413, 422, ...): dropped, with a log line.
    case rejected(status: Int, detail: String)
    /// Network, TLS, 5xx, 401/403/408/429: tried again after a back-off.
    case failed(String)

    /// A status that can never succeed when sent again unchanged.
    public static func isPermanent(status: Int) -> Bool {
        (400..<500).contains(status) && ![401, 403, 408, 425, 429].contains(status)
    }
}

/// When a report that failed is tried again: 5 s, 10 s, 20 s, ... doubling up to 5 min, each
/// 0-20 % earlier at random (a fleet back from an outage does not post in step). Monotonic ms.
public struct ReportBackoff: Sendable, Equatable {
    public static let firstRetryMs: Int64 = 5000
    public static let maxMs: Int64 = 300_000
    public private(set) var failures = 0
    public private(set) var nextMs: Int64 = .min
    var rng: SplitMix64

    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    public func isDue(nowMs: Int64) -> Bool { nowMs >= nextMs }

    public mutating func succeeded() {
        failures = 0
        nextMs = .min
    }

    /// Due now, keeping the failure count (the VTN answered a poll again: no need to wait out the
    /// back-off; a further failure backs off from where it was).
    public mutating func retryNow() { nextMs = .min }

    public mutating func failed(nowMs: Int64) {
        failures += 1
        var delay = Self.firstRetryMs
        for _ in 1..<min(failures, 20) where delay < Self.maxMs { delay *= 2 }
        delay = min(delay, Self.maxMs)
        let j = delay / 5
        nextMs = nowMs + delay - (j > 0 ? Int64(rng.next() % UInt64(j + 1)) : 0)
    }

    public static func == (a: ReportBackoff, b: ReportBackoff) -> Bool { a.failures == b.failures && a.nextMs == b.nextMs }
}
