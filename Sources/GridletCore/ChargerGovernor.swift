/// Per-charger gate between the engine's limit and the setpoint written (SPEC §2): a hysteresis around
/// the minimum current and `min_dwell` between pause and run.
///
/// Rules, with `a` the current the limit allows (W / (phases × V), rounded down to the resolution,
/// clamped to `max_current`) and `min` the charger's `min_current`:
/// - Running: keeps running at `a` while `a >= min`. When `a < min` it pauses at once: a limit is an
///   obligation and is never exceeded, so a pause is never delayed by `min_dwell`.
/// - Paused: resumes when `a >= min + hysteresis_a` (`control.resume_hysteresis_a`, default 0, capped
///   at `max_current`) and at least `min_dwell` has passed since it paused. `min_dwell` is what keeps
///   the charger from flapping; with a hysteresis of 0 a limit of exactly `min_current` (4140 W on
///   3 x 230 V) resumes a paused charger, as SPEC §2 says.
/// - The first decision (no history) applies directly.
/// Use a monotonic clock for `nowMs` (dwell is a duration).
public struct ChargerGovernor: Sendable, Equatable {
    public var minDwellMs: Int64
    public var hysteresisA: Double
    public private(set) var paused: Bool?
    public private(set) var lastSwitchMs: Int64?

    public init(minDwellMs: Int64, hysteresisA: Double = 0) {
        self.minDwellMs = minDwellMs; self.hysteresisA = hysteresisA
    }

    /// The setpoint to write now for a limit (W) on this charger.
    public mutating func govern(limitW: Double, phases: Int, voltage: Double, maxCurrent: Double, minCurrent: Double,
                                resolution: Double = 1, nowMs: Int64) -> ChargerSetpoint {
        let step = resolution > 0 ? resolution : 1
        var a = 0.0
        if limitW.isFinite, limitW > 0, voltage > 0, phases > 0 {
            a = ((limitW / (Double(phases) * voltage) + 1e-9) / step).rounded(.down) * step
            a = min(a, (maxCurrent / step).rounded(.down) * step)
        }
        return govern(allowedAmps: a, maxCurrent: maxCurrent, minCurrent: minCurrent, nowMs: nowMs)
    }

    /// The same with the allowed current already computed.
    public mutating func govern(allowedAmps a: Double, maxCurrent: Double, minCurrent: Double, nowMs: Int64) -> ChargerSetpoint {
        let resumeAt = min(minCurrent + hysteresisA, max(minCurrent, maxCurrent))
        let run: Bool
        switch paused {
        case nil:
            run = a >= minCurrent
        case false?:
            run = a >= minCurrent
        case true?:
            let dwellOK = lastSwitchMs.map { nowMs - $0 >= minDwellMs } ?? true
            run = dwellOK && a >= resumeAt
        }
        let nowPaused = !run
        if paused != nil, paused != nowPaused { lastSwitchMs = nowMs }
        if paused == nil { lastSwitchMs = nowMs }
        paused = nowPaused
        return run ? ChargerSetpoint(amps: a, paused: false) : ChargerSetpoint(amps: 0, paused: true)
    }

    /// The earliest instant a paused charger may resume (nil when running or with no history).
    public var resumeNotBeforeMs: Int64? {
        guard paused == true, let s = lastSwitchMs else { return nil }
        return s + minDwellMs
    }
}
