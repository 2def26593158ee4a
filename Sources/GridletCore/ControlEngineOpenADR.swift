/// The OpenADR VEN's way into the engine: each complete poll of the VTN replaces the
/// OpenADR-sourced events (ids `oadr:...`) and nothing else, through the same upsert, cancel and
/// supersede rules (and responses) MQTT commands get. MQTT's `cmd/events` in turn replaces only
/// the MQTT events (ControlEngine.swift), and MQTT cannot set or cancel an `oadr:` id.
extension ControlEngine {
    /// `windows`: every OpenADR window that should be stored now (`OpenADREvents.map`). A stored
    /// OpenADR event missing from it was deleted or changed at the VTN: cancelled (6) at once,
    /// unless its window is over (then `advance` completes it). The others are upserted: new ones
    /// are received (1), changed ones received again, unchanged ones change nothing.
    public mutating func replaceOpenADR(_ windows: [DispatchEvent], nowMs: Int64) -> Outcome {
        var responses: [EventResponse] = []
        var changed = false
        var error: CommandError?
        let keep = Set(windows.map(\.id))
        for old in events where OpenADREvents.owns(old.id) && !keep.contains(old.id) && nowMs < old.effectiveEndMs {
            if old.isLive { responses.append(EventResponse(event: old.id, status: .cancelled, atMs: nowMs)) }
            changed = true
        }
        events.removeAll { OpenADREvents.owns($0.id) && !keep.contains($0.id) && nowMs < $0.effectiveEndMs }
        for w in windows where OpenADREvents.owns(w.id) {
            let o = upsert(w, nowMs: nowMs)
            responses += o.responses
            changed = changed || o.changed
            if error == nil { error = o.error }
        }
        if changed { responses += supersede(nowMs: nowMs) }
        return Outcome(error: error, responses: responses, changed: changed)
    }
}
