import CGridletSys
import Glibc
import GridletCore
import GridletModbus
import GridletMQTT
import GridletQueue
import Synchronization

public let gridletVersion = "0.1.0"
/// The release date of this version (2026-11-24T00:00:00Z): a clock that reads earlier and is not
/// synchronised cannot be trusted, and restricting schedules then stay active (SPEC §2).
public let gridletBuildDateMs: Int64 = 1_795_478_400_000

/// Set by SIGTERM/SIGINT; the control loop checks it every turn.
let stopRequested = Atomic<Bool>(false)

enum AgentInput: Sendable {
    case mqtt(MQTTEvent)
    case polled(device: Int, result: Result<[String: Double?], ModbusError>)
    case wrote(device: Int, what: ChargerWrite, value: Double, result: Result<[UInt16], ModbusError>)
    case local(LocalRequest)
}

enum ChargerWrite: String, Sendable { case setpoint, alive, failsafeCurrent = "failsafe current", failsafeTimeout = "failsafe timeout" }

public struct AgentError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The daemon: owns the control engine, the queue and the links, and runs the control loop
/// on the calling thread. Other threads only post to its mailbox.
public final class Agent {
    let config: GridletConfig
    let log: Logger
    let root: String
    let links: [DeviceLink]
    let buses: [ModbusBus]
    let queue: DiskQueue
    let mailbox = Mailbox<AgentInput>()
    let notify = SystemdNotify()
    let status: StatusServer?
    var mqtt: MQTTClient?

    var engine: ControlEngine
    let zone: TimeZoneRules
    var ledger: EnergyLedger
    /// `state_dir/ledger.json`: the ledger's open segment, so a restart loses no energy.
    var ledgerPath: String { config.site.stateDir + "/ledger.json" }
    var nextLedgerSaveMonoMs: Int64 = 0
    /// A new site-meter reading arrived since the ledger was last fed.
    var meterSampleFresh = false
    var lastRestoring = false
    var governors: [Int: ChargerGovernor] = [:]
    var health: [DeviceHealth]
    var polls: PollScheduler
    var chargers: [Int: ChargerState] = [:]
    var connected = false
    var inflight: [Int32: UInt64] = [:]
    /// Seqs handed to libmosquitto in this process and not yet acknowledged.
    var sent: Set<UInt64> = []
    /// Produced while connected, not yet handed over (in seq order).
    var pendingLive: [UInt64] = []
    var liveSeqs: Set<UInt64> = []
    /// The backlog drain's position: every record at or below it has been handed over (or is live).
    var historyCursor: UInt64 = 0
    var acked = 0
    var lastMQTTError: String?
    var telemetryExpiryS: UInt32? { config.mqtt.messageExpiryMs > 0 ? UInt32(config.mqtt.messageExpiryMs / 1000) : nil }
    var nextReplayUs: Int64 = 0
    var nextTelemetryMonoMs: Int64 = 0
    var lastStateJSON = ""
    var lastStatePublishMonoMs: Int64 = 0
    var lastWatchdogMonoMs: Int64 = 0
    var lastSnapshotMonoMs: Int64 = Int64.min / 2
    var clockSynced = Clock.isSynchronised()
    var lastClockCheckMonoMs: Int64 = 0
    var decision: ControlDecision?
    var requestedW: Double = 0
    let bootID: String
    let startedWallMs: Int64
    let startedMonoMs = Clock.monoMs()
    var startSettled = false
    let statePath: String
    var published = 0
    var queueErrorLogged = false
    let metricsFile = MetricsFile()

    public init(config: GridletConfig, profiles: [String: DeviceProfile], logger: Logger) throws(AgentError) {
        self.config = config
        self.log = logger
        self.root = config.mqtt.root(siteID: config.site.id)
        self.bootID = Agent.makeUUID()
        self.startedWallMs = Clock.wallMs()
        do throws(StateFile.IOError) {
            try StateFile.makeDirectories(config.site.stateDir)
        } catch {
            throw AgentError("cannot use state_dir: \(error). Create it or set site.state_dir to a writable directory.")
        }
        self.statePath = config.site.stateDir + "/control.json"
        do throws(QueueError) {
            let sync: QueueSyncMode
            switch config.queue.sync {
            case .always: sync = .always
            case .batch: sync = .batch(intervalMs: config.queue.syncIntervalMs)
            case .none: sync = .none
            }
            queue = try DiskQueue(directory: config.site.stateDir + "/queue", maxBytes: config.queue.maxBytes, sync: sync)
        } catch {
            throw AgentError("cannot open the queue: \(error)")
        }
        var busByName: [String: ModbusBus] = [:]
        for b in config.buses { busByName[b.name] = ModbusBus(b) }
        buses = config.buses.compactMap { busByName[$0.name] }
        var links: [DeviceLink] = []
        for d in config.devices {
            guard let p = profiles[d.profile], let bus = busByName[d.bus] else {
                throw AgentError("device \(d.name): profile \(d.profile) or bus \(d.bus) is not available")
            }
            links.append(DeviceLink(config: d, profile: p, bus: bus))
        }
        self.links = links
        self.health = Array(repeating: DeviceHealth(), count: links.count)
        self.polls = PollScheduler(intervalsMs: links.map(\.config.pollMs))
        for (i, l) in links.enumerated() where l.config.role == .charger {
            chargers[i] = ChargerState()
            governors[i] = ChargerGovernor(minDwellMs: config.control.minDwellMs)
        }

        var seed: UInt64 = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = read(fd, &seed, 8); close(fd) }
        engine = ControlEngine(settings: ControlSettings(config.control, site: config.site, buildDateMs: gridletBuildDateMs),
                               nowMs: startedWallMs, seed: seed ^ UInt64(bitPattern: startedWallMs))
        let zone: TimeZoneRules
        do throws(AgentError) {
            zone = try Agent.loadZone(config.site.timezone)
        } catch {
            throw error
        }
        engine.configureSchedules(config.schedules, holidays: config.holidays, zone: zone)
        self.zone = zone
        ledger = EnergyLedger(intervalMs: config.telemetry.ledgerIntervalMs)
        if let bytes = StateFile.read(statePath) {
            do {
                engine.restorePersistentState(try JSONValue.parse(bytes))
            } catch {
                logger.warning("ignoring unreadable \(statePath): \(error)")
            }
        }
        let socketPath = config.site.socket ?? Agent.defaultSocketPath()
        do {
            status = try StatusServer(path: socketPath, links: links, logger: logger)
        } catch {
            logger.warning("local status socket unavailable: \(error)")
            status = nil
        }
    }

    static func loadZone(_ name: String) throws(AgentError) -> TimeZoneRules {
        if name == "UTC" { return .utc }
        let path = "/usr/share/zoneinfo/" + name
        guard let bytes = StateFile.read(path) else {
            throw AgentError("site.timezone \(name): cannot read \(path); install tzdata")
        }
        do throws(TimeZoneError) {
            return try TimeZoneRules(name: name, tzif: bytes)
        } catch {
            throw AgentError("site.timezone \(name): \(path) is not a valid tz database file: \(error)")
        }
    }

    static func defaultSocketPath() -> String {
        if let d = getenv("RUNTIME_DIRECTORY") { return String(cString: d).split(separator: ":").first.map(String.init)! + "/gridlet.sock" }
        return "/run/gridlet/gridlet.sock"
    }

    static func makeUUID() -> String {
        var b = [UInt8](repeating: 0, count: 16)
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = b.withUnsafeMutableBytes { read(fd, $0.baseAddress, 16) }; close(fd) }
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-" + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    // MARK: run

    /// Runs until SIGTERM/SIGINT; returns after a clean stop.
    public func run() throws(AgentError) {
        installSignalHandlers()
        // Again once the daemon's start-up code (parsing, profiles, config) has run.
        if getenv("GRIDLET_NO_TRIM") == nil { _ = gridlet_trim_code_pages() }
        log.notice("gridlet \(gridletVersion) starting: site \(config.site.id), \(links.count) device(s), broker \(config.mqtt.host):\(config.mqtt.port), queue \(queue.stats.records) record(s) pending")
        resumeLedger()
        try startMQTT()
        let box = mailbox
        status?.controlLoop.withLock { $0 = ControlLoopChannel(post: { box.post(.local($0)) }) }
        status?.update(snapshot: statusJSON(nowWall: Clock.wallMs()))   // never answer with an empty snapshot
        status?.start()
        notify.send("READY=1\nSTATUS=running")
        var firstTurn = true
        while !stopRequested.load(ordering: .relaxed) {
            let inputs = mailbox.take(timeoutMs: firstTurn ? 0 : nextWaitMs())
            firstTurn = false
            for input in inputs { handle(input) }
            turn()
        }
        shutdown()
    }

    func startMQTT() throws(AgentError) {
        let m = config.mqtt
        var password: String? = nil
        if let pf = m.passwordFile {
            guard let bytes = StateFile.read(pf) else {
                throw AgentError("cannot read mqtt.password_file \(pf): \(String(cString: strerror(errno)))")
            }
            password = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
        }
        let will = Array(statusPayload(online: false, sinceMs: startedWallMs).utf8)
        let options = MQTTClientOptions(
            clientID: m.clientID, host: m.host, port: m.port, keepaliveS: Int(max(5, m.keepaliveMs / 1000)),
            username: m.username, password: password, caFile: m.tls?.caFile, certFile: m.tls?.certFile, keyFile: m.tls?.keyFile,
            tlsInsecure: m.tls?.insecure ?? false, protocolVersion: .v5, cleanSession: false,
            will: (topic: "\(root)/status", payload: will, retain: true))
        let box = mailbox
        do throws(MQTTError) {
            let client = try MQTTClient(options: options) { event in box.post(.mqtt(event)) }
            try client.start()
            mqtt = client
        } catch {
            throw AgentError("MQTT: \(error)")
        }
    }

    func shutdown() {
        log.notice("stopping")
        notify.send("STOPPING=1")
        if connected, let m = mqtt {
            _ = try? m.publish(topic: "\(root)/status", payload: Array(statusPayload(online: false, sinceMs: Clock.wallMs()).utf8),
                               qos: 1, retain: true)
            // Let in-flight messages be acknowledged, so a clean stop delivers nothing twice
            // after the restart (bounded well inside systemd's stop timeout).
            let deadline = Clock.monoMs() + 3000
            while Clock.monoMs() < deadline {
                for input in mailbox.take(timeoutMs: 50) { if case .mqtt = input { handle(input) } }
                if inflight.isEmpty { break }
            }
        }
        mqtt?.stop()
        mqtt = nil
        status?.stop()
        for b in buses { b.stop() }
        do { try queue.sync() } catch { log.error("queue sync at stop failed: \(error)") }
        saveLedger(syncQueue: false)
        queue.close()
        log.notice("stopped")
    }

    func nextWaitMs() -> Int64 {
        let now = Clock.monoMs()
        var wait: Int64 = 200
        if let w = polls.nextWaitMs(nowMs: now) { wait = min(wait, w) }
        wait = min(wait, nextTelemetryMonoMs - now)
        if connected, !pendingLive.isEmpty { wait = 1 }
        if connected, inflight.count < 16, queue.stats.records > inflight.count { wait = min(wait, max(1, nextReplayUs / 1000 - now)) }
        return max(1, wait)
    }

    // MARK: inputs

    func handle(_ input: AgentInput) {
        let nowWall = Clock.wallMs()
        let nowMono = Clock.monoMs()
        switch input {
        case let .polled(i, result):
            polls.completed(i, success: (try? result.get()) != nil, nowMs: nowMono)
            switch result {
            case let .success(values):
                if !health[i].ok { log.info("device \(links[i].config.name) answering") }
                health[i].values = values
                health[i].ok = true
                health[i].lastOKWallMs = nowWall
                health[i].lastOKMonoMs = nowMono
                health[i].lastError = nil
                if i == ledgerMeterIndex() { meterSampleFresh = true }
            case let .failure(e):
                if health[i].ok || health[i].lastError == nil { log.warning("device \(links[i].config.name): \(e)") }
                health[i].ok = false
                health[i].values = [:]
                health[i].lastError = e.description
                // PollScheduler backs off a device that stops answering, so it does not hold up its bus.
            }
        case let .wrote(i, what, value, result):
            guard var c = chargers[i] else { return }
            switch what {
            case .setpoint: c.writeInFlight = false
            case .failsafeCurrent, .failsafeTimeout: c.failsafeInFlight = false
            case .alive: break
            }
            switch result {
            case .success:
                if what == .failsafeTimeout { c.failsafeProgrammedFor = value }
                if what == .setpoint { c.lastWriteError = nil; c.writeFailures = 0 }
            case let .failure(e):
                if c.lastWriteError == nil { log.error("charger \(links[i].config.name): writing \(what.rawValue) \(JSONValue.format(value)) failed: \(e)") }
                c.lastWriteError = e.description
                if what == .setpoint {
                    // Unknown what the charger has now: write again, but not in a tight loop
                    // against a charger that refuses at once (1 s, doubling to 10 s).
                    c.written = nil
                    c.writeFailures += 1
                    c.writeRetryMonoMs = Clock.monoMs() + min(10_000, 1000 << min(c.writeFailures - 1, 4))
                }
                if what == .failsafeCurrent || what == .failsafeTimeout { c.failsafeProgrammedFor = nil }
            }
            chargers[i] = c
        case let .mqtt(event):
            handleMQTT(event, nowWall: nowWall)
        case let .local(request):
            request.reply(answerLocal(request.text, nowWall: nowWall))
        }
    }

    func handleMQTT(_ event: MQTTEvent, nowWall: Int64) {
        switch event {
        case let .connected(rc, sessionPresent):
            guard rc == 0 else {
                log.error("broker refused the connection: \(MQTTError.connackMessage(rc)) (code \(rc)); check mqtt.username, password_file and tls")
                return
            }
            connected = true
            lastMQTTError = nil
            engine.sessionConnected(nowMs: nowWall)
            log.notice("connected to \(config.mqtt.host):\(config.mqtt.port) (session \(sessionPresent ? "resumed" : "new"))")
            do throws(MQTTError) {
                try mqtt?.subscribe("\(root)/cmd/+", qos: 1)
                try mqtt?.publish(topic: "\(root)/status", payload: Array(statusPayload(online: true, sinceMs: nowWall).utf8),
                                  qos: 1, retain: true)
            } catch {
                log.error("after connect: \(error)")
            }
            lastStateJSON = ""
        case let .disconnected(rc):
            if connected { log.warning("disconnected from broker (\(rc == 0 ? "clean" : MQTTError.message(rc)))") }
            connected = false
            engine.sessionDisconnected(nowMs: nowWall)
            // Records that were waiting to go out live are now backlog: historical, paced.
            if let first = pendingLive.first { historyCursor = min(historyCursor, first - 1) }
            pendingLive.removeAll()
            liveSeqs.removeAll()
        case let .published(mid, reason):
            if let seq = inflight.removeValue(forKey: mid) {
                sent.remove(seq)
                acked += 1
                if reason >= 0x80 { log.error("broker rejected record seq \(seq) (reason \(reason)); dropping it") }
                do { try queue.ack(seq: seq) } catch { log.error("queue ack failed: \(error)") }
            }
        case let .message(msg):
            handleCommand(msg, nowWall: nowWall)
        case let .connectFailed(text):
            if text != lastMQTTError { log.error("MQTT: \(text)") }
            lastMQTTError = text
        case .protocolDowngraded:
            log.notice("broker does not support MQTT 5; using MQTT 3.1.1 (no response topics, no message expiry)")
        }
    }

    func handleCommand(_ msg: MQTTMessage, nowWall: Int64) {
        let prefix = "\(root)/cmd/"
        guard msg.topic.hasPrefix(prefix) else { return }
        let name = String(msg.topic.dropFirst(prefix.count))
        let parsed = CommandParser.parse(name: name, payload: msg.payload, nowMs: nowWall)
        var reply: [(String, JSONValue)] = [("cmd", .string(name))]
        if let id = parsed.id { reply.append(("id", .string(id))) }
        switch parsed.result {
        case let .failure(err):
            log.warning("rejected cmd/\(name)\(parsed.id.map { " id \($0)" } ?? ""): \(err.message)\(err.path.isEmpty ? "" : " (\(err.path))")")
            reply.append(("ok", .bool(false)))
            reply.append(("error", errorJSON(err)))
            if let id = parsed.id, name == "event" || name == "cancel" {
                enqueue(.response, Records.response(EventResponse(event: id, status: .rejectedInvalid, atMs: nowWall)), wallMs: nowWall)
            }
        case let .success(command):
            let outcome = engine.handle(command, nowMs: nowWall)
            if outcome.changed {
                applyLimits(nowWall: nowWall, nowMono: Clock.monoMs())
                persist()
            }
            if let err = outcome.error {
                reply.append(("ok", .bool(false)))
                reply.append(("error", errorJSON(err)))
            } else {
                reply.append(("ok", .bool(true)))
            }
            for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
            log.info("cmd/\(name)\(parsed.id.map { " id \($0)" } ?? ""): \(outcome.error.map { "refused: \($0.message)" } ?? "ok")")
        }
        let body = Array(JSONValue.object(reply).serialized.utf8)
        do throws(MQTTError) {
            try mqtt?.publish(topic: "\(root)/reply", payload: body, qos: 1)
            if let rt = msg.responseTopic {
                try mqtt?.publish(topic: rt, payload: body, qos: 1, responseCorrelation: msg.correlationData)
            }
        } catch {
            log.error("reply: \(error)")
        }
    }

    /// `gridlet events`, `gridlet optout ID`, `gridlet schedule [N]` through the local socket.
    func answerLocal(_ text: String, nowWall: Int64) -> String {
        let words = text.split(separator: " ").map(String.init)
        switch words.first {
        case "events":
            let list: [JSONValue] = engine.events.map { e in
                var o: [(String, JSONValue)] = [
                    ("id", .string(e.id)), ("limit_w", .number(e.limitW)), ("primacy", .number(Double(e.primacy))),
                    ("created", .string(Timestamp.format(ms: e.createdMs))),
                    ("start", .string(Timestamp.format(ms: e.startMs))),
                    ("effective_start", .string(Timestamp.format(ms: e.effectiveStartMs))),
                    ("end", .string(Timestamp.format(ms: e.endMs))), ("phase", .string(e.phase.rawValue)),
                    ("opt_out_allowed", .bool(e.optOutAllowed)), ("opted_out", .bool(e.optedOut)),
                    ("superseded", .bool(e.superseded)),
                    ("active", .bool(decision?.activeEvents.contains(e.id) ?? false)),
                ]
                if let c = e.cancelAtMs { o.append(("cancel_at", .string(Timestamp.format(ms: c)))) }
                return .object(o)
            }
            return JSONValue.object([("ok", .bool(true)), ("events", .array(list)),
                                     ("source", .string(decision?.source ?? "default"))]).serialized
        case "optout":
            guard words.count == 2 else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("usage: optout ID"))]).serialized
            }
            let outcome = engine.handle(.optOut(id: words[1]), nowMs: nowWall)
            if outcome.changed { persist() }
            for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
            if let e = outcome.error {
                log.warning("local opt-out of \(words[1]) refused: \(e.message)")
                return JSONValue.object([("ok", .bool(false)), ("error", errorJSON(e))]).serialized
            }
            log.notice("local opt-out of \(words[1])")
            return JSONValue.object([("ok", .bool(true)), ("id", .string(words[1])),
                                     ("responses", .array(outcome.responses.map { .object($0.jsonFields) }))]).serialized
        case "schedule":
            let n = words.count > 1 ? Int(words[1]) ?? 10 : 10
            let defaultW = config.control.defaultLimitW ?? hardwareMaxNominalW
            let list: [JSONValue] = engine.plannedTransitions(fromMs: nowWall, limit: max(1, min(n, 1000)), defaultW: defaultW).map { t in
                .object([("at", .string(Timestamp.format(ms: t.atMs))), ("source", .string(t.source)), ("limit_w", .number(t.limitW))])
            }
            return JSONValue.object([("ok", .bool(true)), ("timezone", .string(config.site.timezone)),
                                     ("active", .array(activeScheduleIDs.map { .string($0) })),
                                     ("transitions", .array(list))]).serialized
        default:
            return JSONValue.object([("ok", .bool(false)), ("error", .string("unknown request"))]).serialized
        }
    }

    /// Ids of the schedules with a window active now (the engine names them `schedule:<id>`).
    var activeScheduleIDs: [String] {
        (decision?.activeSchedules ?? []).map { $0.hasPrefix("schedule:") ? String($0.dropFirst(9)) : $0 }
    }

    var hardwareMaxNominalW: Double {
        chargers.keys.reduce(0) { sum, i in
            sum + links[i].config.maxCurrent * Double(links[i].config.phases) * config.site.nominalVoltage
        }
    }

    func errorJSON(_ e: CommandError) -> JSONValue {
        .object([("code", .string(e.code)), ("message", .string(e.message)), ("path", .string(e.path))])
    }

    func persist() {
        do throws(StateFile.IOError) {
            try StateFile.write(Array(engine.persistentState.serialized.utf8), to: statePath)
        } catch {
            log.error("cannot persist control state: \(error)")
        }
    }

    func statusPayload(online: Bool, sinceMs: Int64) -> String {
        JSONValue.object([("online", .bool(online)), ("version", .string(gridletVersion)), ("boot", .string(bootID)),
                          ("since", .string(Timestamp.format(ms: sinceMs)))]).serialized
    }

    // MARK: the control loop turn

    func turn() {
        let nowMono = Clock.monoMs()
        let nowWall = Clock.wallMs()
        schedulePolls(nowMono)
        control(nowWall: nowWall, nowMono: nowMono)
        if nowMono >= nextTelemetryMonoMs {
            if nextTelemetryMonoMs == 0 { nextTelemetryMonoMs = nowMono }
            produceTelemetry(nowWall: nowWall)
            nextTelemetryMonoMs += config.telemetry.intervalMs
            if nextTelemetryMonoMs <= nowMono { nextTelemetryMonoMs = nowMono + config.telemetry.intervalMs }
        }
        pump(nowMono: nowMono)
        // State and the status snapshot are rebuilt at most every 100 ms: a turn happens for
        // every PUBACK while a backlog drains, and they need not.
        let refresh = nowMono - lastSnapshotMonoMs >= 100
        if refresh { publishState(nowWall: nowWall, nowMono: nowMono) }
        do { try queue.flushIfDue(nowMs: nowMono) } catch {
            if !queueErrorLogged { log.error("queue: \(error)"); queueErrorLogged = true }
        }
        TestHooks.hangIfAsked(sinceStartMs: nowMono - startedMonoMs, log: log)
        writeMetricsIfDue(nowMono: nowMono, nowWall: nowWall)
        if let w = notify.watchdogIntervalMs, nowMono - lastWatchdogMonoMs >= w {
            notify.send("WATCHDOG=1")
            lastWatchdogMonoMs = nowMono
        }
        if refresh {
            status?.update(snapshot: statusJSON(nowWall: nowWall))
            publishQueueViews(nowWall: nowWall)
            lastSnapshotMonoMs = nowMono
        }
    }

    func schedulePolls(_ nowMono: Int64) {
        for i in polls.due(nowMs: nowMono) {
            let box = mailbox
            links[i].poll { result in box.post(.polled(device: i, result: result)) }
        }
    }

    func siteMeterIndex() -> Int? { links.firstIndex { $0.config.role == .siteMeter } }

    func voltage(for i: Int) -> Double {
        let meter = siteMeterIndex().map { health[$0].phases("voltage", "v") } ?? []
        return ChargerSetpoint.voltage(charger: health[i].ok ? health[i].phases("voltage", "v") : [], siteMeter: meter,
                                       nominal: config.site.nominalVoltage)
    }

    /// True once every device has answered or failed its first poll (or 5 s passed), so the
    /// first setpoint is not decided on a meter that simply has not been read yet.
    var settled: Bool {
        if startSettled { return true }
        return health.allSatisfy { $0.ok || $0.lastError != nil } || Clock.monoMs() - startedMonoMs > 5000
    }

    func control(nowWall: Int64, nowMono: Int64) {
        if !startSettled {
            guard settled else { return }
            startSettled = true
        }
        let advanced = engine.advance(nowMs: nowWall)
        if advanced.changed { persist() }
        for r in advanced.responses {
            log.info("event \(r.event): \(r.status.name)")
            enqueue(.response, Records.response(r), wallMs: nowWall)
        }
        applyLimits(nowWall: nowWall, nowMono: nowMono)
    }

    /// Decides the effective limit and drives the chargers. Called every turn, and right after
    /// a command changed the engine, before its state is persisted: the fsync that must precede
    /// the reply does not delay the charger write.
    func applyLimits(nowWall: Int64, nowMono: Int64) {
        guard startSettled else { return }
        var hardwareMaxW = 0.0
        var chargerPowerW = 0.0
        var faulty: String? = nil
        for (i, _) in chargers {
            let d = links[i].config
            hardwareMaxW += d.maxCurrent * Double(d.phases) * voltage(for: i)
            chargerPowerW += health[i].value("power_w") ?? 0
        }
        var meterPower: Double? = nil
        if let m = siteMeterIndex(), let okAt = health[m].lastOKMonoMs, health[m].ok,
           nowMono - okAt <= config.control.meterStaleAfterMs {
            meterPower = health[m].value("power_w")
        }
        for (i, c) in chargers where c.lastWriteError != nil && !health[i].ok { faulty = links[i].config.name; break }
        let previous = decision
        if nowMono - lastClockCheckMonoMs >= 10_000 { clockSynced = Clock.isSynchronised(); lastClockCheckMonoMs = nowMono }
        let d = engine.decide(nowMs: nowWall, inputs: ControlInputs(
            hardwareMaxW: hardwareMaxW, hasSiteMeter: siteMeterIndex() != nil, siteMeterPowerW: meterPower,
            chargerPowerW: chargerPowerW, faultyDevice: faulty, clockSynced: clockSynced))
        decision = d
        if d.restoring != lastRestoring { lastRestoring = d.restoring; persist() }
        feedLedger(nowWall: nowWall, source: d.targetSource)
        if previous?.source != d.source || previous?.commOK != d.commOK {
            log.notice("control: \(d.source), limit \(JSONValue.format(d.limitW)) W, comm \(d.commOK ? "ok" : "lost")")
        }
        requestedW = d.limitW

        // Split the limit evenly over the chargers and drive each in amps.
        let share = chargers.isEmpty ? 0 : d.limitW / Double(chargers.count)
        let refreshMs = max(1000, config.control.deviceFailsafeTimeoutMs / 4)
        for i in chargers.keys.sorted() {
            var c = chargers[i]!
            let link = links[i]
            let dc = link.config
            guard let ctl = link.profile.control else { continue }
            let v = voltage(for: i)
            // min_dwell and the hysteresis above min_current: a pause applies at once, a resume waits.
            let sp = governors[i]!.govern(limitW: share, phases: dc.phases, voltage: v, maxCurrent: dc.maxCurrent,
                                          minCurrent: dc.minCurrent, resolution: ctl.currentResolution, nowMs: nowMono)
            c.desired = sp

            // Two-level failsafe: the charger's own safe current and timeout, programmed at start
            // and whenever the fallback changes.
            let fallback = ChargerSetpoint.compute(limitW: config.control.fallbackLimitW / Double(chargers.count), phases: dc.phases,
                                                   voltage: v, maxCurrent: dc.maxCurrent, minCurrent: dc.minCurrent,
                                                   resolution: ctl.currentResolution)
            if let fc = ctl.failsafeCurrent, let ft = ctl.failsafeTimeout, !c.failsafeInFlight,
               c.failsafeProgrammedFor != fallback.amps, nowMono >= c.failsafeRetryMonoMs {
                c.failsafeInFlight = true
                c.failsafeRetryMonoMs = nowMono + 5000
                let box = mailbox
                let timeoutS = Double(config.control.deviceFailsafeTimeoutMs / 1000)
                link.write(fc, value: fallback.amps) { r in box.post(.wrote(device: i, what: .failsafeCurrent, value: fallback.amps, result: r)) }
                link.write(ft, value: timeoutS) { r in box.post(.wrote(device: i, what: .failsafeTimeout, value: fallback.amps, result: r)) }
            }

            let changed = c.written != sp
            // Chargers that drop a setpoint after a validity time (Alfen) get it rewritten at half of it.
            let rewriteMs = ctl.setpointValidityS.map { min(refreshMs, Int64($0 * 500)) } ?? refreshMs
            if !c.writeInFlight, nowMono >= c.writeRetryMonoMs, changed || nowMono - c.lastWriteMonoMs >= rewriteMs {
                if changed {
                    log.info("charger \(dc.name): \(sp.paused ? "pause (0 A)" : "\(JSONValue.format(sp.amps)) A") for \(JSONValue.format(share)) W (\(d.source), \(JSONValue.format(v)) V)")
                }
                c.writeInFlight = true
                c.written = sp
                c.lastWriteMonoMs = nowMono
                let box = mailbox
                link.write(ctl.chargingCurrent, value: sp.amps) { r in box.post(.wrote(device: i, what: .setpoint, value: sp.amps, result: r)) }
            }
            if let alive = ctl.alive, nowMono - c.lastAliveMonoMs >= refreshMs {
                c.lastAliveMonoMs = nowMono
                let box = mailbox
                let value = Double(ctl.aliveValue)
                link.write(alive, value: value) { r in box.post(.wrote(device: i, what: .alive, value: value, result: r)) }
            }
            chargers[i] = c
        }
    }

    /// The meter whose cumulative registers feed the energy ledger: the site meter, else the first meter.
    func ledgerMeterIndex() -> Int? {
        siteMeterIndex() ?? links.firstIndex { $0.config.role == .meter } ?? chargers.keys.sorted().first
    }

    func feedLedger(nowWall: Int64, source: String) {
        var sample: LedgerSample? = nil
        if meterSampleFresh, let m = ledgerMeterIndex() {
            let h = health[m]
            sample = LedgerSample(importWh: h.value("import_wh"), exportWh: h.value("export_wh"), powerW: h.value("power_w"))
            meterSampleFresh = false
        }
        let records = ledger.feed(nowMs: nowWall, sample: sample, source: source)
        for r in records {
            enqueue(.ledger, Array(JSONValue.object(r.jsonFields).serialized.utf8), wallMs: nowWall)
        }
        // Saved whenever records were emitted (after the queue holds them durably, so a crash can
        // neither lose nor repeat energy), and every minute so the outage after a crash is short.
        let nowMono = Clock.monoMs()
        if !records.isEmpty || (sample != nil && nowMono >= nextLedgerSaveMonoMs) {
            saveLedger(syncQueue: !records.isEmpty)
            nextLedgerSaveMonoMs = nowMono + 60_000
        }
    }

    /// Restores the ledger saved by the previous run: its open segment is closed with its own
    /// source, and the time until now goes to `derate:agent_offline` (see EnergyLedger).
    func resumeLedger() {
        guard let bytes = StateFile.read(ledgerPath) else { return }
        guard let state = try? JSONValue.parse(bytes), let closed = ledger.restore(state) else {
            log.warning("ignoring unreadable \(ledgerPath); the ledger starts at the first reading")
            return
        }
        let nowWall = Clock.wallMs()
        for r in closed { enqueue(.ledger, Array(JSONValue.object(r.jsonFields).serialized.utf8), wallMs: nowWall) }
        if let t = state["t"]?.doubleValue {
            log.info("ledger resumed from the reading at \(Timestamp.format(ms: Int64(t)))")
        }
        saveLedger(syncQueue: !closed.isEmpty)
    }

    func saveLedger(syncQueue: Bool) {
        guard let state = ledger.persistentState else { return }
        if syncQueue {
            do { try queue.sync() } catch {
                log.error("queue sync before saving the ledger failed (ledger not saved): \(error)")
                return
            }
        }
        do throws(StateFile.IOError) {
            try StateFile.write(Array(state.serialized.utf8), to: ledgerPath)
        } catch {
            log.error("cannot save the ledger: \(error)")
        }
    }

    var appliedA: Double {
        chargers.values.compactMap { $0.written?.amps }.reduce(0, +)
    }

    var paused: Bool { !chargers.isEmpty && chargers.values.allSatisfy { $0.written?.paused ?? true } }

    func controlJSON() -> JSONValue {
        .object([("limit_w", .number(requestedW)), ("applied_a", .number(appliedA)),
                 ("source", .string(decision?.source ?? "default"))])
    }

    func produceTelemetry(nowWall: Int64) {
        var devices: [(String, JSONValue)] = []
        for (i, l) in links.enumerated() { devices.append((l.config.name, Records.reading(health[i]))) }
        let body = JSONValue.object([("ts", .string(Timestamp.format(ms: nowWall))), ("devices", .object(devices)),
                                     ("control", controlJSON())])
        enqueue(.telemetry, Array(body.serialized.utf8), wallMs: nowWall)
    }

    func enqueue(_ kind: RecordKind, _ body: [UInt8], wallMs: Int64) {
        do {
            let seq = try queue.append(kind: kind, payload: body, timestampMs: wallMs)
            if connected { liveSeqs.insert(seq); pendingLive.append(seq) }
        } catch {
            log.error("queue append failed, record lost: \(error)")
        }
    }

    /// Feeds the queue to libmosquitto, at most 16 in flight. Records produced while connected
    /// go out at once (live); the backlog (produced while disconnected, or recovered after a
    /// restart) drains oldest first, flagged historical and paced at replay_rate, alongside.
    /// A slow broker slows the drain: nothing new is handed over until PUBACKs free a slot.
    func pump(nowMono: Int64) {
        guard connected, let m = mqtt else { return }
        var room = 16 - inflight.count
        func send(_ r: QueuedRecord, historical: Bool) -> Bool {
            let payload = Outbound.frame(kind: r.kind, seq: r.seq, historical: historical, body: r.payload)
            do throws(MQTTError) {
                let mid = try m.publish(topic: Outbound.topic(r.kind, root: root), payload: payload, qos: 1,
                                        messageExpiryS: r.kind == .telemetry ? telemetryExpiryS : nil)
                inflight[mid] = r.seq
                sent.insert(r.seq)
                published += 1
                room -= 1
                return true
            } catch {
                log.warning("publish seq \(r.seq): \(error)")
                return false
            }
        }
        // Live records first.
        while room > 0, let seq = pendingLive.first {
            pendingLive.removeFirst()
            liveSeqs.remove(seq)
            guard let r = queue.records(after: seq - 1, limit: 1).first, r.seq == seq else { continue }  // dropped meanwhile
            if !send(r, historical: false) { return }
        }
        // Then the backlog, paced in microseconds (replay_rate may exceed 1000/s). Above 100/s a
        // late loop may catch up by at most 10 ms worth of records; at or below 100/s it never
        // sends two records closer than 1/replay_rate.
        let spacingUs = max(1, 1_000_000 / Int64(config.queue.replayRate))
        let nowUs = Clock.monoUs()
        while room > 0, nowUs >= nextReplayUs {
            let batch = queue.records(after: historyCursor, limit: max(room, 16))
            guard !batch.isEmpty else { break }
            var progressed = false
            for r in batch {
                if liveSeqs.contains(r.seq) { return }          // the live path owns it and everything after
                historyCursor = r.seq
                if sent.contains(r.seq) { continue }            // handed to libmosquitto already
                guard room > 0, nowUs >= nextReplayUs else { historyCursor = r.seq - 1; return }
                let catchUp: Int64 = spacingUs < 10_000 ? 10_000 : 0
                nextReplayUs = max(nextReplayUs + spacingUs, nowUs - catchUp + spacingUs)
                if !send(r, historical: true) { historyCursor = r.seq - 1; return }
                progressed = true
            }
            if !progressed && batch.count < max(room, 16) { break }
        }
    }

    func stateJSON(nowWall: Int64) -> JSONValue {
        let d = decision
        var devices: [(String, JSONValue)] = []
        for (i, l) in links.enumerated() {
            devices.append((l.config.name, .object([
                ("ok", .bool(health[i].ok)),
                ("last_seen", health[i].lastOKWallMs.map { .string(Timestamp.format(ms: $0)) } ?? .null),
            ])))
        }
        return .object([
            ("limit_w", .number(requestedW)), ("applied_a", .number(appliedA)), ("paused", .bool(paused)),
            ("source", .string(d?.source ?? "default")),
            ("events", .array((d?.activeEvents ?? []).map { .string($0) })),
            ("comm", .object([("ok", .bool(d?.commOK ?? false)),
                              ("since", .string(Timestamp.format(ms: d?.commSinceMs ?? startedWallMs)))])),
            ("clock_synced", .bool(clockSynced)),
            ("schedules", .array(activeScheduleIDs.map { .string($0) })),
            ("next_transition", d?.nextTransitionMs.map { .string(Timestamp.format(ms: $0)) } ?? .null),
            ("devices", .object(devices)),
        ])
    }

    /// Publishes the retained state when something other than last_seen changed, and at least
    /// once per telemetry interval.
    func publishState(nowWall: Int64, nowMono: Int64) {
        guard connected, let m = mqtt else { return }
        let s = stateJSON(nowWall: nowWall)
        var key = s
        if case var .object(o) = key {
            // last_seen moves on every poll and limit_w follows the measured voltage: neither
            // alone is a change worth a retained publish (the periodic publish carries them).
            if let di = o.firstIndex(where: { $0.0 == "devices" }) { o[di].1 = .array(health.map { .bool($0.ok) }) }
            if let li = o.firstIndex(where: { $0.0 == "limit_w" }) { o[li].1 = .number((requestedW / 100).rounded()) }
            key = .object(o)
        }
        let keyText = key.serialized
        guard keyText != lastStateJSON || nowMono - lastStatePublishMonoMs >= config.telemetry.intervalMs else { return }
        lastStateJSON = keyText
        lastStatePublishMonoMs = nowMono
        _ = try? m.publish(topic: "\(root)/state", payload: Array(s.serialized.utf8), qos: 1, retain: true)
    }

    func statusJSON(nowWall: Int64) -> String {
        var readings: [(String, JSONValue)] = []
        for (i, l) in links.enumerated() { readings.append((l.config.name, Records.reading(health[i]))) }
        let st = queue.stats
        let oldest: JSONValue = st.oldestTimestampMs.map { .number(Double(max(0, nowWall - $0)) / 1000) } ?? .null
        return JSONValue.object([
            ("state", stateJSON(nowWall: nowWall)),
            ("devices", .object(readings)),
            ("queue", .object([("records", .number(Double(st.records))), ("bytes", .number(Double(st.bytes))),
                               ("oldest_age_s", oldest), ("dropped", .number(Double(st.droppedRecords))),
                               ("next_seq", .number(Double(st.nextSeq))), ("skipped_on_recovery", .number(Double(st.skippedOnRecovery)))])),
            ("mqtt", .object([("connected", .bool(connected)), ("broker", .string("\(config.mqtt.host):\(config.mqtt.port)")),
                              ("in_flight", .number(Double(inflight.count))), ("published", .number(Double(published))),
                              ("acked", .number(Double(acked))), ("last_error", lastMQTTError.map { .string($0) } ?? .null)])),
            ("buses", .object(buses.map { b in
                (b.name, JSONValue.object([("endpoint", .string(b.transport.endpointDescription)),
                                           ("rs485_direction", b.direction.map { .string($0) } ?? .null)]))
            })),
            ("stored_events", .array(engine.events.map { .string($0.id) })),
        ]).serialized
    }

    // MARK: signals

    func installSignalHandlers() {
        signal(SIGTERM, onStopSignal)
        signal(SIGINT, onStopSignal)
        signal(SIGPIPE, SIG_IGN)
    }
}

private let onStopSignal: @convention(c) (Int32) -> Void = { _ in
    stopRequested.store(true, ordering: .relaxed)
}
