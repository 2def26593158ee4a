import GridletCore

extension Agent {
    /// Reads each charger's own fault state (its profile's `control.fault`) for this control turn,
    /// and logs a warning once when a charger enters a fault and once when it leaves it, so the
    /// journal says why the limit dropped without repeating it every second.
    func assessChargerFaults() {
        for i in readings.chargerIndices {
            let name = devices[i].config.name
            switch readings.assessFault(i, definition: devices[i].profile.control?.fault) {
            case let .entered(reason):
                log.warning("charger \(name) reports a fault: \(reason); the limit stays at most at fallback_limit_w "
                            + "(\(JSONValue.format(config.control.fallbackLimitW)) W) until it clears")
            case let .cleared(reason):
                log.warning("charger \(name) no longer reports a fault (was: \(reason)); the fault derate ends")
            case .none:
                break
            }
        }
    }
}
