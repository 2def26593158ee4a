/// Settings of the control engine, from `control:` and the site.
public struct ControlSettings: Sendable, Equatable {
    public var defaultLimitW: Double?
    public var fallbackLimitW: Double
    public var commLossTimeoutMs: Int64
    public var heartbeatRequired: Bool
    public var restoreDelayMs: Int64
    public var restoreRandomMs: Int64
    public var rampWPerS: Double
    public var maxImportW: Double?
    /// The build date (Unix ms): with an unsynchronised clock reading earlier than this, the clock is not
    /// trusted and restricting schedules are treated as active (SPEC §2).
    public var buildDateMs: Int64
    /// False at a site with nothing to control (meters only): events are answered 252.
    public var hasControllableDevice = true
    /// True when a device at the site follows signed power setpoints (a bidirectional device): an
    /// event with `setpoint_w` is refused with 252 otherwise.
    public var followsSetpoints = false
    /// `site.max_export_w`: the most the site may export at its grid connection (nil: no limit).
    public var maxExportW: Double?
    /// `control.fallback_export_w`: the export allowed while comm is lost (default 0: discharging stops).
    public var fallbackExportW: Double = 0

    public init(defaultLimitW: Double? = nil, fallbackLimitW: Double = 1400, commLossTimeoutMs: Int64 = 120_000,
                heartbeatRequired: Bool = false, restoreDelayMs: Int64 = 30_000, restoreRandomMs: Int64 = 120_000,
                rampWPerS: Double = 500, maxImportW: Double? = nil, buildDateMs: Int64 = 0) {
        self.defaultLimitW = defaultLimitW; self.fallbackLimitW = fallbackLimitW; self.commLossTimeoutMs = commLossTimeoutMs
        self.heartbeatRequired = heartbeatRequired; self.restoreDelayMs = restoreDelayMs; self.restoreRandomMs = restoreRandomMs
        self.rampWPerS = rampWPerS; self.maxImportW = maxImportW; self.buildDateMs = buildDateMs
    }

    public init(_ c: ControlConfig, site: SiteConfig, buildDateMs: Int64 = 0) {
        self.init(defaultLimitW: c.defaultLimitW, fallbackLimitW: c.fallbackLimitW, commLossTimeoutMs: c.commLossTimeoutMs,
                  heartbeatRequired: c.heartbeatRequired, restoreDelayMs: c.restoreDelayMs, restoreRandomMs: c.restoreRandomMs,
                  rampWPerS: c.rampWPerS, maxImportW: site.maxImportW, buildDateMs: buildDateMs)
        maxExportW = site.maxExportW
        fallbackExportW = c.fallbackExportW
    }
}

/// What the engine needs to know about the site at a decision instant.
public struct ControlInputs: Sendable, Equatable {
    /// Sum over chargers of max_current × phases × voltage.
    public var hardwareMaxW: Double
    /// True when a site meter is configured.
    public var hasSiteMeter: Bool
    /// The site meter's latest power (import +), nil when it has no fresh reading.
    public var siteMeterPowerW: Double?
    /// Power the chargers draw now (subtracted from the site power to get the other load).
    public var chargerPowerW: Double
    /// Name of a device that reports a fault or does not answer, if any (charger side).
    public var faultyDevice: String?
    /// Whether the system clock is synchronised (e.g. `adjtimex` not reporting TIME_ERROR).
    public var clockSynced: Bool

    public init(hardwareMaxW: Double, hasSiteMeter: Bool = false, siteMeterPowerW: Double? = nil, chargerPowerW: Double = 0,
                faultyDevice: String? = nil, clockSynced: Bool = true) {
        self.hardwareMaxW = hardwareMaxW; self.hasSiteMeter = hasSiteMeter; self.siteMeterPowerW = siteMeterPowerW
        self.chargerPowerW = chargerPowerW; self.faultyDevice = faultyDevice; self.clockSynced = clockSynced
    }
}

/// The effective limit at one instant and why.
public struct ControlDecision: Sendable, Equatable {
    public var limitW: Double
    /// `dispatch:<id>`, `fallback`, `default`, `derate:<reason>`, `site_limit`.
    public var source: String
    /// Stored events whose window contains now (the winner first).
    public var activeEvents: [String]
    public var commOK: Bool
    public var commSinceMs: Int64
    public var nextTransitionMs: Int64?
    /// True while a restore delay or ramp holds the limit below the source's target.
    public var restoring: Bool
    /// The Target's source by precedence (`dispatch:<id>`, `schedule:<id>`, `fallback`, `default`), before
    /// SiteLimit and SafetyDerate. The energy ledger attributes energy to this source.
    public var targetSource: String
    /// The Target in W (before restore, hardware, site limit and derate).
    public var targetW: Double
    /// Schedule windows active now (the winner first), as `schedule:<id>`; an opted-out occurrence is not listed.
    public var activeSchedules: [String]
    public var clockSynced: Bool
    /// False when the clock is unsynchronised and reads before the build date: restricting schedules are then all active.
    public var clockTrusted: Bool
}
