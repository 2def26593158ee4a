/// The vehicle-to-grid fields of a dispatch event (`setpoint_w`, `export_limit_w`, `market`):
/// how they are read from a command and from `control.json`, with the same range checks, and
/// what they are refused for.
struct EventPowerFields: Sendable, Equatable {
    var setpointW: Double?
    var exportLimitW: Double?
    var market: String?

    static let maxW = 10_000_000.0

    /// Reads the three optional keys of a `cmd/event` (or a `cmd/events` entry).
    static func parse(_ f: inout Fields) throws(CommandError) -> EventPowerFields {
        var p = EventPowerFields()
        if let s = try f.double("setpoint_w") {
            guard abs(s) <= maxW else { throw f.invalid("setpoint_w", "setpoint_w must be between -10000000 and 10000000") }
            p.setpointW = s
        }
        if let x = try f.double("export_limit_w") {
            guard x >= 0 else { throw f.invalid("export_limit_w", "export_limit_w must be >= 0") }
            guard x <= maxW else { throw f.invalid("export_limit_w", "export_limit_w must be at most 10000000") }
            p.exportLimitW = x
        }
        if let v = f.take("market") {
            guard let s = v.stringValue else { throw f.invalid("market", "market must be a string") }
            guard validMarket(s) else { throw f.invalid("market", "market must be 1 to 64 characters from A-Z a-z 0-9 _ . : -") }
            p.market = s
        }
        return p
    }

    /// Market tags: the id alphabet (they end up in ledger records and CLI output as they are).
    static func validMarket(_ s: String) -> Bool { CommandParser.validID(s) }

    func apply(to e: inout DispatchEvent) {
        e.setpointW = setpointW; e.exportLimitW = exportLimitW; e.market = market
    }

    /// The persisted form (`control.json`), only the keys that are set.
    static func json(_ e: DispatchEvent) -> [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let s = e.setpointW { o.append(("setpoint_w", .number(s))) }
        if let x = e.exportLimitW { o.append(("export_limit_w", .number(x))) }
        if let m = e.market { o.append(("market", .string(m))) }
        return o
    }

    /// Reads back what `json` wrote; nil when a value is out of the range a command accepts.
    static func restore(_ item: JSONValue) -> EventPowerFields? {
        var p = EventPowerFields()
        if let v = item["setpoint_w"], v != .null {
            guard let s = v.doubleValue, s.isFinite, abs(s) <= maxW else { return nil }
            p.setpointW = s
        }
        if let v = item["export_limit_w"], v != .null {
            guard let x = v.doubleValue, x.isFinite, x >= 0, x <= maxW else { return nil }
            p.exportLimitW = x
        }
        if let v = item["market"], v != .null {
            guard let m = v.stringValue, validMarket(m) else { return nil }
            p.market = m
        }
        return p
    }
}

extension DispatchEvent {
    /// `setpoint_w`, `export_limit_w`, `market` as JSON fields, only those set (`control.json`,
    /// `gridlet events`).
    public var powerJSONFields: [(String, JSONValue)] { EventPowerFields.json(self) }
}

extension ControlEngine {
    /// Why an event cannot apply at this site although it is well-formed (response 252), or nil:
    /// a `setpoint_w` needs a device that follows signed power setpoints (a bidirectional device);
    /// chargers follow `limit_w` only, and cannot discharge.
    func notApplicableReason(_ e: DispatchEvent) -> String? {
        if let s = e.setpointW, !settings.followsSetpoints {
            return "setpoint_w \(JSONValue.format(s)) needs a device that follows power setpoints and can discharge; "
                + "no bidirectional device is configured at this site (chargers follow limit_w only)"
        }
        return nil
    }
}
