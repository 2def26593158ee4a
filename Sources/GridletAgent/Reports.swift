import GridletCore

/// The JSON documents the agent shows about itself (SPEC §3 `state`, the CLI's `events` and
/// `schedule`), built from the state machines' values.
enum Reports {
    static func error(_ e: CommandError) -> JSONValue {
        var o: [(String, JSONValue)] = [("code", .string(e.code)), ("message", .string(e.message)), ("path", .string(e.path))]
        if let v = e.currentVersion { o.append(("current_version", .number(Double(v)))) }
        return .object(o)
    }

    static func control(limitW: Double, appliedA: Double, source: String) -> JSONValue {
        .object([("limit_w", .number(limitW)), ("applied_a", .number(appliedA)), ("source", .string(source))])
    }

    static func events(_ events: [DispatchEvent], active: [String], source: String) -> String {
        let list: [JSONValue] = events.map { e in
            var o: [(String, JSONValue)] = [
                ("id", .string(e.id)), ("source", .string(OpenADREvents.owns(e.id) ? "openadr" : "mqtt")),
                ("limit_w", .number(e.limitW)), ("primacy", .number(Double(e.primacy))),
                ("created", .string(Timestamp.format(ms: e.createdMs))),
                ("start", .string(Timestamp.format(ms: e.startMs))),
                ("effective_start", .string(Timestamp.format(ms: e.effectiveStartMs))),
                ("end", .string(Timestamp.format(ms: e.endMs))), ("phase", .string(e.phase.rawValue)),
                ("opt_out_allowed", .bool(e.optOutAllowed)), ("opted_out", .bool(e.optedOut)),
                ("superseded", .bool(e.superseded)),
                ("active", .bool(active.contains(e.id))),
            ]
            if let c = e.cancelAtMs { o.append(("cancel_at", .string(Timestamp.format(ms: c)))) }
            o += e.powerJSONFields
            return .object(o)
        }
        return JSONValue.object([("ok", .bool(true)), ("events", .array(list)), ("source", .string(source))]).serialized
    }

    static func schedule(_ transitions: [ControlEngine.PlannedTransition], timezone: String, active: [String]) -> String {
        let list: [JSONValue] = transitions.map { t in
            .object([("at", .string(Timestamp.format(ms: t.atMs))), ("source", .string(t.source)), ("limit_w", .number(t.limitW))])
        }
        return JSONValue.object([("ok", .bool(true)), ("timezone", .string(timezone)),
                                 ("active", .array(active.map { .string($0) })),
                                 ("transitions", .array(list))]).serialized
    }

    /// The retained `root/state` document.
    static func state(decision d: ControlDecision?, limitW: Double, appliedA: Double, paused: Bool, startedWallMs: Int64,
                      clockSynced: Bool, schedules: [String], devices: [(String, DeviceHealth)]) -> JSONValue {
        .object([
            ("limit_w", .number(limitW)), ("applied_a", .number(appliedA)), ("paused", .bool(paused)),
            ("source", .string(d?.source ?? "default")),
            ("events", .array((d?.activeEvents ?? []).map { .string($0) })),
            ("comm", .object([("ok", .bool(d?.commOK ?? false)),
                              ("since", .string(Timestamp.format(ms: d?.commSinceMs ?? startedWallMs)))])),
            ("clock_synced", .bool(clockSynced)),
            ("schedules", .array(schedules.map { .string($0) })),
            ("next_transition", d?.nextTransitionMs.map { .string(Timestamp.format(ms: $0)) } ?? .null),
            ("devices", .object(devices.map { name, h in
                var o: [(String, JSONValue)] = [("ok", .bool(h.ok)),
                                                ("last_seen", h.lastOKWallMs.map { .string(Timestamp.format(ms: $0)) } ?? .null)]
                // Present while the device reports a fault: why the source is `derate:<name>_fault`.
                if let f = h.fault { o.append(("fault", .string(f))) }
                return (name, JSONValue.object(o))
            })),
        ])
    }
}
