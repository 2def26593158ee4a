/// What the retained `root/state` says, reduced to what decides whether it is worth publishing
/// (`last_seen` and the exact `comm.since` are left out: they move with every poll or follow `comm`).
public struct StateDigest: Sendable, Equatable {
    public var source: String
    public var events: [String]
    public var schedules: [String]
    public var commOK: Bool
    public var paused: Bool
    public var appliedA: Double
    public var limitW: Double
    public var clockSynced: Bool
    public var nextTransitionMs: Int64?
    /// Per configured device, in configuration order: did it answer its last poll.
    public var devicesOK: [Bool]
    /// Everything else whose change is news, already reduced by the caller (device faults, the
    /// bidirectional devices' direction, setpoint and reason, the export limit to 100 W).
    public var details: String = ""

    public init(source: String, events: [String], schedules: [String], commOK: Bool, paused: Bool, appliedA: Double,
                limitW: Double, clockSynced: Bool, nextTransitionMs: Int64?, devicesOK: [Bool]) {
        self.source = source; self.events = events; self.schedules = schedules; self.commOK = commOK
        self.paused = paused; self.appliedA = appliedA; self.limitW = limitW; self.clockSynced = clockSynced
        self.nextTransitionMs = nextTransitionMs; self.devicesOK = devicesOK
    }
}

/// Decides when `root/state` is published: on a meaningful change, not on every wobble of a
/// measured voltage (the default limit is `max_current × phases × V`, so it follows the voltage).
///
/// - At once: the source, the active events or schedules, comm, paused, the applied current, the
///   clock, the next transition or a device's health changed; or the first publish of a session.
/// - The limit alone: when it moved more than the deadband (1 % of the last published limit, at
///   least 50 W) away from the last published value, at most once per `limitSpacingMs` (a restore
///   ramp of 500 W/s then publishes once a second, not on every loop turn).
/// - Otherwise a refresh every `refreshMs` = the telemetry interval, at least 30 s, which carries
///   the exact limit and `last_seen`.
/// Time is the caller's monotonic clock in milliseconds.
public struct StatePublishGate: Sendable {
    public enum Reason: String, Sendable, Equatable {
        case first, source, events, schedules, comm, paused, clock, devices
        case appliedCurrent = "applied_current"
        case nextTransition = "next_transition"
        case details
        case limit, refresh
    }

    public static let minimumRefreshMs: Int64 = 30_000
    public static let deadbandFraction = 0.01
    public static let deadbandMinimumW = 50.0
    public static let limitSpacingMs: Int64 = 1000

    public let refreshMs: Int64
    public private(set) var lastPublished: StateDigest?
    public private(set) var lastPublishMs: Int64 = 0

    public init(telemetryIntervalMs: Int64) {
        refreshMs = max(telemetryIntervalMs, Self.minimumRefreshMs)
    }

    /// The deadband around a published limit.
    public static func deadbandW(around limitW: Double) -> Double {
        max(abs(limitW) * deadbandFraction, deadbandMinimumW)
    }

    /// Why `state` should be published now, or nil to hold it. Pure: `offer` records the publish.
    public func reason(for state: StateDigest, nowMs: Int64) -> Reason? {
        guard let last = lastPublished else { return .first }
        if state.source != last.source { return .source }
        if state.events != last.events { return .events }
        if state.schedules != last.schedules { return .schedules }
        if state.commOK != last.commOK { return .comm }
        if state.paused != last.paused { return .paused }
        if state.appliedA != last.appliedA { return .appliedCurrent }
        if state.clockSynced != last.clockSynced { return .clock }
        if state.nextTransitionMs != last.nextTransitionMs { return .nextTransition }
        if state.devicesOK != last.devicesOK { return .devices }
        if state.details != last.details { return .details }
        let elapsed = nowMs - lastPublishMs
        if abs(state.limitW - last.limitW) > Self.deadbandW(around: last.limitW), elapsed >= Self.limitSpacingMs {
            return .limit
        }
        return elapsed >= refreshMs ? .refresh : nil
    }

    /// `reason(for:nowMs:)`, and when it is not nil the state counts as published at `nowMs`.
    public mutating func offer(_ state: StateDigest, nowMs: Int64) -> Reason? {
        guard let r = reason(for: state, nowMs: nowMs) else { return nil }
        lastPublished = state
        lastPublishMs = nowMs
        return r
    }

    /// A new broker session: the next offer publishes whatever it holds (a retained message may
    /// have been lost with a broker that keeps no persistence).
    public mutating func forget() { lastPublished = nil }
}
