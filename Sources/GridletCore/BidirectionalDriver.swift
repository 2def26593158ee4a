/// The registers a bidirectional device is driven through (`BidirectionalControl`).
public enum PowerRegister: Sendable, Hashable, CustomStringConvertible {
    /// The profile's `setup[i]` write.
    case setup(Int)
    case reversionTimeout
    case reversionSetpoint
    case setpoint

    public var description: String {
        switch self {
        case let .setup(i): return "setup[\(i)]"
        case .reversionTimeout: return "reversion timeout"
        case .reversionSetpoint: return "reversion setpoint"
        case .setpoint: return "power setpoint"
        }
    }
}

/// A write a `BidirectionalDriver` asks for: `value` in the device's own terms (W in its sign for
/// the setpoints, s for the timeout, the profile's value for a setup register), before scale.
public struct PowerWrite: Sendable, Equatable {
    public var register: PowerRegister
    public var value: Double
    public init(_ register: PowerRegister, _ value: Double) { self.register = register; self.value = value }
}

/// What one bidirectional device is told at one control turn (its shares of the site's terms).
public struct PowerCommand: Sendable, Equatable {
    /// Its share of the effective import limit (W ≥ 0).
    public var importLimitW: Double
    /// Its share of the export limit in force (W ≥ 0).
    public var exportLimitW: Double
    /// Its share of the site setpoint (+ import); nil: charge up to the import limit.
    public var setpointW: Double?
    /// Its hardware charge maximum now (`max_current` × phases × V).
    public var chargeMaxW: Double
    /// Its state of charge (%), nil when unknown.
    public var socPct: Double?
    /// Its share of `fallback_limit_w`: what it reverts to by itself (never an export).
    public var fallbackImportW: Double

    public init(importLimitW: Double, exportLimitW: Double, setpointW: Double? = nil, chargeMaxW: Double, socPct: Double? = nil,
                fallbackImportW: Double = 0) {
        self.importLimitW = importLimitW; self.exportLimitW = exportLimitW; self.setpointW = setpointW
        self.chargeMaxW = chargeMaxW; self.socPct = socPct; self.fallbackImportW = fallbackImportW
    }
}

/// The power a bidirectional device is driven at, and what bound it.
public struct PowerTarget: Sendable, Equatable {
    /// + import/charge, − export/discharge, whole W.
    public var w: Double
    /// Why `w` is not what was asked: `import_limit`, `export_limit`, `hardware`, `soc_reserve`
    /// (at or below `min_soc_pct`), `soc_unknown` (a reserve is set and no SoC is read); nil when
    /// nothing bound it.
    public var limitedBy: String?
    public init(w: Double, limitedBy: String? = nil) { self.w = w; self.limitedBy = limitedBy }

    /// `import`, `export` or `idle`.
    public var direction: String { w > 0 ? "import" : w < 0 ? "export" : "idle" }
}

public struct BidirectionalDriverSettings: Sendable, Equatable {
    public var sign: PowerSign
    /// The setup values in profile order.
    public var setupValues: [Double]
    public var hasReversionTimeout: Bool
    public var hasReversionSetpoint: Bool
    /// `max_discharge_w` of the device config; nil: its charge maximum.
    public var maxDischargeW: Double?
    /// `min_soc_pct` of the device config: never discharged through.
    public var minSocPct: Double?
    public var failsafeTimeoutMs: Int64
    public var refreshFraction: Double?

    public init(sign: PowerSign, setupValues: [Double] = [], hasReversionTimeout: Bool = false, hasReversionSetpoint: Bool = false,
                maxDischargeW: Double? = nil, minSocPct: Double? = nil, failsafeTimeoutMs: Int64, refreshFraction: Double? = nil) {
        self.sign = sign; self.setupValues = setupValues; self.hasReversionTimeout = hasReversionTimeout
        self.hasReversionSetpoint = hasReversionSetpoint; self.maxDischargeW = maxDischargeW; self.minSocPct = minSocPct
        self.failsafeTimeoutMs = failsafeTimeoutMs; self.refreshFraction = refreshFraction
    }

    public init(device: DeviceConfig, power: BidirectionalControl, failsafeTimeoutMs: Int64) {
        self.init(sign: power.sign, setupValues: power.setup.map(\.value), hasReversionTimeout: power.reversionTimeout != nil,
                  hasReversionSetpoint: power.reversionSetpoint != nil, maxDischargeW: device.maxDischargeW,
                  minSocPct: device.minSocPct, failsafeTimeoutMs: failsafeTimeoutMs, refreshFraction: power.refreshFraction)
    }

    /// How often the setpoint is written again (restarting the device's reversion timer): the
    /// profile's `refresh_fraction` of the failsafe timeout, never longer than a quarter of it
    /// (SPEC §2), at least 100 ms.
    public var refreshIntervalMs: Int64 {
        max(100, Int64((Double(failsafeTimeoutMs) * min(refreshFraction ?? 0.25, 0.25)).rounded(.down)))
    }
}

/// One bidirectional device's driver (a V2G charger, a battery inverter): turns its shares of the
/// import limit, the export limit and the setpoint into register writes, the sibling of
/// `ChargerDriver` for devices driven in W.
///
/// - Target: the setpoint (or, without one, the import limit: it charges as a charger would),
///   clamped into [−min(export limit, discharge max), min(import limit, charge max)], rounded to
///   whole W towards 0; never a discharge at or below `min_soc_pct` (nor with a reserve set and no
///   SoC read): then 0 W, and `target.limitedBy` says why.
/// - Setup writes (take control, W mode, enable, start) in profile order, each until confirmed.
/// - Failsafe (two-level, SPEC §2): the device's reversion timeout programmed with
///   `device_failsafe_timeout` and its reversion setpoint with its share of the fallback import
///   (never an export), each until confirmed; the setpoint is rewritten when it changes and at
///   least every `refreshIntervalMs` (≤ timeout/4), which restarts the device's own timer.
/// - A failed write is retried with backoff (1 s doubling to 10 s); a failed setpoint write also
///   makes setup and failsafe unconfirmed (the device may have reverted or restarted meanwhile),
///   so they are written again once it answers.
///
/// Values are in the device's sign (the profile's `sign`); times are monotonic ms.
public struct BidirectionalDriver: Sendable {
    public let settings: BidirectionalDriverSettings
    /// What the last turn decided.
    public private(set) var target: PowerTarget?
    /// The target last handed to the device (nil: unknown, e.g. after a failed write).
    public private(set) var written: PowerTarget?
    public private(set) var lastWriteError: String?
    private var tracks: [PowerRegister: Track] = [:]

    struct Track: Sendable, Equatable {
        var inFlight = false
        var confirmed: Double?
        var pending: Double?
        var lastAttemptMs: Int64 = Int64.min / 2
        var failures = 0
        var retryAtMs: Int64 = Int64.min / 2
    }

    public init(settings: BidirectionalDriverSettings) { self.settings = settings }

    /// The power the device should run at for `c` (pure: the rules above).
    public func decide(_ c: PowerCommand) -> PowerTarget {
        var w = c.setpointW ?? c.importLimitW
        var why: String?
        let importCap = max(0, min(c.importLimitW, c.chargeMaxW))
        if w > importCap {
            w = importCap
            // Without a setpoint it simply charges up to what it may: nothing was asked for.
            if c.setpointW != nil { why = c.importLimitW <= c.chargeMaxW ? "import_limit" : "hardware" }
        }
        let dischargeMax = max(0, settings.maxDischargeW ?? c.chargeMaxW)
        let exportCap = max(0, min(c.exportLimitW, dischargeMax))
        if w < 0 - exportCap {
            w = 0 - exportCap
            why = c.exportLimitW <= dischargeMax ? "export_limit" : "hardware"
        }
        if w < 0, let reserve = settings.minSocPct {
            if let soc = c.socPct {
                if soc <= reserve { w = 0; why = "soc_reserve" }
            } else {
                w = 0; why = "soc_unknown"
            }
        }
        w = w.rounded(.towardZero)
        if w == 0 { w = 0 }   // no -0
        return PowerTarget(w: w, limitedBy: why)
    }

    /// One control turn: the writes due now, in the order they must reach the device.
    public mutating func drive(_ c: PowerCommand, nowMs: Int64) -> [PowerWrite] {
        let t = decide(c)
        target = t
        var out: [PowerWrite] = []
        for (i, v) in settings.setupValues.enumerated() {
            if let w = program(.setup(i), to: v, nowMs: nowMs) { out.append(w) }
        }
        if settings.hasReversionTimeout, let w = program(.reversionTimeout, to: Double(settings.failsafeTimeoutMs / 1000), nowMs: nowMs) {
            out.append(w)
        }
        if settings.hasReversionSetpoint {
            let fallback = max(0, min(c.fallbackImportW, c.chargeMaxW)).rounded(.down)
            if let w = program(.reversionSetpoint, to: settings.sign.device(fallback) + 0, nowMs: nowMs) { out.append(w) }
        }
        if let w = setpointWrite(t, nowMs: nowMs) { out.append(w) }
        return out
    }

    /// A write finished. Returns true for the first failure of this register since it last
    /// succeeded (worth an error-priority log line; repeats are not).
    @discardableResult
    public mutating func completed(_ register: PowerRegister, error: String?, nowMs: Int64) -> Bool {
        var t = tracks[register] ?? Track()
        t.inFlight = false
        guard let error else {
            t.failures = 0
            t.confirmed = t.pending
            t.retryAtMs = Int64.min / 2
            tracks[register] = t
            if register == .setpoint { lastWriteError = nil }
            return false
        }
        let first = t.failures == 0
        t.failures += 1
        t.confirmed = nil
        t.retryAtMs = nowMs + ChargerDriver.backoff(failures: t.failures)
        tracks[register] = t
        lastWriteError = error
        if register == .setpoint {
            written = nil
            // What the device holds now is unknown: program it again once it answers (with the
            // setpoint, after its backoff, not into a device that does not answer).
            for (r, var other) in tracks where r != .setpoint {
                other.confirmed = nil
                other.retryAtMs = max(other.retryAtMs, t.retryAtMs)
                tracks[r] = other
            }
        }
        return first
    }

    /// The fault that derates the site: writes fail and the device does not answer polls either.
    public func fault(deviceAnswering: Bool) -> String? {
        guard !deviceAnswering, let e = lastWriteError else { return nil }
        return e
    }

    public func confirmed(_ register: PowerRegister) -> Double? { tracks[register]?.confirmed }
    public func failures(_ register: PowerRegister) -> Int { tracks[register]?.failures ?? 0 }

    /// The earliest instant a retry or the setpoint refresh is due.
    public func nextDueMs() -> Int64? {
        var due: Int64?
        for (register, t) in tracks where !t.inFlight {
            if t.failures > 0 { due = min(due ?? t.retryAtMs, t.retryAtMs); continue }
            if register == .setpoint {
                let at = t.lastAttemptMs + settings.refreshIntervalMs
                due = min(due ?? at, at)
            }
        }
        return due
    }

    // MARK: private

    private mutating func program(_ register: PowerRegister, to value: Double, nowMs: Int64) -> PowerWrite? {
        var t = tracks[register] ?? Track()
        guard !t.inFlight, t.confirmed != value, nowMs >= t.retryAtMs else { return nil }
        t.inFlight = true
        t.pending = value
        t.lastAttemptMs = nowMs
        tracks[register] = t
        return PowerWrite(register, value)
    }

    private mutating func setpointWrite(_ target: PowerTarget, nowMs: Int64) -> PowerWrite? {
        var t = tracks[.setpoint] ?? Track()
        guard !t.inFlight, nowMs >= t.retryAtMs else { return nil }
        guard written?.w != target.w || nowMs - t.lastAttemptMs >= settings.refreshIntervalMs else { return nil }
        let value = settings.sign.device(target.w) + 0
        t.inFlight = true
        t.pending = value
        t.lastAttemptMs = nowMs
        tracks[.setpoint] = t
        written = target
        return PowerWrite(.setpoint, value)
    }
}
