/// A command received on a `root/cmd/...` topic, validated.
public enum Command: Sendable, Equatable {
    case event(DispatchEvent)
    case events(version: Int, events: [DispatchEvent])
    case cancel(id: String, randomizeS: Int)
    case optOut(id: String)
    /// `cmd/schedules`: the remote schedule set and the holiday lists it defines (SPEC §3).
    case schedules(version: Int, schedules: [ScheduleConfig], holidays: [String: [String]])
    case ping

    public var name: String {
        switch self {
        case .event: return "event"
        case .events: return "events"
        case .cancel: return "cancel"
        case .optOut: return "optout"
        case .schedules: return "schedules"
        case .ping: return "ping"
        }
    }
}

/// Why a command was refused; becomes `{"ok":false,"error":{...}}` on `root/reply`.
public struct CommandError: Error, Sendable, Equatable {
    /// `invalid_json`, `invalid`, `unknown_field`, `missing_field`, `too_large`, `too_many_events`,
    /// `not_found`, `not_allowed`, `unsupported`, `stale_version` (with `currentVersion`), `storage`
    /// (the agent could not store the command: not acknowledged, send it again).
    public var code: String
    public var message: String
    public var path: String
    /// With `stale_version`: the version in force, so the sender knows what to go above.
    public var currentVersion: Int?
    public init(code: String, message: String, path: String = "", currentVersion: Int? = nil) {
        self.code = code; self.message = message; self.path = path; self.currentVersion = currentVersion
    }
}

/// The outcome of parsing: the command name, the id it carried (if usable) and the result.
public struct ParsedCommand: Sendable, Equatable {
    public var name: String
    public var id: String?
    public var result: Result<Command, CommandError>
    /// `cmd/events`: the ids of the entries that are invalid (each gets response 253).
    public var rejectedIDs: [String] = []
}

/// FNV-1a, 64 bit: tells one payload from another (not a security measure).
public func payloadDigest(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

public enum CommandParser {
    public static let maxPayloadBytes = 64 * 1024

    /// Parses the payload of `root/cmd/<name>`. `nowMs` fills absent `created` and `start`.
    public static func parse(name: String, payload: [UInt8], nowMs: Int64) -> ParsedCommand {
        var parsed = ParsedCommand(name: name, id: nil, result: .failure(CommandError(code: "invalid", message: "")))
        guard payload.count <= maxPayloadBytes else {
            parsed.result = .failure(CommandError(code: "too_large", message: "payload is \(payload.count) bytes; the limit is \(maxPayloadBytes)"))
            return parsed
        }
        let json: JSONValue
        do { json = try JSONValue.parse(payload) } catch {
            parsed.result = .failure(CommandError(code: "invalid_json", message: error.description))
            return parsed
        }
        guard let object = json.objectValue else {
            parsed.result = .failure(CommandError(code: "invalid", message: "payload must be a JSON object"))
            return parsed
        }
        // Report the id even when something else is wrong, so a 253 can name the event.
        if case let .string(id)? = json["id"], validID(id) { parsed.id = id }
        do throws(CommandError) {
            switch name {
            case "event":
                parsed.result = .success(.event(try event(object, path: "", nowMs: nowMs)))
            case "events":
                var f = Fields(object, path: "")
                let version = try f.requiredInt("version", 0...Int(Int32.max))
                let items = try f.requiredArray("events")
                try f.finish()
                guard items.count <= ControlEngine.maxEvents else {
                    throw CommandError(code: "too_many_events", message: "at most \(ControlEngine.maxEvents) events can be stored", path: "events")
                }
                // Every entry is checked, so each bad one with a usable id gets its 253; the set
                // is applied whole or not at all (the first error is the reply's).
                var events: [DispatchEvent] = []
                var firstError: CommandError? = nil
                for (i, item) in items.enumerated() {
                    do throws(CommandError) {
                        guard let o = item.objectValue else {
                            throw CommandError(code: "invalid", message: "must be an object", path: "events[\(i)]")
                        }
                        let e = try event(o, path: "events[\(i)]", nowMs: nowMs)
                        if events.contains(where: { $0.id == e.id }) {
                            throw CommandError(code: "invalid", message: "duplicate event id '\(e.id)'", path: "events[\(i)].id")
                        }
                        events.append(e)
                    } catch {
                        if firstError == nil { firstError = error }
                        if case let .string(id)? = item["id"], validID(id), !parsed.rejectedIDs.contains(id) {
                            parsed.rejectedIDs.append(id)
                        }
                    }
                }
                if let firstError { throw firstError }
                parsed.result = .success(.events(version: version, events: events))
            case "cancel":
                var f = Fields(object, path: "")
                let id = try f.requiredID("id")
                try f.notOpenADR(id, "id")
                let r = try f.int("randomize_s", 0...86_400) ?? 0
                try f.finish()
                parsed.result = .success(.cancel(id: id, randomizeS: r))
            case "optout":
                var f = Fields(object, path: "")
                let id = try f.requiredID("id")
                try f.finish()
                parsed.result = .success(.optOut(id: id))
            case "schedules":
                parsed.result = .success(try schedulesCommand(object))
            case "ping":
                var f = Fields(object, path: "")
                _ = f.take("id")
                try f.finish()
                parsed.result = .success(.ping)
            default:
                parsed.result = .failure(CommandError(code: "unsupported", message: "unknown command topic cmd/\(name)"))
            }
        } catch {
            parsed.result = .failure(error)
        }
        return parsed
    }

    static func event(_ object: [(String, JSONValue)], path: String, nowMs: Int64) throws(CommandError) -> DispatchEvent {
        var f = Fields(object, path: path)
        let id = try f.requiredID("id")
        try f.notOpenADR(id, "id")
        let givenCreated = try f.time("created")
        let givenStart = try f.time("start")
        let created = givenCreated ?? nowMs
        let start = givenStart ?? nowMs
        guard let durationS = try f.double("duration_s") else { throw f.missing("duration_s") }
        guard durationS > 0 else { throw f.invalid("duration_s", "duration_s must be > 0") }
        guard durationS <= 366 * 86_400 else { throw f.invalid("duration_s", "duration_s must be at most one year (31622400)") }
        guard let limit = try f.double("limit_w") else { throw f.missing("limit_w") }
        guard limit >= 0 else { throw f.invalid("limit_w", "limit_w must be >= 0") }
        guard limit <= 10_000_000 else { throw f.invalid("limit_w", "limit_w must be at most 10000000") }
        let primacy = try f.int("primacy", 0...64) ?? 1
        let randomize = try f.int("randomize_start_s", 0...86_400) ?? 0
        let optOut = try f.bool("opt_out") ?? false
        let maxOffline = try f.int("max_offline_s", 1...(366 * 86_400))
        let power = try EventPowerFields.parse(&f)
        try f.finish()
        var e = DispatchEvent(id: id, createdMs: created, startMs: start, durationMs: Int64((durationS * 1000).rounded()),
                              limitW: limit, primacy: primacy, randomizeStartS: randomize, optOutAllowed: optOut,
                              maxOfflineS: maxOffline,
                              createdAtReceipt: givenCreated == nil, startAtReceipt: givenStart == nil)
        power.apply(to: &e)
        return e
    }

    /// Event and schedule ids: 1 to 64 characters from [A-Za-z0-9_.:-].
    public static func validID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...64).contains(u.count) else { return false }
        return u.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":")
        }
    }
}

/// Field access that records which keys were read, for unknown-field detection.
struct Fields {
    let pairs: [(String, JSONValue)]
    let path: String
    var used: Set<String> = []

    init(_ pairs: [(String, JSONValue)], path: String) { self.pairs = pairs; self.path = path }

    func p(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    func missing(_ key: String) -> CommandError { CommandError(code: "missing_field", message: "\(key) is required", path: p(key)) }
    func invalid(_ key: String, _ message: String) -> CommandError { CommandError(code: "invalid", message: message, path: p(key)) }

    /// The value, or nil when absent or JSON null.
    mutating func take(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let v = pairs.first(where: { $0.0 == key })?.1, v != .null else { return nil }
        return v
    }

    mutating func double(_ key: String) throws(CommandError) -> Double? {
        guard let v = take(key) else { return nil }
        guard let d = v.doubleValue else { throw invalid(key, "\(key) must be a number") }
        return d
    }

    mutating func int(_ key: String, _ range: ClosedRange<Int>) throws(CommandError) -> Int? {
        guard let d = try double(key) else { return nil }
        guard d == d.rounded(), let i = Int(exactly: d) else { throw invalid(key, "\(key) must be an integer") }
        guard range.contains(i) else { throw invalid(key, "\(key) must be between \(range.lowerBound) and \(range.upperBound)") }
        return i
    }

    mutating func requiredInt(_ key: String, _ range: ClosedRange<Int>) throws(CommandError) -> Int {
        guard let i = try int(key, range) else { throw missing(key) }
        return i
    }

    mutating func bool(_ key: String) throws(CommandError) -> Bool? {
        guard let v = take(key) else { return nil }
        guard let b = v.boolValue else { throw invalid(key, "\(key) must be true or false") }
        return b
    }

    mutating func requiredArray(_ key: String) throws(CommandError) -> [JSONValue] {
        guard let v = take(key) else { throw missing(key) }
        guard let a = v.arrayValue else { throw invalid(key, "\(key) must be an array") }
        return a
    }

    mutating func requiredID(_ key: String) throws(CommandError) -> String {
        guard let v = take(key) else { throw missing(key) }
        guard let s = v.stringValue else { throw invalid(key, "\(key) must be a string") }
        guard CommandParser.validID(s) else { throw invalid(key, "\(key) must be 1 to 64 characters from A-Z a-z 0-9 _ . : -") }
        return s
    }

    /// Ids starting with `oadr:` belong to the OpenADR VTN's events: MQTT can neither set nor cancel them.
    func notOpenADR(_ id: String, _ key: String) throws(CommandError) {
        if OpenADREvents.owns(id) {
            throw invalid(key, "ids starting with '\(OpenADREvents.idPrefix)' are reserved for events from the OpenADR VTN")
        }
    }

    mutating func time(_ key: String) throws(CommandError) -> Int64? {
        guard let v = take(key) else { return nil }
        guard let s = v.stringValue, let ms = Timestamp.parse(s) else {
            throw invalid(key, "\(key) must be an RFC 3339 time such as 2027-06-01T17:00:00.000Z")
        }
        return ms
    }

    func finish() throws(CommandError) {
        for (k, _) in pairs where !used.contains(k) {
            throw CommandError(code: "unknown_field", message: "unknown field '\(k)'", path: p(k))
        }
    }
}
