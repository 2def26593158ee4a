import GridletCore

/// `state_dir/comm.json`: the last contact with the dispatch link and the last wall time seen, so
/// a restart during an outage (crash, watchdog, power blip) does not count as contact and drive
/// the charger at the default for another `comm_loss_timeout` (see `ControlEngine.restoreComm`).
///
/// Written durably on every change of the link (session up or down, a heartbeat contact), and
/// without fsync every `comm_loss_timeout / 4` (at most 30 s) while contact goes on: after a power
/// cut the file may be that much older, which only makes the restored contact older, the safe
/// direction.
extension Agent {
    var commPath: String { config.site.stateDir + "/comm.json" }

    /// Reads the saved contact at start and hands it to the engine.
    func restoreComm() {
        var contact: Int64? = nil
        var wall: Int64? = nil
        if let bytes = StateFile.read(commPath) {
            if let json = try? JSONValue.parse(bytes), let c = json["last_contact_ms"]?.doubleValue,
               let w = json["wall_ms"]?.doubleValue, c >= 0, w >= 0, c < 1e15, w < 1e15 {
                contact = Int64(c)
                wall = Int64(w)
            } else {
                // Unknown history: the outage may be in progress, so count no contact at all.
                log.warning("ignoring unreadable \(commPath); comm counts as lost until the first contact")
                contact = 0
            }
        }
        engine.restoreComm(lastContactMs: contact, wallMs: wall, nowMs: startedWallMs)
        if let contact, engine.isCommLost(nowMs: startedWallMs) {
            log.warning("comm lost since before the restart (last contact \(contact > 0 ? Timestamp.format(ms: contact) : "unknown")): fallback until contact returns")
        }
    }

    /// Saves the contact; `durable` on a change of the link.
    func saveComm(nowWall: Int64, durable: Bool) {
        let body = JSONValue.object([("last_contact_ms", .number(Double(engine.contactMs(nowMs: nowWall)))),
                                     ("wall_ms", .number(Double(nowWall)))])
        stateStore.submit(path: commPath, bytes: Array(body.serialized.utf8), durable: durable, token: nil)
    }
}
