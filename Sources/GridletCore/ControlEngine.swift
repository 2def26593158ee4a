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

    public init(defaultLimitW: Double? = nil, fallbackLimitW: Double = 1400, commLossTimeoutMs: Int64 = 120_000,
                heartbeatRequired: Bool = false, restoreDelayMs: Int64 = 30_000, restoreRandomMs: Int64 = 120_000,
                rampWPerS: Double = 500, maxImportW: Double? = nil) {
        self.defaultLimitW = defaultLimitW; self.fallbackLimitW = fallbackLimitW; self.commLossTimeoutMs = commLossTimeoutMs
        self.heartbeatRequired = heartbeatRequired; self.restoreDelayMs = restoreDelayMs; self.restoreRandomMs = restoreRandomMs
        self.rampWPerS = rampWPerS; self.maxImportW = maxImportW
    }

    public init(_ c: ControlConfig, site: SiteConfig) {
        self.init(defaultLimitW: c.defaultLimitW, fallbackLimitW: c.fallbackLimitW, commLossTimeoutMs: c.commLossTimeoutMs,
                  heartbeatRequired: c.heartbeatRequired, restoreDelayMs: c.restoreDelayMs, restoreRandomMs: c.restoreRandomMs,
                  rampWPerS: c.rampWPerS, maxImportW: site.maxImportW)
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

    public init(hardwareMaxW: Double, hasSiteMeter: Bool = false, siteMeterPowerW: Double? = nil, chargerPowerW: Double = 0,
                faultyDevice: String? = nil) {
        self.hardwareMaxW = hardwareMaxW; self.hasSiteMeter = hasSiteMeter; self.siteMeterPowerW = siteMeterPowerW
        self.chargerPowerW = chargerPowerW; self.faultyDevice = faultyDevice
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
}

/// The control arbiter and event lifecycle (SPEC §2 and §3), as a value driven by the caller's
/// clock: it takes commands and the time, and returns what to publish. The agent carries
/// out the result (writes the charger, queues the responses) and persists `persistentState`
/// before it acknowledges anything.
public struct ControlEngine: Sendable {
    public static let maxEvents = 256

    public var settings: ControlSettings
    public private(set) var events: [DispatchEvent] = []
    public private(set) var eventsVersion: Int = -1

    // Comm tracking.
    public private(set) var sessionUp = false
    public private(set) var lastContactMs: Int64
    private var commLost = false
    private var commChangedMs: Int64

    // Restore after a restricting source ends.
    private var lastSource = "default"
    private var lastTargetW: Double?
    private var lastActiveIDs: Set<String> = []
    private var restore: (fromW: Double, rampStartMs: Int64)?
    private var rng: SplitMix64

    public init(settings: ControlSettings, nowMs: Int64, seed: UInt64) {
        self.settings = settings
        self.lastContactMs = nowMs
        self.commChangedMs = nowMs
        self.rng = SplitMix64(seed: seed)
    }

    // MARK: comm

    /// The MQTT session came up.
    public mutating func sessionConnected(nowMs: Int64) {
        sessionUp = true
        if !settings.heartbeatRequired { lastContactMs = nowMs }
    }

    public mutating func sessionDisconnected(nowMs: Int64) {
        if sessionUp, !settings.heartbeatRequired { lastContactMs = nowMs }
        sessionUp = false
    }

    /// A valid message arrived on a command topic.
    public mutating func commandContact(nowMs: Int64) {
        lastContactMs = nowMs
    }

    public func isCommLost(nowMs: Int64) -> Bool {
        if sessionUp, !settings.heartbeatRequired { return false }
        return nowMs - lastContactMs > settings.commLossTimeoutMs
    }

    // MARK: commands

    public struct Outcome: Sendable, Equatable {
        public var error: CommandError?
        public var responses: [EventResponse]
        /// True when stored state changed (persist before replying).
        public var changed: Bool
    }

    public mutating func handle(_ command: Command, nowMs: Int64) -> Outcome {
        if settings.heartbeatRequired { commandContact(nowMs: nowMs) }
        switch command {
        case .ping:
            return Outcome(error: nil, responses: [], changed: false)
        case let .event(e):
            return upsert(e, nowMs: nowMs)
        case let .events(version, set):
            guard version > eventsVersion else {
                return Outcome(error: nil, responses: [], changed: false)
            }
            var responses: [EventResponse] = []
            let keep = Set(set.map(\.id))
            for old in events where !keep.contains(old.id) {
                responses.append(EventResponse(event: old.id, status: .cancelled, atMs: nowMs))
            }
            events.removeAll { !keep.contains($0.id) }
            for e in set {
                responses += upsert(e, nowMs: nowMs).responses
            }
            eventsVersion = version
            return Outcome(error: nil, responses: responses, changed: true)
        case let .cancel(id, randomizeS):
            guard let i = events.firstIndex(where: { $0.id == id }) else {
                return Outcome(error: CommandError(code: "not_found", message: "no stored event with id '\(id)'", path: "id"),
                               responses: [], changed: false)
            }
            let delay = randomizeS > 0 ? Int64(rng.next() % UInt64(randomizeS * 1000 + 1)) : 0
            if delay == 0 {
                events.remove(at: i)
                return Outcome(error: nil, responses: [EventResponse(event: id, status: .cancelled, atMs: nowMs)], changed: true)
            }
            events[i].cancelAtMs = nowMs + delay
            return Outcome(error: nil, responses: [], changed: true)
        case let .optOut(id):
            guard let i = events.firstIndex(where: { $0.id == id }) else {
                return Outcome(error: CommandError(code: "not_found", message: "no stored event with id '\(id)'", path: "id"),
                               responses: [], changed: false)
            }
            guard events[i].optOutAllowed else {
                return Outcome(error: CommandError(code: "not_allowed", message: "event '\(id)' does not allow opt-out", path: "id"),
                               responses: [], changed: false)
            }
            events.remove(at: i)
            return Outcome(error: nil, responses: [EventResponse(event: id, status: .optedOut, atMs: nowMs)], changed: true)
        }
    }

    private mutating func upsert(_ incoming: DispatchEvent, nowMs: Int64) -> Outcome {
        var e = incoming
        if let i = events.firstIndex(where: { $0.id == e.id }) {
            let old = events[i]
            if old.sameRequest(as: e) { return Outcome(error: nil, responses: [], changed: false) }
            e.randomDelayMs = old.randomizeStartS == e.randomizeStartS ? old.randomDelayMs : draw(e.randomizeStartS)
            if e.endMs <= nowMs {
                events.remove(at: i)
                return Outcome(error: nil, responses: [EventResponse(event: e.id, status: .rejectedExpired, atMs: nowMs)], changed: true)
            }
            e.phase = old.phase
            events[i] = e
            return Outcome(error: nil, responses: [EventResponse(event: e.id, status: .received, atMs: nowMs,
                                                                 effectiveStartMs: e.effectiveStartMs)], changed: true)
        }
        e.randomDelayMs = draw(e.randomizeStartS)
        if e.endMs <= nowMs {
            return Outcome(error: nil, responses: [EventResponse(event: e.id, status: .rejectedExpired, atMs: nowMs)], changed: false)
        }
        guard events.count < Self.maxEvents else {
            return Outcome(error: CommandError(code: "too_many_events", message: "at most \(Self.maxEvents) events can be stored; cancel some first"),
                           responses: [EventResponse(event: e.id, status: .rejectedInvalid, atMs: nowMs)], changed: false)
        }
        events.append(e)
        events.sort { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
        return Outcome(error: nil, responses: [EventResponse(event: e.id, status: .received, atMs: nowMs,
                                                             effectiveStartMs: e.effectiveStartMs)], changed: true)
    }

    private mutating func draw(_ seconds: Int) -> Int64 {
        seconds > 0 ? Int64(rng.next() % UInt64(seconds * 1000 + 1)) : 0
    }

    // MARK: time

    /// Advances lifecycles to `nowMs`: started, completed, delayed cancellations.
    /// Returns the responses to publish and whether stored state changed.
    public mutating func advance(nowMs: Int64) -> (responses: [EventResponse], changed: Bool) {
        var responses: [EventResponse] = []
        var changed = false
        var remaining: [DispatchEvent] = []
        for var e in events {
            if let c = e.cancelAtMs, nowMs >= c {
                responses.append(EventResponse(event: e.id, status: .cancelled, atMs: c))
                changed = true
                continue
            }
            if nowMs >= e.endMs {
                if e.phase == .scheduled, e.effectiveStartMs < e.endMs {
                    // The whole window passed without the agent seeing its start (it was stopped).
                    responses.append(EventResponse(event: e.id, status: .started, atMs: e.effectiveStartMs,
                                                   effectiveStartMs: e.effectiveStartMs))
                }
                responses.append(EventResponse(event: e.id, status: .completed, atMs: e.endMs))
                changed = true
                continue
            }
            if nowMs >= e.effectiveStartMs, e.phase == .scheduled {
                e.phase = .active
                responses.append(EventResponse(event: e.id, status: .started, atMs: nowMs, effectiveStartMs: e.effectiveStartMs))
                changed = true
            }
            remaining.append(e)
        }
        events = remaining
        let lost = isCommLost(nowMs: nowMs)
        if lost != commLost {
            commLost = lost
            commChangedMs = lost ? lastContactMs + settings.commLossTimeoutMs : nowMs
        }
        return (responses, changed)
    }

    /// Events valid now: in their window, not cancelled, and (during comm loss) within max_offline.
    public func activeEvents(nowMs: Int64) -> [DispatchEvent] {
        let lost = isCommLost(nowMs: nowMs)
        return events.filter { e in
            guard nowMs >= e.effectiveStartMs, nowMs < e.endMs else { return false }
            if lost, let m = e.maxOfflineS, nowMs - lastContactMs > Int64(m) * 1000 { return false }
            return true
        }.sorted(by: DispatchEvent.precedes)
    }

    /// The effective limit now. Mutating because it tracks the restore ramp.
    public mutating func decide(nowMs: Int64, inputs: ControlInputs) -> ControlDecision {
        let lost = isCommLost(nowMs: nowMs)
        let active = activeEvents(nowMs: nowMs)
        var source: String
        var targetW: Double
        if let winner = active.first {
            source = "dispatch:\(winner.id)"
            targetW = winner.limitW
        } else if lost {
            source = "fallback"
            targetW = settings.fallbackLimitW
        } else {
            source = "default"
            targetW = settings.defaultLimitW ?? inputs.hardwareMaxW
        }

        // Restore without snap-back: when a restricting source ends and the target rises,
        // hold the old limit for restore_delay + random, then ramp. A new dispatch applies at once.
        var limited = targetW
        var limitSource = source
        var restoring = false
        // A dispatch winner that was not active at the previous decision is new and applies at once; one that
        // takes over because a restricting source ended (e.g. a higher-precedence event ended) is restored.
        let newDispatch = active.first.map { !lastActiveIDs.contains($0.id) } ?? false
        lastActiveIDs = Set(active.map(\.id))
        if newDispatch {
            restore = nil
        } else if restore == nil, let last = lastTargetW, targetW > last, source != lastSource {
            let delay = settings.restoreDelayMs
                + (settings.restoreRandomMs > 0 ? Int64(rng.next() % UInt64(settings.restoreRandomMs + 1)) : 0)
            restore = (last, nowMs + delay)
        }
        if let r = restore {
            let ramped = nowMs < r.rampStartMs ? r.fromW
                : r.fromW + settings.rampWPerS * Double(nowMs - r.rampStartMs) / 1000
            if ramped >= targetW { restore = nil } else { limited = ramped; restoring = true }
        }
        lastSource = source
        lastTargetW = limited

        var limitW = min(limited, inputs.hardwareMaxW)
        if let maxImport = settings.maxImportW {
            if inputs.hasSiteMeter, let site = inputs.siteMeterPowerW {
                let other = max(0, site - inputs.chargerPowerW)
                let siteLimit = max(0, maxImport - other)
                if siteLimit < limitW { limitW = siteLimit; limitSource = "site_limit" }
            } else if maxImport < limitW {
                // No meter, or no fresh reading: the other load is unknown but never negative, so max_import_w still bounds.
                limitW = maxImport; limitSource = "site_limit"
            }
        }
        if inputs.hasSiteMeter, inputs.siteMeterPowerW == nil, settings.fallbackLimitW < limitW {
            limitW = settings.fallbackLimitW; limitSource = "derate:meter_stale"
        } else if let f = inputs.faultyDevice, settings.fallbackLimitW < limitW {
            limitW = settings.fallbackLimitW; limitSource = "derate:\(f)_fault"
        }

        var next: Int64? = nil
        func consider(_ t: Int64) { if t > nowMs, next.map({ t < $0 }) ?? true { next = t } }
        for e in events {
            consider(e.effectiveStartMs); consider(e.endMs)
            if let c = e.cancelAtMs { consider(c) }
        }
        if !lost, !sessionUp || settings.heartbeatRequired { consider(lastContactMs + settings.commLossTimeoutMs + 1) }
        if let r = restore { consider(r.rampStartMs) }

        return ControlDecision(limitW: max(0, limitW), source: limitSource, activeEvents: active.map(\.id),
                               commOK: !lost, commSinceMs: commChangedMs, nextTransitionMs: next, restoring: restoring)
    }

    // MARK: persistence

    /// Everything received that must survive a restart, as JSON.
    public var persistentState: JSONValue {
        .object([
            ("version", .number(1)),
            ("events_version", .number(Double(eventsVersion))),
            ("events", .array(events.map { e in
                var o: [(String, JSONValue)] = [
                    ("id", .string(e.id)), ("created_ms", .number(Double(e.createdMs))),
                    ("start_ms", .number(Double(e.startMs))), ("duration_ms", .number(Double(e.durationMs))),
                    ("limit_w", .number(e.limitW)), ("primacy", .number(Double(e.primacy))),
                    ("randomize_start_s", .number(Double(e.randomizeStartS))),
                    ("random_delay_ms", .number(Double(e.randomDelayMs))), ("opt_out", .bool(e.optOutAllowed)),
                    ("phase", .string(e.phase.rawValue)),
                ]
                if let m = e.maxOfflineS { o.append(("max_offline_s", .number(Double(m)))) }
                if let c = e.cancelAtMs { o.append(("cancel_at_ms", .number(Double(c)))) }
                return .object(o)
            })),
        ])
    }

    /// Restores what `persistentState` saved; entries that do not parse are skipped.
    public mutating func restorePersistentState(_ json: JSONValue) {
        if let v = json["events_version"]?.doubleValue { eventsVersion = Int(v) }
        guard let list = json["events"]?.arrayValue else { return }
        var restored: [DispatchEvent] = []
        for item in list {
            guard let id = item["id"]?.stringValue, let created = item["created_ms"]?.doubleValue,
                  let start = item["start_ms"]?.doubleValue, let duration = item["duration_ms"]?.doubleValue,
                  let limit = item["limit_w"]?.doubleValue, let primacy = item["primacy"]?.doubleValue else { continue }
            restored.append(DispatchEvent(
                id: id, createdMs: Int64(created), startMs: Int64(start), durationMs: Int64(duration), limitW: limit,
                primacy: Int(primacy), randomizeStartS: Int(item["randomize_start_s"]?.doubleValue ?? 0),
                randomDelayMs: Int64(item["random_delay_ms"]?.doubleValue ?? 0),
                optOutAllowed: item["opt_out"]?.boolValue ?? false,
                maxOfflineS: item["max_offline_s"]?.doubleValue.map { Int($0) },
                phase: DispatchEvent.Phase(rawValue: item["phase"]?.stringValue ?? "") ?? .scheduled,
                cancelAtMs: item["cancel_at_ms"]?.doubleValue.map { Int64($0) }))
        }
        events = Array(restored.prefix(Self.maxEvents))
    }
}

/// A small deterministic PRNG (SplitMix64), so random delays are reproducible in tests.
public struct SplitMix64: Sendable, RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
