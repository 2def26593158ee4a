/// One device's health and latest reading, as the control loop knows it.
public struct DeviceHealth: Sendable, Equatable {
    public var values: [String: Double?] = [:]
    public var lastOKWallMs: Int64?
    public var lastOKMonoMs: Int64?
    public var lastError: String?
    public var ok = false
    /// Why the device's own status says it is in fault (its profile's `control.fault`), nil when
    /// it does not; see `SiteReadings.assessFault`.
    public var fault: String?

    public init() {}

    public func value(_ name: String) -> Double? { values[name] ?? nil }

    /// The three per-phase points `<prefix>_l1_<suffix>` ... `_l3_`.
    public func phases(_ prefix: String, _ suffix: String) -> [Double?] {
        (1...3).map { value("\(prefix)_l\($0)_\(suffix)") }
    }
}

/// What a fault assessment changed, for the log (once on entering, once on leaving).
public enum FaultChange: Sendable, Equatable {
    case none
    /// The device reports a fault now, or a different one than before.
    case entered(String)
    /// The device no longer reports the fault it reported (given).
    case cleared(String)
}

/// What a poll result changed, for the log.
public enum HealthChange: Sendable, Equatable {
    case none
    /// The device answers again (or for the first time).
    case answering
    /// The first failure after answering (or the first poll failed).
    case failing(String)
}

/// The named owner of what the devices last said: per-device health, the start-up settle (the
/// first setpoint is not decided on a meter that simply has not been read yet), the site meter's
/// staleness (SPEC `meter_stale_after`: a stale meter is a SafetyDerate), the voltage chain used to
/// convert W to A, and which meter feeds the energy ledger.
///
/// Times: `nowMono` monotonic, `nowWall` wall clock, both in ms.
public struct SiteReadings: Sendable {
    public let roles: [DeviceRole]
    public private(set) var health: [DeviceHealth]
    public let nominalVoltage: Double
    public let meterStaleAfterMs: Int64
    public let startedMonoMs: Int64
    /// How long start-up waits at most for every device's first poll.
    public static let settleTimeoutMs: Int64 = 5000
    public private(set) var settled = false
    /// A new reading of the ledger's meter arrived since `takeLedgerSample` last ran.
    private var ledgerSampleFresh = false

    public init(roles: [DeviceRole], nominalVoltage: Double, meterStaleAfterMs: Int64, startedMonoMs: Int64) {
        self.roles = roles
        self.health = Array(repeating: DeviceHealth(), count: roles.count)
        self.nominalVoltage = nominalVoltage
        self.meterStaleAfterMs = meterStaleAfterMs
        self.startedMonoMs = startedMonoMs
    }

    public var siteMeterIndex: Int? { roles.firstIndex(of: .siteMeter) }
    public var chargerIndices: [Int] { roles.indices.filter { roles[$0] == .charger } }

    /// The meter whose cumulative registers feed the energy ledger: the site meter, else the first
    /// meter, else the first charger.
    public var ledgerMeterIndex: Int? {
        siteMeterIndex ?? roles.firstIndex(of: .meter) ?? roles.firstIndex(of: .charger)
    }

    public mutating func polled(_ i: Int, values: [String: Double?], nowWall: Int64, nowMono: Int64) -> HealthChange {
        let change: HealthChange = health[i].ok ? .none : .answering
        health[i].values = values
        health[i].ok = true
        health[i].lastOKWallMs = nowWall
        health[i].lastOKMonoMs = nowMono
        health[i].lastError = nil
        if i == ledgerMeterIndex { ledgerSampleFresh = true }
        return change
    }

    /// A failed poll: the device's numbers are gone (telemetry shows no stale values).
    public mutating func failed(_ i: Int, error: String) -> HealthChange {
        let change: HealthChange = health[i].ok || health[i].lastError == nil ? .failing(error) : .none
        health[i].ok = false
        health[i].values = [:]
        health[i].lastError = error
        return change
    }

    /// Why a device whose latest values are `values` is in fault by its profile's definition;
    /// nil when the values say it is not, or do not hold the point (not read, not implemented).
    public static func faultReason(_ fault: ChargerFault, values: [String: Double?]) -> String? {
        guard let v = values[fault.point] ?? nil else { return nil }
        return fault.reason(v)
    }

    /// Reads device `i`'s fault again from its latest values (`DeviceHealth.fault`), and says
    /// whether it entered or left a fault. While the device does not answer its last word stands:
    /// a charger that said it is in fault and then fell silent is not taken to be well again.
    public mutating func assessFault(_ i: Int, definition: ChargerFault?) -> FaultChange {
        let before = health[i].fault
        if health[i].ok || definition == nil {
            health[i].fault = definition.flatMap { Self.faultReason($0, values: health[i].values) }
        }
        switch (before, health[i].fault) {
        case let (was, now?) where was != now: return .entered(now)
        case let (was?, nil): return .cleared(was)
        default: return .none
        }
    }

    /// True once every device has answered or failed its first poll, or `settleTimeoutMs` passed.
    /// Stays true.
    public mutating func settle(nowMono: Int64) -> Bool {
        if settled { return true }
        settled = health.allSatisfy { $0.ok || $0.lastError != nil } || nowMono - startedMonoMs > Self.settleTimeoutMs
        return settled
    }

    /// The site meter's power, nil when there is none, it failed its last poll, or its reading is
    /// older than `meter_stale_after`.
    public func siteMeterPowerW(nowMono: Int64) -> Double? {
        guard let m = siteMeterIndex, health[m].ok, let okAt = health[m].lastOKMonoMs,
              nowMono - okAt <= meterStaleAfterMs else { return nil }
        return health[m].value("power_w")
    }

    /// The voltage to convert a charger's W with: its own plausible phase voltages, else the site
    /// meter's, else `nominal_voltage`.
    public func voltage(charger i: Int) -> Double {
        let meter = siteMeterIndex.map { health[$0].phases("voltage", "v") } ?? []
        return ChargerSetpoint.voltage(charger: health[i].ok ? health[i].phases("voltage", "v") : [], siteMeter: meter,
                                       nominal: nominalVoltage)
    }

    /// The ledger meter's reading if it is new since the last call.
    public mutating func takeLedgerSample() -> LedgerSample? {
        guard ledgerSampleFresh, let m = ledgerMeterIndex else { return nil }
        ledgerSampleFresh = false
        let h = health[m]
        return LedgerSample(importWh: h.value("import_wh"), exportWh: h.value("export_wh"), powerW: h.value("power_w"))
    }
}

/// A repeating deadline on a monotonic clock (telemetry, snapshots, clock checks): due when the
/// time has come; the next one keeps the cadence, or restarts from now after a long stall.
public struct Cadence: Sendable, Equatable {
    public var intervalMs: Int64
    public private(set) var nextMs: Int64?

    public init(intervalMs: Int64, firstAtMs: Int64? = nil) { self.intervalMs = intervalMs; self.nextMs = firstAtMs }

    /// True when due at `nowMs` (the first call is always due unless `firstAtMs` said otherwise).
    public mutating func due(nowMs: Int64) -> Bool {
        guard let n = nextMs else { nextMs = nowMs + intervalMs; return true }
        guard nowMs >= n else { return false }
        var next = n + intervalMs
        if next <= nowMs { next = nowMs + intervalMs }
        nextMs = next
        return true
    }

    /// Milliseconds until due (0 when due now).
    public func waitMs(nowMs: Int64) -> Int64 { nextMs.map { max(0, $0 - nowMs) } ?? 0 }
}

/// Durations of the control loop's turns, for `gridlet status` (`loop`): the longest, and how
/// many took over 10 ms (a turn that waits on the disk or a peer shows up here).
public struct TurnTimes: Sendable, Equatable {
    public private(set) var count = 0
    public private(set) var maxUs: Int64 = 0
    public private(set) var over10ms = 0
    public init() {}
    public mutating func record(us: Int64) {
        count += 1
        maxUs = max(maxUs, us)
        if us > 10_000 { over10ms += 1 }
    }
}
