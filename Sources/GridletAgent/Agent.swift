import Glibc
import GridletCore
import GridletModbus
import GridletMQTT
import GridletQueue
import Synchronization

public let gridletVersion = "0.1.0"

/// Set by SIGTERM/SIGINT; the control loop checks it every turn.
let stopRequested = Atomic<Bool>(false)

enum AgentInput: Sendable {
    case mqtt(MQTTEvent)
    case polled(device: Int, result: Result<[String: Double?], ModbusError>)
    case wrote(device: Int, what: ChargerWrite, value: Double, result: Result<[UInt16], ModbusError>)
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
    var health: [DeviceHealth]
    var chargers: [Int: ChargerState] = [:]
    var connected = false
    var inflight: [Int32: UInt64] = [:]
    var lastSentSeq: UInt64 = 0
    var liveSeqs: Set<UInt64> = []
    var nextReplayMonoMs: Int64 = 0
    var nextTelemetryMonoMs: Int64 = 0
    var lastStateJSON = ""
    var lastStatePublishMonoMs: Int64 = 0
    var lastWatchdogMonoMs: Int64 = 0
    var decision: ControlDecision?
    var requestedW: Double = 0
    let bootID: String
    let startedWallMs: Int64
    let startedMonoMs = Clock.monoMs()
    var startSettled = false
    let statePath: String
    var published = 0
    var queueErrorLogged = false

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
        for (i, l) in links.enumerated() where l.config.role == .charger { chargers[i] = ChargerState() }

        var seed: UInt64 = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = read(fd, &seed, 8); close(fd) }
        engine = ControlEngine(settings: ControlSettings(config.control, site: config.site), nowMs: startedWallMs,
                               seed: seed ^ UInt64(bitPattern: startedWallMs))
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
        log.notice("gridlet \(gridletVersion) starting: site \(config.site.id), \(links.count) device(s), broker \(config.mqtt.host):\(config.mqtt.port), queue \(queue.stats.records) record(s) pending")
        try startMQTT()
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
            // Give in-flight messages a moment to be acknowledged (bounded).
            let deadline = Clock.monoMs() + 1500
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
        queue.close()
        log.notice("stopped")
    }

    func nextWaitMs() -> Int64 {
        let now = Clock.monoMs()
        var wait: Int64 = 200
        for h in health where !h.pollInFlight { wait = min(wait, h.nextPollMonoMs - now) }
        wait = min(wait, nextTelemetryMonoMs - now)
        if connected, !inflight.isEmpty || lastSentSeq < queue.stats.nextSeq - 1 { wait = min(wait, max(1, nextReplayMonoMs - now)) }
        return max(1, wait)
    }

    // MARK: inputs

    func handle(_ input: AgentInput) {
        let nowWall = Clock.wallMs()
        let nowMono = Clock.monoMs()
        switch input {
        case let .polled(i, result):
            health[i].pollInFlight = false
            switch result {
            case let .success(values):
                if !health[i].ok { log.info("device \(links[i].config.name) answering") }
                health[i].values = values
                health[i].ok = true
                health[i].lastOKWallMs = nowWall
                health[i].lastOKMonoMs = nowMono
                health[i].lastError = nil
                health[i].consecutiveFailures = 0
                health[i].nextPollMonoMs = max(health[i].nextPollMonoMs, nowMono)
            case let .failure(e):
                if health[i].ok || health[i].lastError == nil { log.warning("device \(links[i].config.name): \(e)") }
                health[i].ok = false
                health[i].values = [:]
                health[i].lastError = e.description
                health[i].consecutiveFailures += 1
                // Back off a device that stops answering, so it does not hold up its bus.
                let backoff = min(Int64(30_000), links[i].config.pollMs << min(health[i].consecutiveFailures - 1, 5))
                health[i].nextPollMonoMs = nowMono + backoff
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
                if what == .setpoint { c.lastWriteError = nil }
            case let .failure(e):
                if c.lastWriteError == nil { log.error("charger \(links[i].config.name): writing \(what.rawValue) \(JSONValue.format(value)) failed: \(e)") }
                c.lastWriteError = e.description
                if what == .setpoint { c.written = nil }
                if what == .failsafeCurrent || what == .failsafeTimeout { c.failsafeProgrammedFor = nil }
            }
            chargers[i] = c
        case let .mqtt(event):
            handleMQTT(event, nowWall: nowWall)
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
        case let .published(mid, reason):
            if let seq = inflight.removeValue(forKey: mid) {
                if reason >= 0x80 { log.error("broker rejected record seq \(seq) (reason \(reason)); dropping it") }
                do { try queue.ack(seq: seq) } catch { log.error("queue ack failed: \(error)") }
            }
        case let .message(msg):
            handleCommand(msg, nowWall: nowWall)
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
            if outcome.changed { persist() }
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
        publishState(nowWall: nowWall, nowMono: nowMono)
        do { try queue.flushIfDue(nowMs: nowMono) } catch {
            if !queueErrorLogged { log.error("queue: \(error)"); queueErrorLogged = true }
        }
        if let w = notify.watchdogIntervalMs, nowMono - lastWatchdogMonoMs >= w {
            notify.send("WATCHDOG=1")
            lastWatchdogMonoMs = nowMono
        }
        status?.update(snapshot: statusJSON(nowWall: nowWall))
        publishQueueViews(nowWall: nowWall)
    }

    func schedulePolls(_ nowMono: Int64) {
        for i in links.indices where !health[i].pollInFlight && nowMono >= health[i].nextPollMonoMs {
            health[i].pollInFlight = true
            health[i].nextPollMonoMs = nowMono + links[i].config.pollMs
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
        let d = engine.decide(nowMs: nowWall, inputs: ControlInputs(
            hardwareMaxW: hardwareMaxW, hasSiteMeter: siteMeterIndex() != nil, siteMeterPowerW: meterPower,
            chargerPowerW: chargerPowerW, faultyDevice: faulty))
        decision = d
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
            let sp = ChargerSetpoint.compute(limitW: share, phases: dc.phases, voltage: v, maxCurrent: dc.maxCurrent,
                                             minCurrent: dc.minCurrent, resolution: ctl.currentResolution)
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
            if !c.writeInFlight, changed || nowMono - c.lastWriteMonoMs >= refreshMs {
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
            if connected { liveSeqs.insert(seq) }
        } catch {
            log.error("queue append failed, record lost: \(error)")
        }
    }

    /// Feeds the queue to libmosquitto, oldest first, at most 16 in flight; records that were
    /// not produced while connected (backlog, or from before a restart) go out flagged
    /// historical and paced at replay_rate.
    func pump(nowMono: Int64) {
        guard connected, let m = mqtt else { return }
        let room = 16 - inflight.count
        guard room > 0 else { return }
        let batch = queue.records(after: lastSentSeq, limit: room)
        let spacing = max(1, 1000 / Int64(config.queue.replayRate))
        for r in batch {
            let historical = !liveSeqs.contains(r.seq)
            if historical {
                if nowMono < nextReplayMonoMs { break }
                nextReplayMonoMs = max(nextReplayMonoMs, nowMono - spacing) + spacing
            }
            let payload = Outbound.frame(kind: r.kind, seq: r.seq, historical: historical, body: r.payload)
            do throws(MQTTError) {
                let mid = try m.publish(topic: Outbound.topic(r.kind, root: root), payload: payload, qos: 1)
                inflight[mid] = r.seq
                lastSentSeq = r.seq
                liveSeqs.remove(r.seq)
                published += 1
            } catch {
                log.warning("publish seq \(r.seq): \(error)")
                break
            }
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
            ("clock_synced", .bool(Clock.isSynchronised())),
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
            ("mqtt", .object([("connected", .bool(connected)), ("broker", .string("\(config.mqtt.host):\(config.mqtt.port)"))])),
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
