/// The registers a charger is driven through.
public enum ChargerRegister: String, Sendable, CaseIterable, Hashable {
    case setpoint
    case alive
    case failsafeCurrent = "failsafe current"
    case failsafeTimeout = "failsafe timeout"
}

/// What a `ChargerDriver` asks the I/O shell to do.
public enum ChargerAction: Sendable, Equatable {
    /// Write `value` (physical units: A, s, or the alive value) to the register.
    case write(ChargerRegister, value: Double)
    /// Read the register back (a failsafe register the profile says can be read).
    case read(ChargerRegister)
}

/// What a read-back of a failsafe register showed.
public enum ReadBackOutcome: Sendable, Equatable {
    /// The charger holds the value written.
    case verified
    /// It holds another value: written again after the backoff.
    case mismatch(read: Double, expected: Double)
    /// The read failed: the write stands (unverified), the error is reported once.
    case unreadable(String)
}

/// What a charger can do and how it must be driven, from its config and profile.
public struct ChargerDriverSettings: Sendable, Equatable {
    public var phases: Int
    public var maxCurrent: Double
    public var minCurrent: Double
    public var resolution: Double
    /// The profile has both failsafe registers (current and timeout).
    public var hasFailsafe: Bool
    /// The profile's alive register value, nil without one.
    public var aliveValue: Double?
    public var setpointValidityS: Double?
    public var refreshFraction: Double?
    public var failsafeTimeoutMs: Int64
    public var minDwellMs: Int64
    public var resumeHysteresisA: Double = 0
    /// Read each failsafe register back after writing it (profile `failsafe_readback`).
    public var failsafeReadback = false

    public init(phases: Int, maxCurrent: Double, minCurrent: Double, resolution: Double = 1, hasFailsafe: Bool = false,
                aliveValue: Double? = nil, setpointValidityS: Double? = nil, refreshFraction: Double? = nil,
                failsafeTimeoutMs: Int64, minDwellMs: Int64) {
        self.phases = phases; self.maxCurrent = maxCurrent; self.minCurrent = minCurrent; self.resolution = resolution
        self.hasFailsafe = hasFailsafe; self.aliveValue = aliveValue; self.setpointValidityS = setpointValidityS
        self.refreshFraction = refreshFraction; self.failsafeTimeoutMs = failsafeTimeoutMs; self.minDwellMs = minDwellMs
    }

    public init(device: DeviceConfig, control: ChargerControl, failsafeTimeoutMs: Int64, minDwellMs: Int64,
                resumeHysteresisA: Double = 0) {
        self.init(phases: device.phases, maxCurrent: device.maxCurrent, minCurrent: device.minCurrent,
                  resolution: control.currentResolution,
                  hasFailsafe: control.failsafeCurrent != nil && control.failsafeTimeout != nil,
                  aliveValue: control.alive.map { _ in Double(control.aliveValue) },
                  setpointValidityS: control.setpointValidityS, refreshFraction: control.refreshFraction,
                  failsafeTimeoutMs: failsafeTimeoutMs, minDwellMs: minDwellMs)
        self.resumeHysteresisA = resumeHysteresisA
        self.failsafeReadback = control.failsafeReadback
    }

    /// How often the alive register (or, without one, the setpoint) is written again: the
    /// profile's `refresh_fraction` of the failsafe timeout, never longer than a quarter of it
    /// (SPEC §2), default a quarter, at least 100 ms.
    public var refreshIntervalMs: Int64 {
        let fraction = min(refreshFraction ?? 0.25, 0.25)
        return max(100, Int64((Double(failsafeTimeoutMs) * fraction).rounded(.down)))
    }

    /// How often an unchanged setpoint is written again: the refresh interval, and at most half
    /// the charger's own validity time (Alfen drops a setpoint that is not rewritten).
    public var setpointRewriteMs: Int64 {
        guard let v = setpointValidityS else { return refreshIntervalMs }
        return max(100, min(refreshIntervalMs, Int64(v * 500)))
    }
}

/// One charger's driver: turns the engine's limit share into register writes, and owns every
/// decision between the limit and `modbus_write_register`.
///
/// - Setpoint: the limit in W becomes amps (W / (phases × V), resolution, `max_current`) through
///   the `ChargerGovernor` (`min_current`, `min_dwell`); written when it changes and again every
///   `setpointRewriteMs`.
/// - Failsafe (two-level, SPEC §2): the charger's own safe current (fallback in A) and timeout are
///   programmed at start and whenever the fallback changes. Each register is tracked on its own:
///   a success of one says nothing about the other, and a failed write is retried with backoff.
/// - Alive: written every `refreshIntervalMs`.
/// - A charger that refuses writes is retried with backoff (1 s doubling to 10 s), never in a
///   tight loop; while its writes fail and its polls fail too, it is a fault (SafetyDerate input).
///
/// Pure value type: times are monotonic milliseconds passed in; the shell performs the
/// returned actions and reports each completion with `completed`.
public struct ChargerDriver: Sendable {
    public let settings: ChargerDriverSettings
    public private(set) var governor: ChargerGovernor
    /// The setpoint the governor wants now.
    public private(set) var desired: ChargerSetpoint?
    /// The setpoint last handed to the charger (nil: unknown, e.g. after a failed write).
    public private(set) var written: ChargerSetpoint?
    /// The last write error, cleared by the next successful setpoint write.
    public private(set) var lastWriteError: String?
    private var tracks: [ChargerRegister: RegisterTrack] = [:]

    /// One register's write state.
    struct RegisterTrack: Sendable, Equatable {
        var inFlight = false
        /// The value the charger confirmed (a successful write), nil when unknown.
        var confirmed: Double?
        /// The value of the write in flight.
        var pending: Double?
        var lastAttemptMs: Int64 = Int64.min / 2
        var failures = 0
        var retryAtMs: Int64 = Int64.min / 2
        /// Written, to be read back (`failsafeReadback`); the read is in flight with `inFlight`.
        var awaitingReadBack = false
    }

    public static let backoffStartMs: Int64 = 1000
    public static let backoffMaxMs: Int64 = 10_000

    public init(settings: ChargerDriverSettings) {
        self.settings = settings
        self.governor = ChargerGovernor(minDwellMs: settings.minDwellMs, hysteresisA: settings.resumeHysteresisA)
    }

    /// One control turn: the limit share for this charger (W), the voltage to convert with, the
    /// fallback share (W) to program as the charger's own failsafe current.
    public mutating func drive(limitW: Double, voltage: Double, fallbackW: Double, nowMs: Int64) -> [ChargerAction] {
        let s = settings
        let sp = governor.govern(limitW: limitW, phases: s.phases, voltage: voltage, maxCurrent: s.maxCurrent,
                                 minCurrent: s.minCurrent, resolution: s.resolution, nowMs: nowMs)
        desired = sp
        var actions: [ChargerAction] = []
        if s.hasFailsafe {
            let fallback = ChargerSetpoint.compute(limitW: fallbackW, phases: s.phases, voltage: voltage,
                                                   maxCurrent: s.maxCurrent, minCurrent: s.minCurrent, resolution: s.resolution)
            if let a = program(.failsafeCurrent, to: fallback.amps, nowMs: nowMs) { actions.append(a) }
            if let a = program(.failsafeTimeout, to: Double(s.failsafeTimeoutMs / 1000), nowMs: nowMs) { actions.append(a) }
            for r in [ChargerRegister.failsafeCurrent, .failsafeTimeout] where tracks[r]?.awaitingReadBack == true && tracks[r]?.inFlight == false {
                tracks[r]?.inFlight = true
                actions.append(.read(r))
            }
        }
        if let a = setpointWrite(sp, nowMs: nowMs) { actions.append(a) }
        if let alive = s.aliveValue, let a = refresh(.alive, value: alive, everyMs: s.refreshIntervalMs, nowMs: nowMs) {
            actions.append(a)
        }
        return actions
    }

    /// A write finished. Returns true when it is the first failure of this register since it
    /// last succeeded (worth an error-priority log line; repeats are not).
    @discardableResult
    public mutating func completed(_ register: ChargerRegister, error: String?, nowMs: Int64) -> Bool {
        var t = tracks[register] ?? RegisterTrack()
        t.inFlight = false
        defer { tracks[register] = t }
        if let error {
            let first = t.failures == 0
            t.failures += 1
            t.confirmed = nil
            t.retryAtMs = nowMs + Self.backoff(failures: t.failures)
            lastWriteError = error
            // What the charger has now is unknown: write again (after the backoff).
            if register == .setpoint { written = nil }
            return first
        }
        t.failures = 0
        t.confirmed = t.pending
        t.retryAtMs = Int64.min / 2
        if register == .setpoint { lastWriteError = nil }
        if settings.failsafeReadback, register == .failsafeCurrent || register == .failsafeTimeout { t.awaitingReadBack = true }
        return false
    }

    /// A read-back finished: `value` as read (physical units), or the read's error.
    public mutating func readBack(_ register: ChargerRegister, value: Double?, error: String?, nowMs: Int64) -> ReadBackOutcome {
        var t = tracks[register] ?? RegisterTrack()
        t.inFlight = false
        t.awaitingReadBack = false
        defer { tracks[register] = t }
        guard let value, error == nil else { return .unreadable(error ?? "no value") }
        let expected = t.pending ?? 0
        // The register holds value/scale rounded: compare with half a step of slack.
        if abs(value - expected) < 0.01 { return .verified }
        t.confirmed = nil
        t.failures += 1
        t.retryAtMs = nowMs + Self.backoff(failures: t.failures)
        return .mismatch(read: value, expected: expected)
    }

    /// 1 s after the first failure, doubling up to 10 s.
    static func backoff(failures: Int) -> Int64 {
        min(backoffMaxMs, backoffStartMs << Int64(min(max(failures - 1, 0), 4)))
    }

    /// The fault that derates the site: writes fail and the charger does not answer polls either.
    public func fault(deviceAnswering: Bool) -> String? {
        guard !deviceAnswering, let e = lastWriteError else { return nil }
        return e
    }

    /// The failures in a row of a register (0 when its last write succeeded).
    public func failures(_ register: ChargerRegister) -> Int { tracks[register]?.failures ?? 0 }

    /// The value the charger confirmed for a register, nil when unknown.
    public func confirmed(_ register: ChargerRegister) -> Double? { tracks[register]?.confirmed }

    /// The earliest instant this driver has something to do without new input (a retry, a
    /// refresh), so the shell sleeps until then and not in fixed ticks.
    public func nextDueMs() -> Int64? {
        var due: Int64? = nil
        func consider(_ t: Int64) { due = min(due ?? t, t) }
        for (register, t) in tracks where !t.inFlight {
            if t.failures > 0 { consider(t.retryAtMs); continue }
            switch register {
            case .setpoint: consider(t.lastAttemptMs + settings.setpointRewriteMs)
            case .alive: consider(t.lastAttemptMs + settings.refreshIntervalMs)
            case .failsafeCurrent, .failsafeTimeout: break
            }
        }
        if let r = governor.resumeNotBeforeMs { consider(r) }
        return due
    }

    // MARK: private

    /// A failsafe register: written until the charger confirmed the wanted value.
    private mutating func program(_ register: ChargerRegister, to value: Double, nowMs: Int64) -> ChargerAction? {
        var t = tracks[register] ?? RegisterTrack()
        guard !t.inFlight, !t.awaitingReadBack, t.confirmed != value, nowMs >= t.retryAtMs else { return nil }
        t.inFlight = true
        t.pending = value
        t.lastAttemptMs = nowMs
        tracks[register] = t
        return .write(register, value: value)
    }

    private mutating func setpointWrite(_ sp: ChargerSetpoint, nowMs: Int64) -> ChargerAction? {
        var t = tracks[.setpoint] ?? RegisterTrack()
        guard !t.inFlight, nowMs >= t.retryAtMs else { return nil }
        guard written != sp || nowMs - t.lastAttemptMs >= settings.setpointRewriteMs else { return nil }
        t.inFlight = true
        t.pending = sp.amps
        t.lastAttemptMs = nowMs
        tracks[.setpoint] = t
        written = sp
        return .write(.setpoint, value: sp.amps)
    }

    private mutating func refresh(_ register: ChargerRegister, value: Double, everyMs: Int64, nowMs: Int64) -> ChargerAction? {
        var t = tracks[register] ?? RegisterTrack()
        guard !t.inFlight, nowMs >= t.retryAtMs else { return nil }
        guard t.failures > 0 || nowMs - t.lastAttemptMs >= everyMs else { return nil }
        t.inFlight = true
        t.pending = value
        t.lastAttemptMs = nowMs
        tracks[register] = t
        return .write(register, value: value)
    }
}
