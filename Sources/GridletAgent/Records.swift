import GridletCore
import GridletQueue

/// Builds the JSON bodies of what the agent publishes (SPEC §3). Queued records are stored
/// without `seq` and `historical`; `Outbound.frame` adds them when the record is sent.
enum Records {
    static func reading(_ h: DeviceHealth) -> JSONValue {
        guard h.ok else {
            return .object([("ok", .bool(false)), ("error", .string(h.lastError ?? "no reading yet"))])
        }
        var o: [(String, JSONValue)] = []
        func num(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
        if h.values.keys.contains("power_w") { o.append(("power_w", num(h.value("power_w")))) }
        if h.values.keys.contains("import_wh") { o.append(("import_wh", num(h.value("import_wh")))) }
        if h.values.keys.contains("export_wh") { o.append(("export_wh", num(h.value("export_wh")))) }
        let v = h.phases("voltage", "v")
        if h.values.keys.contains("voltage_l1_v") { o.append(("voltage_v", .array(v.prefix(while: { _ in true }).map(num)))) }
        let a = h.phases("current", "a")
        if h.values.keys.contains("current_l1_a") { o.append(("current_a", .array(a.map(num)))) }
        if h.values.keys.contains("frequency_hz") { o.append(("frequency_hz", num(h.value("frequency_hz")))) }
        if h.values.keys.contains("charging") { o.append(("charging", .bool((h.value("charging") ?? 0) != 0))) }
        if h.values.keys.contains("soc_pct") { o.append(("soc_pct", num(h.value("soc_pct")))) }
        o.append(("ok", .bool(true)))
        return .object(o)
    }

    static func response(_ r: EventResponse) -> [UInt8] {
        Array(JSONValue.object(r.jsonFields).serialized.utf8)
    }
}

/// A queued record ready to go out: `{"seq":N,("historical":b,)...body}`.
enum Outbound {
    static func frame(kind: RecordKind, seq: UInt64, historical: Bool, body: [UInt8]) -> [UInt8] {
        var head = "{\"seq\":\(seq)"
        if kind == .telemetry { head += historical ? ",\"historical\":true" : ",\"historical\":false" }
        var out = Array(head.utf8)
        // body is a JSON object: "{}" or "{...}".
        if body.count > 2 {
            out.append(UInt8(ascii: ","))
            out += body.dropFirst()
        } else {
            out.append(UInt8(ascii: "}"))
        }
        return out
    }

    static func topic(_ kind: RecordKind, root: String) -> String {
        switch kind {
        case .telemetry: return "\(root)/telemetry"
        case .ledger: return "\(root)/ledger"
        case .response: return "\(root)/responses"
        case .gap: return "\(root)/gap"
        case .report: return "\(root)/reports"   // never published: the VEN posts them
        }
    }
}
