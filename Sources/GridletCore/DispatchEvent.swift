/// IEEE 2030.5 event response codes used on `root/responses`.
public enum ResponseStatus: Int, Sendable, Equatable {
    case received = 1, started = 2, completed = 3, optedOut = 4, cancelled = 6, superseded = 7
    case rejectedNotApplicable = 252, rejectedInvalid = 253, rejectedExpired = 254

    public var name: String {
        switch self {
        case .received: return "received"
        case .started: return "started"
        case .completed: return "completed"
        case .optedOut: return "opted_out"
        case .cancelled: return "cancelled"
        case .superseded: return "superseded"
        case .rejectedNotApplicable: return "rejected_not_applicable"
        case .rejectedInvalid: return "rejected_invalid"
        case .rejectedExpired: return "rejected_expired"
        }
    }
}

/// A dispatch event from the utility: a power limit for a time window.
public struct DispatchEvent: Sendable, Equatable {
    public enum Phase: String, Sendable, Equatable { case scheduled, active }

    public var id: String
    public var createdMs: Int64
    /// Requested start; the effective start adds the persisted random draw.
    public var startMs: Int64
    public var durationMs: Int64
    public var limitW: Double
    public var primacy: Int
    public var randomizeStartS: Int
    /// Drawn once in [0, randomize_start_s] when the event is first stored; persisted.
    public var randomDelayMs: Int64
    public var optOutAllowed: Bool
    public var maxOfflineS: Int?
    public var phase: Phase
    /// Set by `cmd/cancel`: the instant the cancellation takes effect.
    public var cancelAtMs: Int64?
    /// The customer opted out (response 4 sent); kept until its end so a re-delivery does not revive it.
    public var optedOut: Bool = false
    /// No instant of its remaining window wins (response 7 sent); kept until its end like an opt-out.
    public var superseded: Bool = false
    /// `created` / `start` were absent and took the time of receipt: a redelivery of the same
    /// event keeps the first receipt's (not persisted: stored events are anchored already).
    /// Not part of `==`: it says how the event arrived, not what it is.
    public var createdAtReceipt = false
    public var startAtReceipt = false
    /// Signed power setpoint in W while the event wins: + import/charge, − export/discharge
    /// (docs/control.md "Export and setpoints"); nil: the event only limits import.
    public var setpointW: Double? = nil
    /// The most the site's bidirectional devices may export while the event wins (W, ≥ 0); nil:
    /// the event does not restrict export (a negative `setpointW` then allows its own export).
    public var exportLimitW: Double? = nil
    /// The market or programme the event belongs to (e.g. `caiso-reg`): carried into the energy
    /// ledger, so award-hour energy is summed apart from retail energy.
    public var market: String? = nil

    public init(id: String, createdMs: Int64, startMs: Int64, durationMs: Int64, limitW: Double, primacy: Int = 1,
                randomizeStartS: Int = 0, randomDelayMs: Int64 = 0, optOutAllowed: Bool = false, maxOfflineS: Int? = nil,
                phase: Phase = .scheduled, cancelAtMs: Int64? = nil,
                createdAtReceipt: Bool = false, startAtReceipt: Bool = false) {
        self.createdAtReceipt = createdAtReceipt; self.startAtReceipt = startAtReceipt
        self.id = id; self.createdMs = createdMs; self.startMs = startMs; self.durationMs = durationMs
        self.limitW = limitW; self.primacy = primacy; self.randomizeStartS = randomizeStartS
        self.randomDelayMs = randomDelayMs; self.optOutAllowed = optOutAllowed; self.maxOfflineS = maxOfflineS
        self.phase = phase; self.cancelAtMs = cancelAtMs
    }

    public var effectiveStartMs: Int64 { startMs + randomDelayMs }
    /// Still competing for the Target: neither opted out nor superseded.
    public var isLive: Bool { !optedOut && !superseded }
    /// The end of the window, or the pending cancellation if earlier.
    public var effectiveEndMs: Int64 { cancelAtMs.map { min($0, endMs) } ?? endMs }
    /// The event window ends `duration` after its effective start.
    public var endMs: Int64 { effectiveStartMs + durationMs }

    /// True when `a` takes precedence over `b` (SPEC §2: lower primacy, then later created, then larger id).
    public static func precedes(_ a: DispatchEvent, _ b: DispatchEvent) -> Bool {
        if a.primacy != b.primacy { return a.primacy < b.primacy }
        if a.createdMs != b.createdMs { return a.createdMs > b.createdMs }
        return b.id.utf8.lexicographicallyPrecedes(a.id.utf8)
    }

    public static func == (a: DispatchEvent, b: DispatchEvent) -> Bool {
        a.sameRequest(as: b) && a.randomDelayMs == b.randomDelayMs && a.phase == b.phase && a.cancelAtMs == b.cancelAtMs
            && a.optedOut == b.optedOut && a.superseded == b.superseded
    }

    /// Same request, ignoring the lifecycle fields: a duplicate delivery changes nothing.
    public func sameRequest(as other: DispatchEvent) -> Bool {
        id == other.id && createdMs == other.createdMs && startMs == other.startMs && durationMs == other.durationMs
            && limitW == other.limitW && primacy == other.primacy && randomizeStartS == other.randomizeStartS
            && optOutAllowed == other.optOutAllowed && maxOfflineS == other.maxOfflineS
            && setpointW == other.setpointW && exportLimitW == other.exportLimitW && market == other.market
    }
}

/// One lifecycle record for `root/responses`.
public struct EventResponse: Sendable, Equatable {
    public var event: String
    public var status: ResponseStatus
    public var atMs: Int64
    public var effectiveStartMs: Int64?
    /// Why the event was refused (252 rejected not applicable), for the sender.
    public var reason: String?
    public init(event: String, status: ResponseStatus, atMs: Int64, effectiveStartMs: Int64? = nil, reason: String? = nil) {
        self.event = event; self.status = status; self.atMs = atMs; self.effectiveStartMs = effectiveStartMs
        self.reason = reason
    }

    /// The record body without `seq` (the queue adds it).
    public var jsonFields: [(String, JSONValue)] {
        var f: [(String, JSONValue)] = [
            ("event", .string(event)), ("status", .number(Double(status.rawValue))),
            ("status_name", .string(status.name)), ("at", .string(Timestamp.format(ms: atMs))),
        ]
        if let e = effectiveStartMs { f.append(("effective_start", .string(Timestamp.format(ms: e)))) }
        if let r = reason { f.append(("reason", .string(r))) }
        return f
    }
}
