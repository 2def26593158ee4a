/// The control arbiter and event lifecycle (SPEC §2 and §3), as a value driven by the caller's
/// clock: it takes commands and the time, and returns what to publish. The agent carries
/// out the result (writes the charger, queues the responses) and persists `persistentState`
/// before it acknowledges anything.
public struct ControlEngine: Sendable {
    public static let maxEvents = 256

    public var settings: ControlSettings
    public internal(set) var events: [DispatchEvent] = []
    public internal(set) var eventsVersion: Int = -1
    /// Digest of the payload that set `eventsVersion` (a redelivery of it is not stale).
    public internal(set) var eventsDigest: UInt64 = 0
    public internal(set) var schedulesDigest: UInt64 = 0

    // Schedules: the config set plus the remote set (`cmd/schedules`); a remote schedule replaces a config
    // schedule of the same id.
    public internal(set) var configSchedules: [ScheduleConfig] = []
    public internal(set) var configHolidays: [String: [String]] = [:]
    public internal(set) var remoteSchedules: [ScheduleConfig] = []
    public internal(set) var remoteHolidays: [String: [String]] = [:]
    public internal(set) var schedulesVersion: Int = -1
    public internal(set) var calendar = ScheduleCalendar(schedules: [], holidays: [:], zone: .utc)
    /// Opted-out schedule occurrences, kept until their end.
    public internal(set) var scheduleOptOuts: [ScheduleWindow] = []
    var nextScheduleTransition: (validFrom: Int64, validUntil: Int64, at: Int64?)?

    // Comm tracking.
    public internal(set) var sessionUp = false
    public internal(set) var lastContactMs: Int64
    var commLost = false
    var commChangedMs: Int64
    /// The last wall time a previous run saw (see `restoreComm`).
    public internal(set) var wallFloorMs: Int64 = 0

    // Restore after a restricting source ends.
    var lastSource = "default"
    var lastTargetW: Double?
    var lastActiveIDs: Set<String> = []
    var restore: (fromW: Double, rampStartMs: Int64)?
    var rng: SplitMix64

    public init(settings: ControlSettings, nowMs: Int64, seed: UInt64) {
        self.settings = settings
        self.lastContactMs = nowMs
        self.commChangedMs = nowMs
        self.rng = SplitMix64(seed: seed)
    }

    /// Sets the site's time zone and the config file's schedules and holiday lists (call once at start,
    /// before `restorePersistentState`, and again on a config reload).
    public mutating func configureSchedules(_ schedules: [ScheduleConfig], holidays: [String: [String]], zone: TimeZoneRules) {
        configSchedules = schedules
        configHolidays = holidays
        calendar.zone = zone
        rebuildCalendar()
    }

    mutating func rebuildCalendar() {
        let remoteIDs = Set(remoteSchedules.map(\.id))
        var holidays = configHolidays
        for (k, v) in remoteHolidays { holidays[k] = v }
        calendar = ScheduleCalendar(schedules: configSchedules.filter { !remoteIDs.contains($0.id) } + remoteSchedules,
                                    holidays: holidays, zone: calendar.zone)
        nextScheduleTransition = nil
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

    /// The instant contact is known to have lasted until: now while a session counts as contact.
    /// The agent persists it, so a restart during an outage does not count as contact.
    public func contactMs(nowMs: Int64) -> Int64 {
        sessionUp && !settings.heartbeatRequired ? nowMs : lastContactMs
    }

    /// Restores the contact saved by the previous run (call once at start, before the first
    /// decision). `nil` (first boot, no history): contact counts from the start, so comm is lost
    /// only when no contact comes within `comm_loss_timeout` (SPEC §2). An outage that was in
    /// progress is still in progress; a saved contact later than now (the clock went back) is
    /// treated as lost, since how long the outage lasted is unknown. `wallMs` is the last wall time
    /// the previous run saw: a clock behind it is not trusted unless synchronised.
    public mutating func restoreComm(lastContactMs saved: Int64?, wallMs: Int64?, nowMs: Int64) {
        if let w = wallMs { wallFloorMs = max(wallFloorMs, w) }
        guard let saved else { return }
        lastContactMs = saved <= nowMs ? saved : nowMs - settings.commLossTimeoutMs - 1
        commLost = isCommLost(nowMs: nowMs)
        commChangedMs = commLost ? lastContactMs + settings.commLossTimeoutMs : nowMs
    }

    /// True when the wall clock can be trusted: synchronised, or not behind the build date or the
    /// last wall time a previous run saw (a board without RTC after a power cut).
    public func clockTrusted(nowMs: Int64, synced: Bool) -> Bool {
        synced || nowMs >= max(settings.buildDateMs, wallFloorMs)
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

    /// `payloadDigest`: of the command's payload (`payloadDigest(_:)`), so a redelivery of the same
    /// retained `cmd/events` or `cmd/schedules` is told from a different set with the same version.
    public mutating func handle(_ command: Command, nowMs: Int64, payloadDigest digest: UInt64 = 0) -> Outcome {
        if settings.heartbeatRequired { commandContact(nowMs: nowMs) }
        var outcome = handleCommand(command, nowMs: nowMs, digest: digest)
        if outcome.changed { outcome.responses += supersede(nowMs: nowMs) }
        return outcome
    }

    private mutating func handleCommand(_ command: Command, nowMs: Int64, digest: UInt64) -> Outcome {
        switch command {
        case .ping:
            return Outcome(error: nil, responses: [], changed: false)
        case let .event(e):
            return upsert(e, nowMs: nowMs)
        case let .events(version, set):
            if let stale = versionCheck(.events, version: version, digest: digest) { return stale }
            eventsDigest = digest
            var responses: [EventResponse] = []
            // The set replaces the MQTT events; OpenADR's are replaced by `replaceOpenADR` only.
            let keep = Set(set.map(\.id))
            for old in events where !keep.contains(old.id) && old.isLive && !OpenADREvents.owns(old.id) {
                responses.append(EventResponse(event: old.id, status: .cancelled, atMs: nowMs))
            }
            events.removeAll { !keep.contains($0.id) && !OpenADREvents.owns($0.id) }
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
            if !events[i].isLive {
                // Already final (opted out or superseded): forget it without another response.
                events.remove(at: i)
                return Outcome(error: nil, responses: [], changed: true)
            }
            let delay = randomizeS > 0 ? Int64(rng.next() % UInt64(randomizeS * 1000 + 1)) : 0
            if delay == 0 {
                events.remove(at: i)
                return Outcome(error: nil, responses: [EventResponse(event: id, status: .cancelled, atMs: nowMs)], changed: true)
            }
            events[i].cancelAtMs = nowMs + delay
            return Outcome(error: nil, responses: [], changed: true)
        case let .optOut(id):
            return optOut(id, nowMs: nowMs)
        case let .schedules(version, set, holidays):
            if let stale = versionCheck(.schedules, version: version, digest: digest) { return stale }
            for (i, s) in set.enumerated() {
                if let e = s.except, holidays[e] == nil, configHolidays[e] == nil {
                    let known = Set(holidays.keys).union(configHolidays.keys).sorted()
                    return Outcome(error: CommandError(code: "invalid", message: "no holiday list named '\(e)'"
                                                       + (known.isEmpty ? " (none defined)" : "; defined lists: \(known.joined(separator: ", "))"),
                                                       path: "schedules[\(i)].except"), responses: [], changed: false)
                }
            }
            remoteSchedules = set
            remoteHolidays = holidays
            schedulesVersion = version
            schedulesDigest = digest
            rebuildCalendar()
            return Outcome(error: nil, responses: [], changed: true)
        }
    }

    public enum VersionedSet: String, Sendable, CaseIterable { case events, schedules }

    /// A version not above the current one changes nothing (SPEC §3). The same payload again (a
    /// retained set redelivered at every reconnect) is answered ok; anything else says
    /// `stale_version` with the version in force, so a DERMS is never silently locked out.
    private func versionCheck(_ set: VersionedSet, version: Int, digest: UInt64) -> Outcome? {
        let current = set == .events ? eventsVersion : schedulesVersion
        guard version <= current else { return nil }
        if version == current, digest == (set == .events ? eventsDigest : schedulesDigest) {
            return Outcome(error: nil, responses: [], changed: false)
        }
        return Outcome(error: CommandError(
            code: "stale_version",
            message: "version \(version) is not above the current \(set.rawValue) version \(current): nothing changed; "
                + "send version \(current + 1) or higher, or reset it on the site with `gridlet version reset \(set.rawValue)`",
            path: "version", currentVersion: current), responses: [], changed: false)
    }

    /// Forgets the version of the events or schedules set (`gridlet version reset`), so the next
    /// set is accepted whatever its version; what is stored stays until that set replaces it.
    /// Returns the version that was in force.
    public mutating func resetVersion(_ set: VersionedSet) -> Int {
        switch set {
        case .events:
            defer { eventsVersion = -1; eventsDigest = 0 }
            return eventsVersion
        case .schedules:
            defer { schedulesVersion = -1; schedulesDigest = 0 }
            return schedulesVersion
        }
    }

    /// `cmd/optout`: an event id, else a schedule id (its current, else next, occurrence).
    private mutating func optOut(_ id: String, nowMs: Int64) -> Outcome {
        if let i = events.firstIndex(where: { $0.id == id }) {
            guard events[i].optOutAllowed else {
                return Outcome(error: CommandError(code: "not_allowed", message: "event '\(id)' does not allow opt-out (opt_out: false)", path: "id"),
                               responses: [], changed: false)
            }
            if events[i].optedOut { return Outcome(error: nil, responses: [], changed: false) }
            if events[i].superseded {
                return Outcome(error: CommandError(code: "not_allowed", message: "event '\(id)' was superseded and no longer applies", path: "id"),
                               responses: [], changed: false)
            }
            events[i].optedOut = true
            return Outcome(error: nil, responses: [EventResponse(event: id, status: .optedOut, atMs: nowMs)], changed: true)
        }
        guard let s = calendar.schedules.first(where: { $0.id == id }) else {
            return Outcome(error: CommandError(code: "not_found", message: "no stored event or schedule with id '\(id)'", path: "id"),
                           responses: [EventResponse(event: id, status: .rejectedInvalid, atMs: nowMs)], changed: false)
        }
        guard s.optOut else {
            return Outcome(error: CommandError(code: "not_allowed", message: "schedule '\(id)' does not allow opt-out (opt_out: false)", path: "id"),
                           responses: [], changed: false)
        }
        guard let w = calendar.currentOrNext(scheduleID: id, atUTC: nowMs) else {
            return Outcome(error: CommandError(code: "not_found", message: "schedule '\(id)' has no current or upcoming window", path: "id"),
                           responses: [], changed: false)
        }
        // Idempotent: opting out of an occurrence already opted out of changes nothing (QoS 1 may redeliver).
        if scheduleOptOuts.contains(where: { $0.scheduleID == id && $0.startMs == w.startMs }) {
            return Outcome(error: nil, responses: [], changed: false)
        }
        scheduleOptOuts.append(w)
        return Outcome(error: nil, responses: [EventResponse(event: w.occurrenceID, status: .optedOut, atMs: nowMs,
                                                             effectiveStartMs: w.startMs)], changed: true)
    }

    mutating func upsert(_ incoming: DispatchEvent, nowMs: Int64) -> Outcome {
        var e = incoming
        guard settings.hasControllableDevice else {
            // Nothing at this site can follow a limit (a meter-only site): understood, not applicable.
            return Outcome(error: nil, responses: [EventResponse(event: e.id, status: .rejectedNotApplicable, atMs: nowMs)],
                           changed: false)
        }
        if let reason = notApplicableReason(e) {
            // Understood, but nothing here can follow it (docs/control.md "Export and setpoints").
            return Outcome(error: nil, responses: [EventResponse(event: e.id, status: .rejectedNotApplicable, atMs: nowMs,
                                                                 reason: reason)], changed: false)
        }
        if let i = events.firstIndex(where: { $0.id == e.id }) {
            let old = events[i]
            // Without `start`/`created` an event is anchored at its first receipt: a redelivery
            // (or a newer set carrying it) does not move its window.
            if e.startAtReceipt { e.startMs = old.startMs }
            if e.createdAtReceipt { e.createdMs = old.createdMs }
            if old.sameRequest(as: e) { return Outcome(error: nil, responses: [], changed: false) }
            e.randomDelayMs = old.randomizeStartS == e.randomizeStartS ? old.randomDelayMs : draw(e.randomizeStartS)
            if e.endMs <= nowMs {
                events.remove(at: i)
                return Outcome(error: nil, responses: [EventResponse(event: e.id, status: .rejectedExpired, atMs: nowMs)], changed: true)
            }
            e.phase = old.phase
            e.optedOut = old.optedOut // an opt-out holds for the event id, even when the utility changes it
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

    /// Marks superseded (response 7) every live event that wins no instant of the rest of its window
    /// [max(effective start, now), effective end) against the other live stored events (SPEC §2).
    /// Superseded events never change another event's outcome (precedence is a total order), so one pass is exact.
    mutating func supersede(nowMs: Int64) -> [EventResponse] {
        var responses: [EventResponse] = []
        let live = events.filter(\.isLive)
        for i in events.indices where events[i].isLive {
            let e = events[i]
            let from = max(e.effectiveStartMs, nowMs), to = e.effectiveEndMs
            guard to > from else { continue }
            let cover = live.filter { $0.id != e.id && DispatchEvent.precedes($0, e) }
                .map { (max($0.effectiveStartMs, from), min($0.effectiveEndMs, to)) }
                .filter { $0.0 < $0.1 }
                .sorted { $0.0 < $1.0 }
            var cursor = from
            for (a, b) in cover {
                if a > cursor { break }
                cursor = max(cursor, b)
            }
            if cursor >= to {
                events[i].superseded = true
                responses.append(EventResponse(event: e.id, status: .superseded, atMs: nowMs))
            }
        }
        return responses
    }

    // MARK: time

    /// Advances lifecycles to `nowMs`: started, completed, delayed cancellations.
    /// Returns the responses to publish and whether stored state changed.
    public mutating func advance(nowMs: Int64) -> (responses: [EventResponse], changed: Bool) {
        var responses: [EventResponse] = []
        var changed = false
        var remaining: [DispatchEvent] = []
        for var e in events {
            if !e.isLive {
                // Final already (opted out or superseded): kept only to absorb re-deliveries until its end.
                if nowMs >= e.effectiveEndMs { changed = true; continue }
                remaining.append(e)
                continue
            }
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
        let before = scheduleOptOuts.count
        scheduleOptOuts.removeAll { $0.endMs <= nowMs }
        if scheduleOptOuts.count != before { changed = true }
        let lost = isCommLost(nowMs: nowMs)
        if lost != commLost {
            commLost = lost
            commChangedMs = lost ? lastContactMs + settings.commLossTimeoutMs : nowMs
        }
        return (responses, changed)
    }

    /// Events valid now: live, in their window, not cancelled, and (during comm loss) within max_offline.
    public func activeEvents(nowMs: Int64) -> [DispatchEvent] {
        let lost = isCommLost(nowMs: nowMs)
        return events.filter { e in
            guard e.isLive, nowMs >= e.effectiveStartMs, nowMs < e.effectiveEndMs else { return false }
            if lost, let m = e.maxOfflineS, nowMs - lastContactMs > Int64(m) * 1000 { return false }
            return true
        }.sorted(by: DispatchEvent.precedes)
    }

    /// Schedule windows in force now, the winner first: in their window and not opted out; with an untrusted
    /// clock, every schedule whose limit is below `defaultW` instead (as a window from now).
    public func activeScheduleWindows(nowMs: Int64, clockTrusted: Bool = true, defaultW: Double = .infinity) -> [ScheduleWindow] {
        if !clockTrusted {
            return calendar.schedules.filter { $0.limitW < defaultW }.map {
                ScheduleWindow(scheduleID: $0.id, startMs: nowMs, endMs: nowMs + 1, limitW: $0.limitW, primacy: $0.primacy,
                               optOutAllowed: $0.optOut)
            }.sorted(by: ScheduleWindow.precedes)
        }
        return calendar.activeWindows(atUTC: nowMs).filter { w in
            !scheduleOptOuts.contains { $0.scheduleID == w.scheduleID && $0.startMs == w.startMs }
        }
    }

    /// The effective limit now. Mutating because it tracks the restore ramp.
    public mutating func decide(nowMs: Int64, inputs: ControlInputs) -> ControlDecision {
        let lost = isCommLost(nowMs: nowMs)
        let active = activeEvents(nowMs: nowMs)
        let clockTrusted = clockTrusted(nowMs: nowMs, synced: inputs.clockSynced)
        let defaultW = settings.defaultLimitW ?? inputs.hardwareMaxW
        let windows = activeScheduleWindows(nowMs: nowMs, clockTrusted: clockTrusted, defaultW: defaultW)
        var source: String
        var targetW: Double
        if let winner = active.first {
            source = "dispatch:\(winner.id)"
            targetW = winner.limitW
        } else if let w = windows.first {
            source = w.source
            targetW = w.limitW
        } else if lost {
            source = "fallback"
            targetW = settings.fallbackLimitW
        } else {
            source = "default"
            targetW = defaultW
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
        if !inputs.clockSynced, nowMs < max(settings.buildDateMs, wallFloorMs) { consider(max(settings.buildDateMs, wallFloorMs)) }
        if let t = nextScheduleBoundary(nowMs: nowMs) { consider(t) }

        return ControlDecision(limitW: max(0, limitW), source: limitSource, activeEvents: active.map(\.id),
                               commOK: !lost, commSinceMs: commChangedMs, nextTransitionMs: next, restoring: restoring,
                               targetSource: source, targetW: targetW, activeSchedules: windows.map(\.source),
                               clockSynced: inputs.clockSynced, clockTrusted: clockTrusted)
    }

    /// The next schedule boundary after `nowMs`, cached: the calendar is scanned again only when `nowMs`
    /// reaches the cached boundary, goes backwards, or the schedules change.
    private mutating func nextScheduleBoundary(nowMs: Int64) -> Int64? {
        if let c = nextScheduleTransition, nowMs >= c.validFrom, nowMs < c.validUntil { return c.at }
        let at = calendar.nextTransition(afterUTC: nowMs)
        nextScheduleTransition = (nowMs, at ?? nowMs + 86_400_000, at)
        return at
    }
}
