/// What the export side of the control decision needs to know about the site at one instant.
public struct ExportInputs: Sendable, Equatable {
    /// Σ over bidirectional devices of their hardware discharge maximum (W); 0 when none can discharge.
    public var dischargeMaxW: Double
    public var hasSiteMeter: Bool
    /// The site meter's fresh power (import +), nil when stale or absent.
    public var siteMeterPowerW: Double?
    /// Power the controlled devices draw now (import +, a discharging device is negative).
    public var devicePowerW: Double
    /// A device in fault (the import side's SafetyDerate input).
    public var faultyDevice: String?

    public init(dischargeMaxW: Double, hasSiteMeter: Bool = false, siteMeterPowerW: Double? = nil, devicePowerW: Double = 0,
                faultyDevice: String? = nil) {
        self.dischargeMaxW = dischargeMaxW; self.hasSiteMeter = hasSiteMeter; self.siteMeterPowerW = siteMeterPowerW
        self.devicePowerW = devicePowerW; self.faultyDevice = faultyDevice
    }
}

/// The export limit in force and the signed setpoint for the bidirectional devices (SPEC §2's
/// min() chain, export side; docs/control.md "Export and setpoints").
public struct ExportDecision: Sendable, Equatable {
    /// The most the bidirectional devices together may export now (W, ≥ 0).
    public var exportLimitW: Double
    /// The binding term: `hardware` (nothing restricts export beyond the devices' discharge
    /// maximum), `dispatch:<id>`, `site_export_limit`, `fallback` or `derate:<reason>`.
    public var exportSource: String
    /// The setpoint for the bidirectional devices together (W, + import), clamped into
    /// [−exportLimitW, importLimitW]; nil when no event asks for one (they then charge up to the
    /// import limit, as chargers do).
    public var setpointW: Double?
    /// The setpoint as the winning event asked for it, before clamping.
    public var requestedSetpointW: Double?
    /// The event the setpoint comes from (`dispatch:<id>`).
    public var setpointSource: String?
    /// Why the setpoint was clamped (`import_limit`, `export_limit`), nil when it was not.
    public var clampedBy: String?
    /// The winning event's market tag, if any.
    public var market: String?
}

extension ControlEngine {
    /// The export side of the decision, for the same instant as `decide` (call it right after,
    /// with the decision's `limitW` as `importLimitW`).
    ///
    ///     export = min(HardwareDischargeMax, SiteExportLimit, FallbackExport while comm is lost,
    ///                  SafetyDerate, Target)
    ///
    /// Target comes from the precedence winner, exactly as for the import limit: the winning
    /// event's `export_limit_w` (without one, a negative `setpoint_w` allows its own magnitude);
    /// otherwise nothing beyond the other terms. Unlike the import side, the fallback export
    /// applies during comm loss even while an event still runs: a market award that cannot be
    /// confirmed is not delivered by exporting blind.
    public func decideExport(nowMs: Int64, importLimitW: Double, inputs: ExportInputs) -> ExportDecision {
        var limit = max(0, inputs.dischargeMaxW)
        var source = "hardware"
        func cap(_ w: Double, _ s: String) {
            if w < limit { limit = max(0, w); source = s }
        }
        let winner = activeEvents(nowMs: nowMs).first
        if let e = winner {
            if let x = e.exportLimitW { cap(x, "dispatch:\(e.id)") } else if let s = e.setpointW, s < 0 { cap(-s, "dispatch:\(e.id)") }
        }
        if let maxExport = settings.maxExportW {
            if inputs.hasSiteMeter, let site = inputs.siteMeterPowerW {
                // The connection point may export max_export_w: the other load at the site (site
                // power minus the devices' own) adds to what the devices may export, other
                // generation takes from it.
                cap(maxExport + (site - inputs.devicePowerW), "site_export_limit")
            } else {
                cap(maxExport, "site_export_limit")
            }
        }
        if isCommLost(nowMs: nowMs) { cap(settings.fallbackExportW, "fallback") }
        if inputs.hasSiteMeter, inputs.siteMeterPowerW == nil {
            cap(settings.fallbackExportW, "derate:meter_stale")
        } else if let f = inputs.faultyDevice {
            cap(settings.fallbackExportW, "derate:\(f)_fault")
        }

        var d = ExportDecision(exportLimitW: limit, exportSource: source, setpointW: nil, requestedSetpointW: nil,
                               setpointSource: nil, clampedBy: nil, market: winner?.market)
        if let e = winner, let s = e.setpointW {
            d.requestedSetpointW = s
            d.setpointSource = "dispatch:\(e.id)"
            let importLimit = max(0, importLimitW)
            if s > importLimit {
                d.setpointW = importLimit; d.clampedBy = "import_limit"
            } else if s < -limit {
                d.setpointW = 0 - limit; d.clampedBy = "export_limit"
            } else {
                d.setpointW = s
            }
        }
        return d
    }
}
