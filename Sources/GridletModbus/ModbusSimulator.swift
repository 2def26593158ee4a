import GridletCore
import Glibc
import GridletSys
import Synchronization

/// A write request the simulator received (fc 6 or fc 16).
public struct ModbusWrite: Sendable, Equatable {
    /// Wall-clock time in milliseconds since the Unix epoch.
    public var timestampMs: Int64
    public var unit: Int
    public var address: Int
    public var values: [UInt16]
}

/// A fault the simulator injects on request.
public enum SimulatorFault: Sendable, Equatable, CustomStringConvertible {
    case none
    /// Requests are received and dropped: the client times out.
    case noAnswer
    /// Every request is answered with this Modbus exception code (1...11).
    case exception(Int)
    /// Answers after this many milliseconds.
    case slow(ms: Int)
    /// The device answers, and says it is in fault: the profile's `control.fault` point serves
    /// this value (nil: the first value the profile lists as a fault, else 1).
    case device(Int?)

    /// Parses `none`, `no-answer`, `exception:N`, `slow:MS`, `slow:MSms`, `device` or `device:VALUE`.
    public init?(_ text: String) {
        let t = text.split(separator: "@").first.map(String.init) ?? text
        switch t {
        case "none", "": self = .none
        case "no-answer": self = .noAnswer
        case "device": self = .device(nil)
        default:
            if t.hasPrefix("exception:"), let c = Int(t.dropFirst(10)), (1...11).contains(c) { self = .exception(c); return }
            if t.hasPrefix("device:"), let v = YAMLScalar.int(String(t.dropFirst(7))), (-2_147_483_648...4_294_967_295).contains(v) {
                self = .device(v)
                return
            }
            if t.hasPrefix("slow:") {
                var ms = t.dropFirst(5)
                if ms.hasSuffix("ms") { ms = ms.dropLast(2) }
                if let v = Int(ms), (0...60_000).contains(v) { self = .slow(ms: v); return }
            }
            return nil
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .noAnswer: return "no-answer"
        case let .exception(c): return "exception:\(c)"
        case let .slow(ms): return "slow:\(ms)ms"
        case let .device(v): return v.map { "device:\($0)" } ?? "device"
        }
    }
}

/// Where the simulator serves.
public enum SimulatorTransport: Sendable, Equatable {
    case tcp(host: String, port: Int)
    /// Serves Modbus RTU on a serial device (e.g. one end of a socat pty pair), answering only `unit`.
    case rtu(device: String, baud: Int, parity: Parity, dataBits: Int, stopBits: Int, unit: Int)
}

/// Serves a device profile's register map over Modbus TCP (libmodbus server side), with
/// plausible values that change over time, for tests, demos and `gridlet simulate`.
///
/// - Meters: power around 2–4 kW, voltages ~230 V, currents consistent with power, ~50 Hz,
///   import energy integrating power.
/// - Chargers: the charging current setpoint register (e.g. 5004) keeps what was written;
///   at >= 6 A the charger "charges" with `setpoint * 230 V * phases`. The profile's fault point
///   (`control.fault`) serves a healthy value, or a fault with `SimulatorFault.device`.
/// - `frozen`: no noise and no drift; values only change when a setpoint is written, so tests
///   can compare exactly with `currentValues()`.
///
/// Any unit id is answered; all 65536 holding and input registers are mapped (unmapped ones read 0).
/// Every write is kept in `writes` and, with `writeLog`, appended as a JSON line.
public final class ModbusSimulator: Sendable {
    public let profile: DeviceProfile
    public let host: String
    public let port: Int
    public let frozen: Bool
    /// When set, every phase voltage is this value (plus noise unless frozen): a "230 V charger".
    public let voltage: Double?
    /// Percent by which every phase voltage rises in every odd second of the monotonic clock and
    /// falls back in the even ones (0 = none), also when frozen: a mains voltage that moves.
    public let voltageWobblePercent: Double
    public let writeLog: String?
    public let updateIntervalMs: Int
    public let transport: SimulatorTransport
    /// SunSpec profiles: the meter model served (201-204, 211-214) and the marker's address.
    public let sunspecModel: Int
    public let sunspecBase: Int
    /// Points served as SunSpec "not implemented" (SunSpec profiles only).
    public let unimplemented: Set<String>
    /// A file holding a fault (`none`, `no-answer`, `exception:2`, `slow:300ms`, `device:8`,
    /// optionally `@UNIT`); re-read about every 100 ms, so a test can change the fault at run time.
    public let faultFile: String?
    /// The battery behind a bidirectional profile (`power:`); unused otherwise.
    public let battery: SimulatedBattery

    private struct Shared: Sendable {
        var values: [String: Double] = [:]
        var writes: [ModbusWrite] = []
        var thread: PosixThread?
        var fault: SimulatorFault = .none
        var faultUnit: Int?
        var requests = 0
    }
    private let shared = Mutex(Shared())
    private let stopRequested = Atomic<Bool>(false)

    public convenience init(profile: DeviceProfile, host: String = "127.0.0.1", port: Int, frozen: Bool = false, voltage: Double? = nil,
                            voltageWobblePercent: Double = 0, writeLog: String? = nil, updateIntervalMs: Int = 200, sunspecModel: Int = 203, sunspecBase: Int = 40000,
                            unimplemented: Set<String> = [], fault: SimulatorFault = .none, faultUnit: Int? = nil, faultFile: String? = nil,
                            battery: SimulatedBattery = SimulatedBattery()) {
        self.init(profile: profile, transport: .tcp(host: host, port: port), frozen: frozen, voltage: voltage,
                  voltageWobblePercent: voltageWobblePercent, writeLog: writeLog,
                  updateIntervalMs: updateIntervalMs, sunspecModel: sunspecModel, sunspecBase: sunspecBase,
                  unimplemented: unimplemented, fault: fault, faultUnit: faultUnit, faultFile: faultFile, battery: battery)
    }

    public init(profile: DeviceProfile, transport: SimulatorTransport, frozen: Bool = false, voltage: Double? = nil,
                voltageWobblePercent: Double = 0, writeLog: String? = nil, updateIntervalMs: Int = 200, sunspecModel: Int = 203, sunspecBase: Int = 40000,
                unimplemented: Set<String> = [], fault: SimulatorFault = .none, faultUnit: Int? = nil, faultFile: String? = nil,
                battery: SimulatedBattery = SimulatedBattery()) {
        self.profile = profile
        self.battery = battery
        self.transport = transport
        switch transport {
        case let .tcp(h, p): host = h; port = p
        case let .rtu(device, _, _, _, _, _): host = device; port = 0
        }
        self.sunspecModel = sunspecModel
        self.sunspecBase = sunspecBase
        self.unimplemented = unimplemented
        self.faultFile = faultFile
        shared.withLock { $0.fault = fault; $0.faultUnit = faultUnit }
        self.frozen = frozen
        self.voltage = voltage
        self.voltageWobblePercent = voltageWobblePercent
        self.writeLog = writeLog
        self.updateIntervalMs = max(10, updateIntervalMs)
    }

    deinit { stop() }

    /// What the simulator serves right now: point name -> value as decoded from its registers.
    public func currentValues() -> [String: Double] { shared.withLock { $0.values } }

    /// Writes received so far, oldest first.
    public var writes: [ModbusWrite] { shared.withLock { $0.writes } }

    public var isRunning: Bool { shared.withLock { $0.thread != nil } }

    /// Injects a fault from now on (for `unit` only, or for every unit when nil).
    public func setFault(_ fault: SimulatorFault, unit: Int? = nil) {
        shared.withLock { $0.fault = fault; $0.faultUnit = unit }
    }

    public var fault: SimulatorFault { shared.withLock { $0.fault } }

    /// Requests received so far (answered or not).
    public var requestCount: Int { shared.withLock { $0.requests } }

    /// The profile as served: for SunSpec profiles with absolute addresses of the served model.
    public var servedProfile: DeviceProfile {
        guard profile.sunspec != nil else { return profile }
        return SunSpec.resolve(profile, model: sunspecModel, modelAddress: sunspecModelAddress) ?? profile
    }

    /// Address of the served SunSpec meter model's ID register (after "SunS" and model 1).
    public var sunspecModelAddress: Int { sunspecBase + 2 + 2 + SunSpec.commonModelLength }

    /// Binds `host:port` and serves on a dedicated thread. Throws when the port cannot be bound.
    public func start() throws(ModbusError) {
        if isRunning { return }
        stopRequested.store(false, ordering: .sequentiallyConsistent)
        let started = LockedCondition<Result<Void, ModbusError>?>(nil)
        guard let tid = try? PosixThread.start({ [self] in
            let engine = SimulatorEngine(self)
            do throws(ModbusError) {
                try engine.bind()
            } catch {
                started.withLock { $0 = .failure(error) }
                return
            }
            started.withLock { $0 = .success(()) }
            engine.serve { self.stopRequested.load(ordering: .sequentiallyConsistent) }
            engine.close()
        }) else {
            throw listenError(code: EAGAIN, message: "cannot start the simulator thread")
        }
        let result = started.wait { $0 }!
        switch result {
        case .success:
            shared.withLock { $0.thread = tid }
        case let .failure(e):
            tid.join()
            throw e
        }
    }

    /// Stops serving, closes the listening and client sockets and joins the thread. Idempotent.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        let tid = shared.withLock { state -> PosixThread? in
            defer { state.thread = nil }
            return state.thread
        }
        if let tid { tid.join() }
    }

    /// Serves on the calling thread until `shouldStop()` returns true (checked about every 100 ms)
    /// or `stop()` is called from another thread.
    public func runForever(until shouldStop: () -> Bool) throws(ModbusError) {
        stopRequested.store(false, ordering: .sequentiallyConsistent)
        let engine = SimulatorEngine(self)
        try engine.bind()
        engine.serve { shouldStop() || self.stopRequested.load(ordering: .sequentiallyConsistent) }
        engine.close()
    }

    // MARK: - called by the engine

    func publish(_ values: [String: Double]) { shared.withLock { $0.values = values } }
    func record(_ write: ModbusWrite) { shared.withLock { $0.writes.append(write) } }
    func faultFor(unit: Int) -> SimulatorFault {
        shared.withLock { state in
            state.requests += 1
            if let u = state.faultUnit, u != unit { return .none }
            return state.fault
        }
    }

    func listenError(code: Int32, message: String? = nil) -> ModbusError {
        let place = port == 0 ? host : "\(host):\(port)"
        var e = ModbusError(code: code, device: profile.name, bus: "simulator \(place)", unit: profile.defaultUnit,
                            function: "listen", address: 0, count: 0, timeoutMs: 0)
        e.function = "listen"
        e.message = message.map { "\($0): \(e.message)" } ?? "cannot listen on \(place): \(e.message)"
        e.kind = .connection
        return e
    }
}
