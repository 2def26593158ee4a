import GridletCore
import GridletModbus
import GridletMQTT
import GridletOpenADR
import GridletQueue
import GridletSys

/// The seams between the agent's wiring and the outside world. The daemon plugs in libmodbus,
/// libmosquitto, the disk queue and the system clocks (`AgentPorts.live`); agent-level tests plug
/// in fakes and a manual clock, and run the real state machines in milliseconds.

/// The clocks the agent reads (it passes times into the core, which never reads a clock).
protocol TimeSource: Sendable {
    /// Wall clock, Unix milliseconds.
    func wallMs() -> Int64
    /// Monotonic milliseconds, for intervals and timeouts.
    func monoMs() -> Int64
    /// Monotonic microseconds, for pacing.
    func monoUs() -> Int64
    /// Whether the system clock is synchronised (NTP).
    func isSynchronised() -> Bool
}

/// One configured device on its bus: polls and register writes, answered by completion.
protocol DevicePort: AnyObject, Sendable {
    var config: DeviceConfig { get }
    var profile: DeviceProfile { get }
    var counters: PollCounters { get }
    func poll(completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void)
    func write(_ register: ProfileRegister, value: Double,
               completion: @escaping @Sendable (Result<[UInt16], ModbusError>) -> Void)
    /// Reads a holding register back, decoded to its physical value.
    func read(_ register: ProfileRegister, completion: @escaping @Sendable (Result<Double, ModbusError>) -> Void)
}

/// A bus as the status snapshot shows it, and stopped at shutdown.
protocol BusPort: AnyObject, Sendable {
    var name: String { get }
    var endpointDescription: String { get }
    var direction: String? { get }
    func stop()
}

/// The MQTT client: a session with the broker, publishes answered by `.published` events.
protocol MQTTPort: AnyObject {
    func start() throws(MQTTError)
    func stop()
    func subscribe(_ pattern: String, qos: Int32) throws(MQTTError)
    @discardableResult
    func publish(topic: String, payload: [UInt8], qos: Int32, retain: Bool,
                 responseCorrelation: [UInt8]?, messageExpiryS: UInt32?) throws(MQTTError) -> Int32
    /// While the control loop runs the client's socket I/O (`MQTTClientOptions.externalIO`):
    /// the socket and the events to poll for; nil while the client's thread (re)connects.
    var pollRequest: (fd: Int32, events: Int16)? { get }
    /// One pass of the client's I/O on the loop (reads, writes, keepalive); its events are posted
    /// to the mailbox from inside it.
    func service()
    /// Writes what the turn published, batched into as few segments as fit.
    func flush()
}

extension MQTTPort {
    /// Fakes complete on the calling thread: nothing to poll, nothing to run.
    var pollRequest: (fd: Int32, events: Int16)? { nil }
    func service() {}
    func flush() {}
}

/// The on-disk queue of outbound records (SPEC §4).
protocol RecordQueue: AnyObject, OutboundRecordSource where Record == QueuedRecord {
    func append(kind: RecordKind, payload: [UInt8], timestampMs: Int64) throws(QueueError) -> UInt64
    func ack(seq: UInt64) throws(QueueError)
    /// Several acks, one checkpoint.
    func ack(seqs: [UInt64]) throws(QueueError)
    func flushIfDue(nowMs: Int64) throws(QueueError)
    /// Wall time of the oldest write not yet synced (`sync: batch`), nil when all is synced.
    var unsyncedSinceMs: Int64? { get }
    func sync() throws(QueueError)
    /// After a failed fdatasync: reopen, keep what was synced, report the rest with a gap
    /// record; nil when nothing failed (see `DiskQueue.recoverAfterIOError`).
    func recoverAfterIOError(nowMs: Int64) throws(QueueError) -> QueueIORecovery?
    var stats: QueueStats { get }
    /// Seqs of the unacknowledged records of one kind, oldest first (no I/O).
    func unackedSeqs(kind: RecordKind) -> [UInt64]
    func close()
    /// Background syncs (`DiskQueue.enableBackgroundSync`): due syncs go to `submit`, results
    /// come back through `completeSync` on the loop.
    func enableBackgroundSync(_ submit: @escaping (QueueSyncRequest) -> Void)
    func completeSync(id: UInt64, errno: Int32, nowMs: Int64) throws(QueueError)
    var syncsInBackground: Bool { get }
    /// Every record below this seq is synced.
    var durableBelowSeq: UInt64 { get }
    /// A background sync of everything written so far, due or not (inline without background syncs).
    func requestSync(nowMs: Int64) throws(QueueError)
}

extension RecordQueue {
    /// A queue without a disk under it (the agent tests' in-memory queue) never fails a sync.
    func recoverAfterIOError(nowMs: Int64) throws(QueueError) -> QueueIORecovery? { nil }
    func enableBackgroundSync(_ submit: @escaping (QueueSyncRequest) -> Void) {}
    func completeSync(id: UInt64, errno: Int32, nowMs: Int64) throws(QueueError) {}
    var syncsInBackground: Bool { false }
    var durableBelowSeq: UInt64 { UInt64.max }
    func requestSync(nowMs: Int64) throws(QueueError) { try sync() }
}

extension QueuedRecord: SequencedRecord {}
extension DiskQueue: RecordQueue {}
extension DeviceLink: DevicePort {}
extension MQTTClient: MQTTPort {}

extension ModbusBus: BusPort {
    var endpointDescription: String { transport.endpointDescription }
}

/// Everything the agent talks to.
struct AgentPorts {
    var time: any TimeSource
    var queue: any RecordQueue
    var devices: [any DevicePort]
    var buses: [any BusPort]
    /// Makes the MQTT client; its events go to the handler (from the client's thread).
    var makeMQTT: (MQTTClientOptions, @escaping @Sendable (MQTTEvent) -> Void) throws(MQTTError) -> any MQTTPort
    /// The local CLI socket, nil when unavailable (or in tests).
    var status: StatusServer?
    /// Makes the OpenADR VEN for `openadr:`; its reports go to the handler (from its thread). nil: none.
    var makeVEN: ((OpenADRConfig, @escaping @Sendable (VENReport) -> Void) -> any VENPort)?
    /// Makes the store for the state files; its results go to the handler (from its thread).
    var makeStateStore: (@escaping @Sendable (StateWriteResult) -> Void) throws(Errno) -> any StateStore = { done in
        ImmediateStateStore(done: done)
    }
    /// Makes the thread that runs the queue's fdatasync off the loop (the daemon); nil: the
    /// queue syncs inline (tests with an in-memory queue).
    var makeQueueSyncer: ((@escaping @Sendable (UInt64, Int32) -> Void) throws(Errno) -> QueueSyncer)?

    init(time: any TimeSource, queue: any RecordQueue, devices: [any DevicePort], buses: [any BusPort],
                makeMQTT: @escaping (MQTTClientOptions, @escaping @Sendable (MQTTEvent) -> Void) throws(MQTTError) -> any MQTTPort) {
        self.time = time; self.queue = queue; self.devices = devices; self.buses = buses; self.makeMQTT = makeMQTT
    }
}
