import Glibc
import GridletCore
import GridletModbus
import GridletMQTT
import GridletOpenADR
import GridletQueue
import GridletSys
import Synchronization

public let gridletVersion = "0.1.0"
/// The release date of this version (2026-11-24T00:00:00Z): a clock that reads earlier and is not
/// synchronised cannot be trusted, and restricting schedules then stay active (SPEC §2).
public let gridletBuildDateMs: Int64 = 1_795_478_400_000

/// Set by SIGTERM/SIGINT; the control loop checks it every turn.
let stopRequested = Atomic<Bool>(false)

/// What other threads hand the control loop.
enum AgentInput: Sendable {
    case mqtt(MQTTEvent)
    case polled(device: Int, result: Result<[String: Double?], ModbusError>)
    case wrote(device: Int, register: ChargerRegister, value: Double, result: Result<[UInt16], ModbusError>)
    case readBack(device: Int, register: ChargerRegister, result: Result<Double, ModbusError>)
    case wrotePower(device: Int, register: PowerRegister, value: Double, result: Result<[UInt16], ModbusError>)
    case local(LocalRequest)
    case stored(StateWriteResult)
    case openADR(VENReport)
    /// A background fdatasync of the queue finished (errno 0) or failed.
    case queueSynced(id: UInt64, errno: Int32)
}

public struct AgentError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The daemon's wiring. Inputs arrive in the mailbox (from libmosquitto's thread, the bus
/// owners', the local socket's); the control loop feeds them to the state machines of the core
/// (`ControlEngine` decides the limit, `SiteReadings` owns what the devices said, a
/// `ChargerDriver` per charger decides every register write, `PublishPipeline` decides what goes
/// to the broker, `EnergyLedger` and `PollScheduler`) and performs the actions they return through
/// the ports (`AgentPorts`). The agent itself decides nothing.
public final class Agent {
    let config: GridletConfig
    let log: Logger
    let root: String
    let time: any TimeSource
    let devices: [any DevicePort]
    let buses: [any BusPort]
    let queue: any RecordQueue
    let makeMQTT: (MQTTClientOptions, @escaping @Sendable (MQTTEvent) -> Void) throws(MQTTError) -> any MQTTPort
    let status: StatusServer?
    let mailbox: Mailbox<AgentInput>
    let notify = SystemdNotify()
    var mqtt: (any MQTTPort)?
    /// The OpenADR VEN, when configured (AgentOpenADR.swift).
    var openADR: OpenADRSide?

    // The state machines.
    var engine: ControlEngine
    var readings: SiteReadings
    var drivers: [Int: ChargerDriver] = [:]
    /// Bidirectional devices (AgentPower.swift) and the export side of the last decision.
    var powerDrivers: [Int: BidirectionalDriver] = [:]
    var exportDecision: ExportDecision?
    var pipeline: PublishPipeline
    var ledger: EnergyLedger
    var polls: PollScheduler

    // What the last turn decided, for state and status.
    var decision: ControlDecision?
    var requestedW: Double = 0
    var clockSynced: Bool
    var lastRestoring = false
    var lastMQTTError: String?
    var lastPersistError: String?
    /// Writes the state files off the loop (see AgentAcks.swift).
    var stateStore: any StateStore
    var outbox: [(token: UInt64?, then: (StateFile.IOError?) -> Void)] = []
    var finishedStateTokens: [UInt64: StateFile.IOError?] = [:]
    var nextStateToken: UInt64 = 1
    var queueErrorLogged = false
    var commandsDropped = 0
    /// When the loop last ran the MQTT client's I/O (it does at least every second, for the keepalive).
    var mqttServicedMonoMs: Int64 = 0
    /// Seqs the broker acknowledged in this step, acked in the queue together.
    var acksToWrite: [UInt64] = []
    /// How long the loop's turns take (its work, not its wait): nothing slow may sit on it.
    var loopTurns = TurnTimes()
    /// Set when the queue could not be reopened after an I/O error: the loop stops, `run` throws.
    var queueFatal: AgentError?
    /// Runs the queue's fdatasync off the loop (nil: the queue syncs inline).
    var queueSyncer: QueueSyncer?
    /// `sync: always` with background syncs: appended records the broker gets once they are synced.
    var awaitingSync: [UInt64] = []
    /// A ledger save waiting for the queue to hold its records durably (seq bound).
    var ledgerSaveAfterSeq: UInt64?

    // Cadences of the control loop.
    var telemetryCadence: Cadence
    var snapshotCadence = Cadence(intervalMs: 100)
    var clockCheckCadence = Cadence(intervalMs: 10_000)
    var ledgerSaveCadence = Cadence(intervalMs: 60_000)
    var commSaveCadence = Cadence(intervalMs: 30_000)
    var watchdogCadence: Cadence?
    lazy var stateGate = StatePublishGate(telemetryIntervalMs: config.telemetry.intervalMs)
    lazy var homeAssistant = makeHomeAssistantLink()
    let metricsFile = MetricsFile()

    let bootID: String
    let startedWallMs: Int64
    let startedMonoMs: Int64
    let zone: TimeZoneRules
    let statePath: String
    var ledgerPath: String { config.site.stateDir + "/ledger.json" }
    /// The local copy of the ledger records, for `gridlet ledger` (LedgerLog.swift).
    lazy var ledgerLog = LedgerLog(stateDir: config.site.stateDir)

    /// The daemon on the real ports: libmodbus buses, libmosquitto, the disk queue, the system clocks.
    public convenience init(config: GridletConfig, profiles: [String: DeviceProfile], logger: Logger) throws(AgentError) {
        try self.init(config: config, ports: try AgentPorts.live(config: config, profiles: profiles, logger: logger), logger: logger)
    }

    init(config: GridletConfig, ports: AgentPorts, logger: Logger) throws(AgentError) {
        do throws(Errno) { mailbox = try Mailbox() } catch {
            throw AgentError("cannot create the control loop's wake-up eventfd: \(error)")
        }
        self.config = config
        self.log = logger
        self.root = config.mqtt.root(siteID: config.site.id)
        self.time = ports.time
        self.devices = ports.devices
        self.buses = ports.buses
        self.queue = ports.queue
        self.makeMQTT = ports.makeMQTT
        self.status = ports.status
        self.bootID = Agent.makeUUID()
        self.startedWallMs = time.wallMs()
        self.startedMonoMs = time.monoMs()
        self.statePath = config.site.stateDir + "/control.json"
        self.clockSynced = time.isSynchronised()
        let box = mailbox
        do throws(Errno) {
            stateStore = try ports.makeStateStore { box.post(.stored($0)) }
        } catch {
            throw AgentError("cannot start the state writer thread: \(error)")
        }
        if let make = ports.makeQueueSyncer {
            do throws(Errno) {
                let syncer = try make { id, e in box.post(.queueSynced(id: id, errno: e)) }
                queueSyncer = syncer
                queue.enableBackgroundSync { syncer.submit($0) }
            } catch {
                throw AgentError("cannot start the queue sync thread: \(error)")
            }
        }
        let c = config.control
        readings = SiteReadings(roles: devices.map(\.config.role), nominalVoltage: config.site.nominalVoltage,
                                meterStaleAfterMs: c.meterStaleAfterMs, startedMonoMs: startedMonoMs)
        polls = PollScheduler(intervalsMs: devices.map(\.config.pollMs))
        for i in readings.chargerIndices {
            guard let control = devices[i].profile.control else { continue }
            drivers[i] = ChargerDriver(settings: ChargerDriverSettings(
                device: devices[i].config, control: control, failsafeTimeoutMs: c.deviceFailsafeTimeoutMs, minDwellMs: c.minDwellMs,
                resumeHysteresisA: c.resumeHysteresisA))
        }
        pipeline = PublishPipeline(replayRate: config.queue.replayRate)
        ledger = EnergyLedger(intervalMs: config.telemetry.ledgerIntervalMs)
        telemetryCadence = Cadence(intervalMs: config.telemetry.intervalMs)
        engine = ControlEngine(settings: ControlSettings(c, site: config.site, buildDateMs: gridletBuildDateMs),
                               nowMs: startedWallMs, seed: Agent.randomSeed() ^ UInt64(bitPattern: startedWallMs))
        zone = try Agent.loadZone(config.site.timezone)
        powerDrivers = Agent.makePowerDrivers(devices: devices, chargers: readings.chargerIndices, failsafeTimeoutMs: c.deviceFailsafeTimeoutMs)
        engine.settings.hasControllableDevice = !drivers.isEmpty || !powerDrivers.isEmpty
        engine.settings.followsSetpoints = !powerDrivers.isEmpty
        engine.configureSchedules(config.schedules, holidays: config.holidays, zone: zone)
        restoreControlState()
        commSaveCadence = Cadence(intervalMs: min(30_000, max(1000, c.commLossTimeoutMs / 4)))
        restoreComm()
        openADR = Agent.openADRSide(config: config, ports: ports, mailbox: mailbox, exportControl: !powerDrivers.isEmpty)
    }

    // MARK: run

    /// Runs until SIGTERM/SIGINT; returns after a clean stop.
    public func run() throws(AgentError) {
        installSignalHandlers()
        // Again once the daemon's start-up code (parsing, profiles, config) has run.
        CodePages.trim()
        try start()
        notify.send("READY=1\nSTATUS=running")
        if let w = notify.watchdogIntervalMs { watchdogCadence = Cadence(intervalMs: w) }
        var firstTurn = true
        while !stopRequested.load(ordering: .relaxed) && queueFatal == nil {
            step(waitMs: firstTurn ? 0 : nextWaitMs())
            firstTurn = false
        }
        shutdown()
        if let queueFatal { throw queueFatal }
    }

    /// Everything up to the first turn: the ledger resumed, the broker session started, the
    /// local socket serving.
    func start() throws(AgentError) {
        log.notice("gridlet \(gridletVersion) starting: site \(config.site.id), \(devices.count) device(s), broker \(config.mqttEnabled ? "\(config.mqtt.host):\(config.mqtt.port)" : "none (OpenADR only)"), queue \(queue.stats.records) record(s) pending")
        resumeReports()
        resumeLedger()
        let box = mailbox
        if config.mqttEnabled { try startMQTT() }
        try startOpenADR()
        status?.controlLoop.withLock { $0 = ControlLoopChannel(post: { box.post(.local($0)) }) }
        status?.update(snapshot: statusJSON(nowWall: time.wallMs()))   // never answer with an empty snapshot
        status?.start()
    }

    func startMQTT() throws(AgentError) {
        let box = mailbox
        var options = try mqttOptions()
        // The control loop runs the broker socket's I/O itself (one poll over the socket and the
        // mailbox): a PUBACK read there is acknowledged in the queue and the next record published
        // in the same turn, with no hand-off between threads. The client's thread only connects.
        options.externalIO = { box.wake() }
        do throws(MQTTError) {
            let client = try makeMQTT(options) { event in
                // A command beyond the mailbox's bound is dropped unanswered: no reply, so the
                // sender sends it again (docs/mqtt-api.md).
                if case .message = event { box.offer(.mqtt(event)) } else { box.post(.mqtt(event)) }
            }
            try client.start()
            mqtt = client
        } catch {
            throw AgentError("MQTT: \(error); check the mqtt section (host, port, tls files)")
        }
    }

    /// One turn of the control loop: waits up to `waitMs` for inputs, handles them, then lets the
    /// machines act on the time.
    func step(waitMs: Int64) {
        let watch = mqtt?.pollRequest
        var (inputs, ready) = mailbox.take(timeoutMs: waitMs, watching: watch)
        let began = time.monoUs()
        if watch != nil, let m = mqtt, ready != 0 || began / 1000 - mqttServicedMonoMs >= 1000 {
            serviceMQTT(m)
            inputs += mailbox.take(timeoutMs: 0)
        }
        for input in inputs { handle(input) }
        writeAcks()
        flushMQTT()   // replies decided by the inputs go out before the turn's work
        turn()
        flushMQTT()
        loopTurns.record(us: time.monoUs() - began)
    }

    /// Reads what the broker sent (its events land in the mailbox), writes what is queued, keeps
    /// the session alive.
    func serviceMQTT(_ m: any MQTTPort) {
        m.service()
        mqttServicedMonoMs = time.monoMs()
    }

    /// Sends what this turn published now, not on the next turn's poll.
    func flushMQTT() {
        guard let m = mqtt, let w = m.pollRequest, w.events & Int16(POLLOUT) != 0 else { return }
        m.flush()
        mqttServicedMonoMs = time.monoMs()
    }

    func shutdown() {
        log.notice("stopping")
        notify.send("STOPPING=1")
        if pipeline.connected, let m = mqtt {
            _ = try? m.publish(topic: "\(root)/status", payload: Array(statusPayload(online: false, sinceMs: time.wallMs()).utf8),
                               qos: 1, retain: true, responseCorrelation: nil, messageExpiryS: nil)
            // Let in-flight messages be acknowledged, so a clean stop delivers nothing twice
            // after the restart (bounded well inside systemd's stop timeout).
            let deadline = time.monoMs() + 3000
            while time.monoMs() < deadline, pipeline.inFlight > 0 {
                let watch = m.pollRequest
                var (inputs, ready) = mailbox.take(timeoutMs: 50, watching: watch)
                if watch != nil, ready != 0 || time.monoMs() - mqttServicedMonoMs >= 1000 {
                    serviceMQTT(m)
                    inputs += mailbox.take(timeoutMs: 0)
                }
                for input in inputs { if case .mqtt = input { handle(input) } }
                writeAcks()
            }
        }
        mqtt?.stop()
        mqtt = nil
        openADR?.stop()
        status?.stop()
        for b in buses { b.stop() }
        saveComm(nowWall: time.wallMs(), durable: true)
        do { try queue.sync() } catch { log.error("queue sync at stop failed: \(error)") }
        saveLedger(syncQueue: false)
        stateStore.drain()
        for input in mailbox.take(timeoutMs: 0) { if case let .stored(r) = input { stored(r) } }
        stateStore.close()
        queue.close()
        queueSyncer?.stop()
        log.notice("stopped")
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
