import CModbus
import GridletCore
import Glibc
import GridletSys

/// One Modbus transaction.
public enum ModbusRequest: Sendable, Equatable {
    /// Reads `count` registers; the result holds them.
    case read(table: RegisterTable, address: Int, count: Int, unit: Int, deviceName: String)
    /// Writes holding registers (fc 6 for one value, fc 16 for more); the result echoes `values`.
    case write(address: Int, values: [UInt16], unit: Int, deviceName: String)
    /// Writes holding registers with fc 16 even for a single register (diagnostics).
    case writeMultiple(address: Int, values: [UInt16], unit: Int, deviceName: String)
}

/// A Modbus bus (one TCP endpoint or one serial line) served by its own POSIX thread, which
/// owns the only `ModbusConnection`. Requests from any thread go into a FIFO and run in order;
/// libmodbus is never called from Swift's cooperative pool.
public final class ModbusBus: Sendable {
    public let name: String
    public let transport: ModbusTransport
    public let timeoutMs: Int
    public let retries: Int
    public let gapMs: Int
    public let rs485Mode: RS485Mode
    public let rtsDelayUs: Int?

    /// Per-request overrides of the bus's timeout and retries (diagnostics).
    public struct Overrides: Sendable, Equatable {
        public var timeoutMs: Int?
        public var retries: Int?
        public init(timeoutMs: Int? = nil, retries: Int? = nil) { self.timeoutMs = timeoutMs; self.retries = retries }
    }
    /// A struct, not a tuple: the FIFO's copies of a tuple went through the runtime's generic
    /// tuple witnesses (metadata lookups on every request).
    private struct Job: Sendable {
        var request: ModbusRequest
        var overrides: Overrides
        var completion: @Sendable (Result<[UInt16], ModbusError>) -> Void
    }
    private struct QueueState: Sendable {
        var jobs: [Job] = []
        var head = 0
        var stopping = false
    }
    private let queue = LockedCondition(QueueState())
    private let directionInUse = LockedCondition<String?>(nil)
    private let thread: PosixThread?

    public init(name: String, transport: ModbusTransport, timeoutMs: Int = 500, retries: Int = 2, gapMs: Int = 0,
                rs485Mode: RS485Mode = .auto, rtsDelayUs: Int? = nil) {
        self.name = name
        self.transport = transport
        self.timeoutMs = timeoutMs
        self.retries = retries
        self.gapMs = gapMs
        self.rs485Mode = rs485Mode
        self.rtsDelayUs = rtsDelayUs
        let queue = self.queue
        let directionInUse = self.directionInUse
        thread = try? PosixThread.start {
            let connection = ModbusConnection(busName: name, transport: transport, timeoutMs: timeoutMs,
                                              retries: retries, gapMs: gapMs, rs485Mode: rs485Mode, rtsDelayUs: rtsDelayUs)
            ModbusBus.serve(queue: queue, connection: connection, direction: directionInUse)
        }
    }

    public convenience init(_ config: BusConfig) {
        self.init(name: config.name, transport: ModbusTransport(config.kind), timeoutMs: Int(config.timeoutMs),
                  retries: config.retries, gapMs: Int(config.gapMs), rs485Mode: config.rs485Mode, rtsDelayUs: config.rtsDelayUs)
    }

    /// How RS-485 direction is switched on the open connection ("kernel", "rts-up (user space,
    /// N us)", ...); nil without RS-485 direction control or while not connected.
    public var direction: String? { directionInUse.withLock { $0 } }

    deinit { stop() }

    /// Queues a request; `completion` runs on the bus thread (keep it short, don't block it).
    /// After `stop()` the completion is called at once with a `.stopped` error.
    public func submit(_ request: ModbusRequest, overrides: Overrides = Overrides(),
                       completion: @escaping @Sendable (Result<[UInt16], ModbusError>) -> Void) {
        let accepted = queue.withLock { state -> Bool in
            if state.stopping || thread == nil { return false }
            state.jobs.append(Job(request: request, overrides: overrides, completion: completion))
            return true
        }
        if !accepted { completion(.failure(stoppedError(request))) }
    }

    /// Runs a request and waits for its result. Must not be called from the bus thread
    /// (e.g. from a completion handler): that would wait forever, so it traps instead.
    public func perform(_ request: ModbusRequest, overrides: Overrides = Overrides()) -> Result<[UInt16], ModbusError> {
        if let thread { precondition(!thread.isCurrent, "ModbusBus.perform called on the bus thread") }
        let slot = LockedCondition<Result<[UInt16], ModbusError>?>(nil)
        submit(request, overrides: overrides) { result in slot.withLock { $0 = result } }
        return slot.wait { $0 }!
    }

    /// True when called on this bus's own thread (e.g. from a completion handler).
    public var isOnBusThread: Bool { thread?.isCurrent ?? false }

    /// Convenience: reads registers and waits.
    public func read(table: RegisterTable, address: Int, count: Int, unit: Int, deviceName: String? = nil) -> Result<[UInt16], ModbusError> {
        perform(.read(table: table, address: address, count: count, unit: unit, deviceName: deviceName ?? name))
    }

    /// Convenience: writes holding registers and waits.
    public func write(address: Int, values: [UInt16], unit: Int, deviceName: String? = nil) -> Result<Void, ModbusError> {
        perform(.write(address: address, values: values, unit: unit, deviceName: deviceName ?? name)).map { _ in () }
    }

    /// Finishes the requests already queued, then ends the thread and closes the connection.
    /// Idempotent.
    public func stop() {
        let first = queue.withLock { state -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        if first, let thread { thread.join() }
    }

    private func stoppedError(_ request: ModbusRequest) -> ModbusError {
        let (device, unit, function, address, count): (String, Int, String, Int, Int)
        switch request {
        case let .read(table, a, c, u, d):
            (device, unit, function, address, count) = (d, u, table == .holding ? "read holding registers" : "read input registers", a, c)
        case let .write(a, v, u, d), let .writeMultiple(a, v, u, d):
            (device, unit, function, address, count) = (d, u, "write holding registers", a, v.count)
        }
        return ModbusError(code: 0, kind: .stopped, device: device, bus: name, unit: unit, function: function,
                           address: address, count: count, message: "bus \(name) is stopped")
    }

    private static func serve(queue: LockedCondition<QueueState>, connection: ModbusConnection,
                              direction: LockedCondition<String?>) {
        var published: String?
        while true {
            let next: Job? = queue.wait { state -> Job?? in
                if state.head < state.jobs.count {
                    let job = state.jobs[state.head]
                    state.head += 1
                    if state.head > 64 && state.head * 2 > state.jobs.count {
                        state.jobs.removeFirst(state.head)
                        state.head = 0
                    }
                    return .some(job)
                }
                return state.stopping ? .some(nil) : nil
            }!
            guard let job = next else { break }
            connection.overrideTimeoutMs = job.overrides.timeoutMs
            connection.overrideRetries = job.overrides.retries
            let result = execute(job.request, on: connection)
            connection.overrideTimeoutMs = nil
            connection.overrideRetries = nil
            // Published only when it changes: no lock per transaction on the poll path.
            if connection.direction != published {
                published = connection.direction
                direction.withLock { $0 = published }
            }
            job.completion(result)
        }
        connection.close()
    }

    private static func execute(_ request: ModbusRequest, on connection: ModbusConnection) -> Result<[UInt16], ModbusError> {
        do throws(ModbusError) {
            switch request {
            case let .read(table, address, count, unit, device):
                return .success(try connection.readRegisters(table: table, address: address, count: count, unit: unit, device: device))
            case let .write(address, values, unit, device):
                try connection.writeRegisters(address: address, values: values, unit: unit, device: device)
                return .success(values)
            case let .writeMultiple(address, values, unit, device):
                try connection.writeRegisters(address: address, values: values, unit: unit, device: device, forceMultiple: true)
                return .success(values)
            }
        } catch {
            return .failure(error)
        }
    }
}
