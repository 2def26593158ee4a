import Glibc
@testable import GridletAgent
import GridletCore
@testable import GridletModbus
@testable import GridletMQTT
import GridletQueue
import GridletYAML
import Synchronization
import Testing

/// A clock the test moves.
final class ManualTime: TimeSource {
    let now = Mutex<(wall: Int64, mono: Int64)>((1_800_000_000_000, 1_000_000))
    func wallMs() -> Int64 { now.withLock { $0.wall } }
    func monoMs() -> Int64 { now.withLock { $0.mono } }
    func monoUs() -> Int64 { now.withLock { $0.mono } * 1000 }
    func isSynchronised() -> Bool { true }
    func advance(_ ms: Int64) { now.withLock { $0.wall += ms; $0.mono += ms } }
}

/// A device that answers polls with fixed values and records every register write; writes to the
/// addresses in `failing` fail (a charger that refuses them).
final class FakeDevice: DevicePort {
    let config: DeviceConfig
    let profile: DeviceProfile
    let counters = PollCounters()
    struct Write: Equatable { var address: Int; var value: Double }
    let state = Mutex<(values: [String: Double?], writes: [Write], failing: Set<Int>, answering: Bool)>(([:], [], [], true))

    init(config: DeviceConfig, profile: DeviceProfile, values: [String: Double?]) {
        self.config = config; self.profile = profile
        state.withLock { $0.values = values }
    }

    func poll(completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void) {
        let (values, answering) = state.withLock { ($0.values, $0.answering) }
        completion(answering ? .success(values) : .failure(ModbusError(code: ETIMEDOUT, device: config.name, bus: "lan", unit: config.unit, function: "read", address: 0, count: 1, timeoutMs: 300)))
    }

    func write(_ register: ProfileRegister, value: Double, completion: @escaping @Sendable (Result<[UInt16], ModbusError>) -> Void) {
        let fail = state.withLock { s -> Bool in
            s.writes.append(Write(address: register.address, value: value))
            return s.failing.contains(register.address) || !s.answering
        }
        completion(fail ? .failure(ModbusError(code: ECONNREFUSED, device: config.name, bus: "lan", unit: config.unit, function: "write", address: register.address, count: 1, timeoutMs: 300)) : .success([UInt16(truncatingIfNeeded: Int(value))]))
    }

    /// Addresses whose register keeps this value whatever is written (a charger that ignores a write).
    let kept = Mutex<[Int: Double]>([:])
    private(set) var reads: [Int] {
        get { readLog.withLock { $0 } }
        set { readLog.withLock { $0 = newValue } }
    }
    private let readLog = Mutex<[Int]>([])

    func read(_ register: ProfileRegister, completion: @escaping @Sendable (Result<Double, ModbusError>) -> Void) {
        readLog.withLock { $0.append(register.address) }
        if let k = kept.withLock({ $0[register.address] }) { completion(.success(k)); return }
        let last = writes(to: register.address).last ?? 0
        completion(.success(last))
    }

    var writes: [Write] { state.withLock { $0.writes } }
    func writes(to address: Int) -> [Double] { writes.filter { $0.address == address }.map(\.value) }
    func clearWrites() { state.withLock { $0.writes.removeAll() } }
}

/// An MQTT client that records what is published and hands out message ids.
final class FakeMQTT: MQTTPort {
    struct Published { var topic: String; var payload: String; var mid: Int32; var retain = false; var qos: Int32 = 1 }
    var published: [Published] = []
    var subscribed: [String] = []
    var nextMid: Int32 = 1
    var started = false
    /// What the agent gave the client for its events (libmosquitto's thread calls it).
    var handler: (@Sendable (MQTTEvent) -> Void)?
    func start() throws(MQTTError) { started = true }
    func stop() {}
    func subscribe(_ pattern: String, qos: Int32) throws(MQTTError) { subscribed.append(pattern) }
    func publish(topic: String, payload: [UInt8], qos: Int32, retain: Bool, responseCorrelation: [UInt8]?,
                 messageExpiryS: UInt32?) throws(MQTTError) -> Int32 {
        defer { nextMid += 1 }
        published.append(Published(topic: topic, payload: String(decoding: payload, as: UTF8.self), mid: nextMid, retain: retain, qos: qos))
        return nextMid
    }
    func on(_ topicSuffix: String) -> [Published] { published.filter { $0.topic.hasSuffix(topicSuffix) } }
}

/// The queue in memory.
final class MemoryQueue: RecordQueue {
    var stored: [QueuedRecord] = []
    var nextSeq: UInt64 = 1
    func append(kind: RecordKind, payload: [UInt8], timestampMs: Int64) throws(QueueError) -> UInt64 {
        defer { nextSeq += 1 }
        stored.append(QueuedRecord(seq: nextSeq, kind: kind, timestampMs: timestampMs, payload: payload))
        return nextSeq
    }
    func ack(seq: UInt64) throws(QueueError) { stored.removeAll { $0.seq == seq } }
    func ack(seqs: [UInt64]) throws(QueueError) { let s = Set(seqs); stored.removeAll { s.contains($0.seq) } }
    func records(after seq: UInt64, limit: Int) -> [QueuedRecord] { Array(stored.filter { $0.seq > seq }.prefix(limit)) }
    func unackedSeqs(kind: RecordKind) -> [UInt64] { stored.filter { $0.kind == kind }.map(\.seq) }
    func flushIfDue(nowMs: Int64) throws(QueueError) {}
    var unsyncedSinceMs: Int64? { nil }
    func sync() throws(QueueError) {}
    var stats: QueueStats {
        QueueStats(records: stored.count, bytes: 0, oldestTimestampMs: stored.first?.timestampMs, droppedRecords: 0,
                   skippedOnRecovery: 0, nextSeq: nextSeq)
    }
    func close() {}
}

/// An agent over fakes: a site meter and a Vestel-like charger (setpoint 5004, failsafe current
/// 2000, failsafe timeout 2002, alive 6000), 3 x 230 V, 6..16 A.
final class AgentHarness {
    let time = ManualTime()
    let queue = MemoryQueue()
    let mqtt = FakeMQTT()
    let meter: FakeDevice
    let charger: FakeDevice
    let agent: Agent
    /// The state file store the agent writes through (writes at once; can be told to fail).
    nonisolated(unsafe) var store: ImmediateStateStore?
    let stateDir: String

    static let setpoint = 5004, failsafeCurrent = 2000, failsafeTimeout = 2002, alive = 6000

    /// `prepare` runs on the state directory before the agent starts (files of a previous run).
    /// `evse`: another charger line for the config (with `chargerProfile` to match), e.g. a
    /// bidirectional device.
    init(control: String = "", chargerProfile: DeviceProfile? = nil, evse: String? = nil, site: String = "",
         ven: FakeVEN? = nil, mqttEnabled: Bool = true,
         prepare: (String) -> Void = { _ in }) throws {
        var template = Array("/tmp/gridlet-agent-test-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        stateDir = dir
        prepare(dir)
        let text = """
            site: { id: t1, timezone: UTC, state_dir: \(dir), nominal_voltage: 230\(site) }
            buses:
              - { name: lan, kind: tcp, host: 127.0.0.1, port: 1502 }
            devices:
              - { name: meter, bus: lan, unit: 1, profile: eastron-sdm630, role: site-meter, poll: 1s }
              \(evse ?? "- { name: evse, bus: lan, unit: 255, profile: vestel-evc04, role: charger, phases: 3, max_current: 16, min_current: 6, poll: 1s }")
            mqtt: { host: 127.0.0.1, port: 1883 }
            control:
              restore_delay: 0s
              restore_random: 0s
              ramp_w_per_s: 1000000
              min_dwell: 0s
            \(control)
            """
        var config = try GridletConfig.parse(text: text, profileExists: { _ in true })
        config.mqttEnabled = mqttEnabled
        let meterProfile = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        let builtinEvse = try ProfileLibrary.builtin(named: "vestel-evc04")
        let evseProfile = try #require(chargerProfile ?? builtinEvse)
        let volts: [String: Double?] = ["voltage_l1_v": 230, "voltage_l2_v": 230, "voltage_l3_v": 230]
        meter = FakeDevice(config: config.devices[0], profile: meterProfile, values: volts.merging(["power_w": 500]) { a, _ in a })
        charger = FakeDevice(config: config.devices[1], profile: evseProfile, values: volts)
        let fake = mqtt
        var ports = AgentPorts(time: time, queue: queue, devices: [meter, charger], buses: [],
                               makeMQTT: { _, handler throws(MQTTError) in fake.handler = handler; return fake })
        let box = StoreBox()
        ports.makeStateStore = { done in let s = ImmediateStateStore(done: done); box.store = s; return s }
        if let ven { ports.makeVEN = { _, report in ven.report = report; return ven } }   // OpenADRWiringTests
        agent = try Agent(config: config, ports: ports, logger: Logger(label: "test", minimum: .error))
        store = box.store
        try agent.start()
    }

    deinit {
        for f in ["control.json", "ledger.json", "comm.json", "comm.json.tmp", "homeassistant.json", "ledger.log", "ledger.log.1"] { unlink(stateDir + "/" + f) }
        rmdir(stateDir)
    }

    /// One loop turn, no waiting.
    func step() { agent.step(waitMs: 0) }

    /// Turns every `everyMs` for `ms` of manual time.
    func run(for ms: Int64, everyMs: Int64 = 100) {
        var t: Int64 = 0
        while t < ms { time.advance(everyMs); step(); t += everyMs }
    }

    func connect() { mqtt.handler?(.connected(returnCode: 0, sessionPresent: false)); step() }
    func disconnect() { mqtt.handler?(.disconnected(returnCode: 7)); step() }

    func command(_ name: String, _ json: String) {
        let msg = MQTTMessage(topic: "gridlet/t1/cmd/\(name)", payload: Array(json.utf8), retained: false,
                              responseTopic: nil, correlationData: nil)
        mqtt.handler?(.message(msg))
    }
}

/// Hands the store the agent made back to the test.
final class StoreBox: @unchecked Sendable {
    // Set once, on the test's thread, while the agent is built; read right after.
    var store: ImmediateStateStore?
}
