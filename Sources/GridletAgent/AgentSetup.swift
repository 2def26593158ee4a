import CGridletSys
import Glibc
import GridletCore
import GridletModbus
import GridletMQTT
import GridletQueue
import GridletSys

extension AgentPorts {
    /// The daemon's ports: the disk queue under `state_dir/queue`, one libmodbus owner per bus, a
    /// link per device, libmosquitto, the system clocks and the local CLI socket.
    static func live(config: GridletConfig, profiles: [String: DeviceProfile], logger: Logger) throws(AgentError) -> AgentPorts {
        do throws(StateFile.IOError) {
            try StateFile.makeDirectories(config.site.stateDir)
        } catch {
            throw AgentError("cannot use state_dir: \(error). Create it or set site.state_dir to a writable directory.")
        }
        let queue: DiskQueue
        do throws(QueueError) {
            let sync: QueueSyncMode
            switch config.queue.sync {
            case .always: sync = .always
            case .batch: sync = .batch(intervalMs: config.queue.syncIntervalMs)
            case .none: sync = .none
            }
            queue = try DiskQueue(directory: config.site.stateDir + "/queue", maxBytes: config.queue.maxBytes, sync: sync)
        } catch {
            throw AgentError("cannot open the queue: \(error); \(Agent.queueOpenHint(error.errno))")
        }
        var busByName: [String: ModbusBus] = [:]
        for b in config.buses { busByName[b.name] = ModbusBus(b) }
        var links: [DeviceLink] = []
        for d in config.devices {
            guard let p = profiles[d.profile], let bus = busByName[d.bus] else {
                throw AgentError("device \(d.name): profile \(d.profile) or bus \(d.bus) is not available")
            }
            links.append(DeviceLink(config: d, profile: p, bus: bus))
        }
        var ports = AgentPorts(
            time: SystemTime(), queue: queue, devices: links, buses: config.buses.compactMap { busByName[$0.name] },
            makeMQTT: { (options, handler) throws(MQTTError) -> any MQTTPort in try MQTTClient(options: options, handler: handler) })
        ports.makeStateStore = { (done) throws(Errno) -> any StateStore in try StateWriter(done: done) }
        // GRIDLET_INLINE_QUEUE_SYNC=1: the queue syncs on the control loop as it used to (for the
        // before/after figures of bench/loop-turn.sh and test_slow_disk.py; not for production).
        if getenv("GRIDLET_INLINE_QUEUE_SYNC") == nil {
            ports.makeQueueSyncer = { (done) throws(Errno) -> QueueSyncer in try QueueSyncer(done: done) }
        }
        ports.makeVEN = Agent.liveVEN
        let socketPath = SocketPath.resolve(configured: config.site.socket)
        do {
            ports.status = try StatusServer(path: socketPath, links: links, logger: logger)
        } catch {
            logger.warning("local status socket unavailable: \(error)")
        }
        return ports
    }
}

extension Agent {
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

    static func randomBytes(_ count: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = b.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }; close(fd) }
        return b
    }

    static func randomSeed() -> UInt64 {
        randomBytes(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func makeUUID() -> String {
        var b = randomBytes(16)
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-" + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    /// The persisted control state (events, opt-outs, draws, versions) of the previous run.
    func restoreControlState() {
        guard let bytes = StateFile.read(statePath) else { return }
        do {
            for problem in engine.restorePersistentState(try JSONValue.parse(bytes)) {
                log.warning("\(statePath): \(problem); skipped")
            }
        } catch {
            log.warning("ignoring unreadable \(statePath): \(error)")
        }
    }


    func mqttOptions() throws(AgentError) -> MQTTClientOptions {
        let m = config.mqtt
        var password: String? = nil
        if let pf = m.passwordFile {
            guard let bytes = StateFile.read(pf) else {
                throw AgentError("cannot read mqtt.password_file \(pf): \(String(cString: strerror(errno))); fix the path, or let the gridlet user read it (chown root:gridlet, chmod 640)")
            }
            password = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
        }
        let will = Array(statusPayload(online: false, sinceMs: startedWallMs).utf8)
        var options = MQTTClientOptions(
            clientID: m.clientID, host: m.host, port: m.port, keepaliveS: Int(max(5, m.keepaliveMs / 1000)),
            username: m.username, password: password, caFile: m.tls?.caFile, certFile: m.tls?.certFile, keyFile: m.tls?.keyFile,
            tlsInsecure: m.tls?.insecure ?? false, protocolVersion: .v5, cleanSession: false,
            will: (topic: "\(root)/status", payload: will, retain: true))
        options.useTLS = m.tls != nil
        return options
    }

    func statusPayload(online: Bool, sinceMs: Int64) -> String {
        JSONValue.object([("online", .bool(online)), ("version", .string(gridletVersion)), ("boot", .string(bootID)),
                          ("since", .string(Timestamp.format(ms: sinceMs)))]).serialized
    }
}
