import GridletCore
import GridletOpenADR
import GridletSys

/// The OpenADR VEN beside the MQTT link (docs/openadr.md): its thread polls the VTN and posts
/// every result to the mailbox; here, on the control loop, a changed poll is mapped by
/// `OpenADREvents` and handed to `ControlEngine.replaceOpenADR`, which decides like for MQTT
/// commands. A successful poll counts as contact for comm loss.

/// The VEN as the agent drives it: `VENLink` in the daemon, a fake in the agent tests.
protocol VENPort: AnyObject, Sendable {
    func start() throws(Errno)
    func stop()
    func pollNow()
    /// Post a report on the VEN's thread; the answer comes back as `VENReport.reportDone`.
    func send(_ report: OutgoingReport)
}

extension VENLink: VENPort {}

/// What the agent knows of the VTN, for status and logs. Owned by the control loop.
final class OpenADRSide {
    let config: OpenADRConfig
    let port: any VENPort
    let settings: OpenADREvents.Settings
    var polls = 0
    var failedPolls = 0
    var failuresInARow = 0
    var lastPollWallMs: Int64?
    var lastSuccessWallMs: Int64?
    var nextPollWallMs: Int64?
    var lastError: (error: VENError, atWallMs: Int64)?
    var tokenExpiresWallMs: Int64?
    var mapped: OpenADREvents?
    var loggedProblems: Set<String> = []
    /// The VTN's MQTT notifier connection (AgentOpenADRNotifier.swift), when it offers one.
    var notifier: NotifierLink?
    var notifierProblem: String?
    /// What registration found or did (nil before it ran, or with `register: false`).
    var registration: VENRegistration?
    /// Reports (AgentOpenADRReports.swift): the USAGE builder and the queue's report outbox.
    var usage: UsageReporter
    let reports: ReportOutbox

    init(config: OpenADRConfig, siteID: String, ledgerIntervalMs: Int64, exportControl: Bool = false, port: any VENPort) {
        self.config = config
        self.port = port
        usage = UsageReporter(intervalMs: ledgerIntervalMs)
        reports = ReportOutbox(seed: payloadDigest(Array(siteID.utf8)) ^ 0x5245_504F_5254)
        settings = OpenADREvents.Settings(programs: config.programs,
                                          acceptedTargets: Set(config.targets + config.resources + [config.venName]),
                                          simpleLevels: config.simpleLevels, randomSeed: payloadDigest(Array(siteID.utf8)),
                                          exportControl: exportControl)
    }

    /// The report's `resourceName`: the one configured resource, else `AGGREGATED_REPORT` (the site
    /// meter measures them all together).
    var reportResourceName: String { config.resources.count == 1 ? config.resources[0] : "AGGREGATED_REPORT" }

    /// The VTN event and interval id of window `id` (`oadr:<event>:<interval>[.<sub>]`): from the
    /// last mapping (which also knows digested long ids), else from the id itself.
    func eventAndInterval(ofWindow id: String) -> (String, Int)? {
        let rest = id.dropFirst(OpenADREvents.idPrefix.count)
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        let tail = rest[rest.index(after: colon)...]
        guard let interval = Int(tail.split(separator: ".").first ?? "") else { return nil }
        if let e = mapped?.events.first(where: { $0.windows.contains(id) }) { return (e.id, interval) }
        let event = String(rest[..<colon])
        return event.isEmpty ? nil : (event, interval)
    }

    /// Stops the VEN thread and the notifier connection.
    func stop() {
        port.stop()
        notifier?.stop()
        notifier = nil
    }

    /// `gridlet status --json`'s `openadr` object.
    func statusJSON(nowMono: Int64, nowWall: Int64) -> JSONValue {
        func time(_ ms: Int64?) -> JSONValue { ms.map { .string(Timestamp.format(ms: $0)) } ?? .null }
        let m = mapped
        return .object([
            ("vtn", .string(config.vtnURL)), ("ven_name", .string(config.venName)),
            ("ok", .bool(lastSuccessWallMs != nil && failuresInARow == 0)),
            ("last_poll", time(lastPollWallMs)), ("last_success", time(lastSuccessWallMs)), ("next_poll", time(nextPollWallMs)),
            ("polls", .number(Double(polls))), ("failed_polls", .number(Double(failedPolls))),
            ("last_error", lastError.map { .object([("kind", .string($0.error.kind.rawValue)), ("message", .string($0.error.message)),
                                                    ("at", .string(Timestamp.format(ms: $0.atWallMs)))]) } ?? .null),
            ("token_expires", time(tokenExpiresWallMs)),
            ("programs", .array((m?.programs ?? []).map { .object([("name", .string($0.name)), ("id", .string($0.id))]) })),
            ("events", .array((m?.events ?? []).map { e in
                .object([("id", .string(e.id)), ("name", e.name.map { .string($0) } ?? .null), ("program", .string(e.programName)),
                         ("priority", e.priority.map { .number(Double($0)) } ?? .null), ("modified", time(e.modifiedMs)),
                         ("windows", .array(e.windows.map { .string($0) }))])
            })),
            ("shown", .array((m?.informational ?? []).map { i in
                .object([("event", .string(i.eventID)), ("interval", .number(Double(i.intervalID))), ("type", .string(i.type)),
                         ("value", .number(i.value)), ("units", i.units.map { .string($0) } ?? .null),
                         ("currency", i.currency.map { .string($0) } ?? .null),
                         ("start", .string(Timestamp.format(ms: i.startMs))), ("end", .string(Timestamp.format(ms: i.endMs)))])
            })),
            ("ignored", .array((m?.problems ?? []).map { .string($0) })),
            ("notifier", notifierJSON),
            ("reports", reports.json(nowMono: nowMono, nowWall: nowWall)),
            ("registration", registrationJSON),
        ])
    }

    var registrationJSON: JSONValue {
        guard let r = registration else { return .null }
        func entry(_ e: VENRegistration.Entry) -> JSONValue {
            let id: JSONValue = e.id.map { .string($0) } ?? .null
            let message: JSONValue = e.message.map { .string($0) } ?? .null
            return .object([("name", .string(e.name)), ("id", id), ("state", .string(e.state.rawValue)), ("message", message)])
        }
        return .object([("ven", entry(r.ven)), ("resources", .array(r.resources.map(entry)))])
    }

    var notifierJSON: JSONValue {
        if let n = notifier { return n.statusJSON() }
        guard let p = notifierProblem else { return .null }
        return .object([("problem", .string(p))])
    }
}

extension Agent {
    /// The daemon's VEN: libcurl on its own thread.
    static func liveVEN(_ config: OpenADRConfig, _ report: @escaping @Sendable (VENReport) -> Void) -> any VENPort {
        VENLink(config: config, readFile: firstLine(ofFile:), report: report)
    }

    /// `exportControl`: the site has a bidirectional device (EXPORT_CAPACITY_LIMIT is enforced, not only shown).
    static func openADRSide(config: GridletConfig, ports: AgentPorts, mailbox: Mailbox<AgentInput>, exportControl: Bool) -> OpenADRSide? {
        guard let c = config.openADR, let make = ports.makeVEN else { return nil }
        let box = mailbox
        return OpenADRSide(config: c, siteID: config.site.id, ledgerIntervalMs: config.telemetry.ledgerIntervalMs,
                           exportControl: exportControl, port: make(c) { box.post(.openADR($0)) })
    }

    func startOpenADR() throws(AgentError) {
        guard let side = openADR else { return }
        do throws(Errno) { try side.port.start() } catch { throw AgentError("cannot start the OpenADR VEN thread: \(error)") }
        log.notice("OpenADR VEN \(side.config.venName): polling \(side.config.vtnURL) every \(YAMLScalar.formatDuration(side.config.pollIntervalMs)) for \(side.config.programs.joined(separator: ", "))")
    }

    func handleOpenADR(_ report: VENReport, nowWall: Int64) {
        guard let side = openADR else { return }
        if case let .reportDone(seq, delivery, at) = report {
            reportDone(seq: seq, delivery, atWallMs: at, nowMono: time.monoMs())
            return
        }
        if case let .registered(r, _) = report {
            registered(r, side: side)
            return
        }
        side.polls += 1
        if side.polls == 1 {
            // libcurl and its libraries were loaded (dlopen) after the start-up trim, and loading
            // them and the first poll read many pages once (relocation and symbol tables, init
            // code, OpenSSL's configuration): drop those not in use, as at start (CodePages).
            CodePages.trim()
        } else {
            // After every poll: libcurl's code is needed again only at the next one.
            CodePages.trimLoadedLater()
        }
        switch report {
        case .reportDone, .registered:
            break
        case let .failed(error, at, next, _):
            side.failedPolls += 1
            side.failuresInARow += 1
            side.lastPollWallMs = at
            side.nextPollWallMs = at + next
            side.tokenExpiresWallMs = error.kind == .auth ? nil : side.tokenExpiresWallMs
            if side.lastError?.error != error || side.failuresInARow == 1 {
                log.error("OpenADR: \(error.message) (next try in \(YAMLScalar.formatDuration(next)))")
            }
            side.lastError = (error, at)
        case let .polled(poll, at, next):
            if side.failuresInARow > 0, side.lastSuccessWallMs != nil {
                log.notice("OpenADR: VTN answering again after \(side.failuresInARow) failed poll(s)")
            }
            side.failuresInARow = 0
            side.lastPollWallMs = at
            side.lastSuccessWallMs = at
            side.nextPollWallMs = at + next
            side.tokenExpiresWallMs = poll.tokenExpiresWallMs
            // The VTN answers again: a report waiting out its back-off goes now.
            if side.reports.backoff.failures > 0 { side.reports.backoff.retryNow() }
            // A successful poll is contact (SPEC §2 comm loss, with OpenADR as a dispatch link).
            let wasLost = engine.isCommLost(nowMs: nowWall)
            engine.commandContact(nowMs: nowWall)
            if wasLost { saveComm(nowWall: nowWall, durable: true) }
            updateNotifier(poll, side: side)
            guard poll.changed || side.mapped == nil else { return }
            applyVTN(poll, side: side, nowWall: nowWall)
        }
    }

    /// Registration's outcome: logged when it changes (a refusal or failure as a warning, never fatal), kept for status.
    private func registered(_ r: VENRegistration, side: OpenADRSide) {
        let old = side.registration
        side.registration = r
        for e in [r.ven] + r.resources where old.map({ ([$0.ven] + $0.resources).contains(e) }) != true {
            let kind = e.name == r.ven.name && e == r.ven ? "ven" : "resource"
            switch e.state {
            case .found: log.info("OpenADR: \(kind) '\(e.name)' is registered at the VTN (id \(e.id ?? "?"))")
            case .created: log.notice("OpenADR: \(kind) '\(e.name)' registered at the VTN (created, id \(e.id ?? "?"))")
            case .notOffered: log.info("OpenADR: \(e.message ?? "registration not offered")")
            case .refused, .failed: log.warning("OpenADR: registration of \(kind) '\(e.name)': \(e.message ?? e.state.rawValue)\(e.state == .failed ? " (tried again before the next poll)" : "")")
            }
        }
    }

    /// Maps what the VTN sent and lets the engine decide; the responses go out once the new
    /// state is on disk, like for an MQTT command.
    private func applyVTN(_ poll: VTNPoll, side: OpenADRSide, nowWall: Int64) {
        let mapped = OpenADREvents.map(programObjects: poll.programs, eventObjects: poll.events, settings: side.settings, nowMs: nowWall)
        let problems = Set(mapped.problems)
        for p in mapped.problems where !side.loggedProblems.contains(p) { log.warning("OpenADR: \(p)") }
        side.loggedProblems = problems
        side.mapped = mapped
        let before = side.usage.requests
        side.usage.setRequests(mapped.reportRequests, nowMs: nowWall)
        if side.usage.requests != before { saveLedger(syncQueue: false) }
        let outcome = engine.replaceOpenADR(mapped.windows, nowMs: nowWall)
        if let e = outcome.error { log.error("OpenADR: \(e.message)") }
        for r in outcome.responses { log.info("event \(r.event): \(r.status.name) (OpenADR)") }
        guard outcome.changed else {
            emit(outcome.responses, wallMs: nowWall)
            return
        }
        applyLimits(nowWall: nowWall, nowMono: time.monoMs())
        persistThen { [self] failure in
            if let failure { log.error("OpenADR events could not be stored in state_dir: \(failure); they apply until a restart") }
            for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
        }
    }
}

/// The first line of a file (secrets, tokens), nil when unreadable.
@Sendable func firstLine(ofFile path: String) -> String? {
    guard let bytes = StateFile.read(path, limit: 64 << 10) else { return nil }
    return String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
}
