import CModbus
import GridletCore
import Glibc
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

    /// Parses `none`, `no-answer`, `exception:N`, `slow:MS` or `slow:MSms`.
    public init?(_ text: String) {
        let t = text.split(separator: "@").first.map(String.init) ?? text
        switch t {
        case "none", "": self = .none
        case "no-answer": self = .noAnswer
        default:
            if t.hasPrefix("exception:"), let c = Int(t.dropFirst(10)), (1...11).contains(c) { self = .exception(c); return }
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
///   at >= 6 A the charger "charges" with `setpoint * 230 V * phases`.
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
    public let writeLog: String?
    public let updateIntervalMs: Int
    public let transport: SimulatorTransport
    /// SunSpec profiles: the meter model served (201-204, 211-214) and the marker's address.
    public let sunspecModel: Int
    public let sunspecBase: Int
    /// Points served as SunSpec "not implemented" (SunSpec profiles only).
    public let unimplemented: Set<String>
    /// A file holding a fault (`none`, `no-answer`, `exception:2`, `slow:300ms`, optionally
    /// `@UNIT`); re-read about every 100 ms, so a test can change the fault at run time.
    public let faultFile: String?

    private struct Shared: Sendable {
        var values: [String: Double] = [:]
        var writes: [ModbusWrite] = []
        var thread: pthread_t?
        var fault: SimulatorFault = .none
        var faultUnit: Int?
        var requests = 0
    }
    private let shared = Mutex(Shared())
    private let stopRequested = Atomic<Bool>(false)

    public convenience init(profile: DeviceProfile, host: String = "127.0.0.1", port: Int, frozen: Bool = false, voltage: Double? = nil,
                            writeLog: String? = nil, updateIntervalMs: Int = 200, sunspecModel: Int = 203, sunspecBase: Int = 40000,
                            unimplemented: Set<String> = [], fault: SimulatorFault = .none, faultUnit: Int? = nil, faultFile: String? = nil) {
        self.init(profile: profile, transport: .tcp(host: host, port: port), frozen: frozen, voltage: voltage, writeLog: writeLog,
                  updateIntervalMs: updateIntervalMs, sunspecModel: sunspecModel, sunspecBase: sunspecBase,
                  unimplemented: unimplemented, fault: fault, faultUnit: faultUnit, faultFile: faultFile)
    }

    public init(profile: DeviceProfile, transport: SimulatorTransport, frozen: Bool = false, voltage: Double? = nil,
                writeLog: String? = nil, updateIntervalMs: Int = 200, sunspecModel: Int = 203, sunspecBase: Int = 40000,
                unimplemented: Set<String> = [], fault: SimulatorFault = .none, faultUnit: Int? = nil, faultFile: String? = nil) {
        self.profile = profile
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
        guard let tid = PosixThread.start({ [self] in
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
            pthread_join(tid, nil)
            throw e
        }
    }

    /// Stops serving, closes the listening and client sockets and joins the thread. Idempotent.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        let tid = shared.withLock { state -> pthread_t? in
            defer { state.thread = nil }
            return state.thread
        }
        if let tid { PosixThread.joinOrDetach(tid) }
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

    fileprivate func publish(_ values: [String: Double]) { shared.withLock { $0.values = values } }
    fileprivate func record(_ write: ModbusWrite) { shared.withLock { $0.writes.append(write) } }
    fileprivate func faultFor(unit: Int) -> SimulatorFault {
        shared.withLock { state in
            state.requests += 1
            if let u = state.faultUnit, u != unit { return .none }
            return state.fault
        }
    }

    fileprivate func listenError(code: Int32, message: String? = nil) -> ModbusError {
        let place = port == 0 ? host : "\(host):\(port)"
        var e = ModbusError(code: code, device: profile.name, bus: "simulator \(place)", unit: profile.defaultUnit,
                            function: "listen", address: 0, count: 0, timeoutMs: 0)
        e.function = "listen"
        e.message = message.map { "\($0): \(e.message)" } ?? "cannot listen on \(place): \(e.message)"
        e.kind = .connection
        return e
    }
}

/// The server side state: libmodbus context, sockets, register mapping and the simulation.
/// Not Sendable: created and used by exactly one thread (the server thread or the caller of
/// `runForever`).
private final class SimulatorEngine {
    let sim: ModbusSimulator
    let served: DeviceProfile
    var ctx: OpaquePointer?
    var mapping: UnsafeMutablePointer<modbus_mapping_t>?
    var serverFd: Int32 = -1
    var rtuFd: Int32 = -1
    var clients: [Int32] = []
    var log: UnsafeMutablePointer<FILE>?
    var model: SimulationModel
    var lastUpdateMs: Int64 = 0
    var lastFaultCheckMs: Int64 = 0
    var lastFaultText: String?
    var isRTU: Bool { if case .rtu = sim.transport { return true } else { return false } }

    init(_ sim: ModbusSimulator) {
        self.sim = sim
        served = sim.servedProfile
        model = SimulationModel(profile: served, frozen: sim.frozen, voltage: sim.voltage)
    }

    deinit { close() }

    func bind() throws(ModbusError) {
        switch sim.transport {
        case let .tcp(host, port):
            guard let ctx = modbus_new_tcp(host, Int32(port)) else { throw sim.listenError(code: gridlet_errno()) }
            self.ctx = ctx
        case let .rtu(device, baud, parity, dataBits, stopBits, unit):
            let p: CChar = switch parity {
            case .none: CChar(UInt8(ascii: "N"))
            case .even: CChar(UInt8(ascii: "E"))
            case .odd: CChar(UInt8(ascii: "O"))
            }
            guard let ctx = modbus_new_rtu(device, Int32(baud), p, Int32(dataBits), Int32(stopBits)) else {
                throw sim.listenError(code: gridlet_errno())
            }
            self.ctx = ctx
            modbus_set_slave(ctx, Int32(unit))
        }
        guard let ctx else { return }
        guard let mapping = modbus_mapping_new(0, 0, 65536, 65536) else {
            let code = gridlet_errno()
            close()
            throw sim.listenError(code: code, message: "cannot allocate the register map")
        }
        self.mapping = mapping
        if isRTU {
            if modbus_connect(ctx) != 0 {
                let code = gridlet_errno()
                close()
                throw sim.listenError(code: code, message: "cannot open \(sim.host)")
            }
            rtuFd = modbus_get_socket(ctx)
        } else {
            let fd = modbus_tcp_listen(ctx, 16)
            if fd < 0 {
                let code = gridlet_errno()
                close()
                throw sim.listenError(code: code)
            }
            serverFd = fd
        }
        if let path = sim.writeLog {
            guard let f = fopen(path, "a") else {
                let code = gridlet_errno()
                close()
                throw sim.listenError(code: code, message: "cannot open the write log \(path)")
            }
            log = f
        }
        if served.points.contains(where: { $0.scaleFactorAddress != nil }) || sim.profile.sunspec != nil {
            layOutSunSpec(mapping.pointee.tab_registers)
        }
        model.initialiseControl(holding: mapping.pointee.tab_registers)
        lastUpdateMs = Clock.monotonicMs()
        checkFaultFile(force: true)
        refresh(dtSeconds: 0)
    }

    /// "SunS", common model 1, the meter model header and scale factors, the end model.
    private func layOutSunSpec(_ holding: UnsafeMutablePointer<UInt16>) {
        let base = sim.sunspecBase
        holding[base] = SunSpec.marker[0]
        holding[base + 1] = SunSpec.marker[1]
        let common = base + 2
        holding[common] = UInt16(SunSpec.commonModelID)
        holding[common + 1] = UInt16(SunSpec.commonModelLength)
        func putString(_ text: String, at address: Int, registers: Int) {
            var bytes = Array(text.utf8.prefix(registers * 2))
            bytes += [UInt8](repeating: 0, count: registers * 2 - bytes.count)
            for i in 0..<registers { holding[address + i] = UInt16(bytes[2 * i]) << 8 | UInt16(bytes[2 * i + 1]) }
        }
        putString("gridlet", at: common + 2, registers: 16)
        putString("simulated meter \(sim.sunspecModel)", at: common + 18, registers: 16)
        putString("", at: common + 34, registers: 8)
        putString(gridletSimulatorVersion, at: common + 42, registers: 8)
        putString("SIM0001", at: common + 50, registers: 16)
        holding[common + 66] = UInt16(sim.profile.defaultUnit)
        let m = sim.sunspecModelAddress
        let length = SunSpec.length(ofModel: sim.sunspecModel) ?? 0
        holding[m] = UInt16(sim.sunspecModel)
        holding[m + 1] = UInt16(length)
        if SunSpec.intMeterModels.contains(sim.sunspecModel) {
            // A_SF, V_SF, Hz_SF, W_SF, PF_SF, TotWh_SF
            let sfs: [Int16] = [-2, -1, -2, 0, -3, 0]
            for (off, sf) in zip(SunSpec.scaleFactorOffsets, sfs) { holding[m + off] = UInt16(bitPattern: sf) }
        }
        holding[m + 2 + length] = SunSpec.endID
        holding[m + 3 + length] = 0
    }

    private func checkFaultFile(force: Bool = false) {
        guard let path = sim.faultFile else { return }
        let now = Clock.monotonicMs()
        guard force || now - lastFaultCheckMs >= 100 else { return }
        lastFaultCheckMs = now
        var text = "none"
        if let f = fopen(path, "r") {
            var buf = [CChar](repeating: 0, count: 128)
            if fgets(&buf, 128, f) != nil {
                text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    .split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\r" }).first.map(String.init) ?? "none"
            }
            fclose(f)
        }
        guard text != lastFaultText else { return }
        lastFaultText = text
        let parts = text.split(separator: "@")
        let unit = parts.count > 1 ? Int(parts[1]) : nil
        if let fault = SimulatorFault(text) { sim.setFault(fault, unit: unit) }
    }

    /// Replaces the RTU context by a fresh one on the same device. false when that fails.
    private func reopenRTU() -> Bool {
        guard case let .rtu(device, baud, parity, dataBits, stopBits, unit) = sim.transport, let old = ctx else { return false }
        modbus_close(old)
        modbus_free(old)
        ctx = nil
        rtuFd = -1
        let p: CChar = switch parity {
        case .none: CChar(UInt8(ascii: "N"))
        case .even: CChar(UInt8(ascii: "E"))
        case .odd: CChar(UInt8(ascii: "O"))
        }
        guard let fresh = modbus_new_rtu(device, Int32(baud), p, Int32(dataBits), Int32(stopBits)) else { return false }
        modbus_set_slave(fresh, Int32(unit))
        guard modbus_connect(fresh) == 0 else { modbus_free(fresh); return false }
        ctx = fresh
        rtuFd = modbus_get_socket(fresh)
        return true
    }

    func serve(until shouldStop: () -> Bool) {
        guard ctx != nil, let mapping else { return }
        let header = Int(modbus_get_header_length(ctx))
        var query = [UInt8](repeating: 0, count: Int(gridlet_MODBUS_TCP_MAX_ADU_LENGTH))
        while !shouldStop() {
            guard let ctx = self.ctx else { return }
            var fds: [pollfd]
            if isRTU {
                fds = [pollfd(fd: rtuFd, events: Int16(POLLIN), revents: 0)]
            } else {
                fds = [pollfd(fd: serverFd, events: Int16(POLLIN), revents: 0)]
                for c in clients { fds.append(pollfd(fd: c, events: Int16(POLLIN), revents: 0)) }
            }
            let n = poll(&fds, nfds_t(fds.count), 100)
            if n > 0 {
                if isRTU {
                    if fds[0].revents != 0 {
                        let rc = query.withUnsafeMutableBufferPointer { modbus_receive(ctx, $0.baseAddress) }
                        if rc > 0 {
                            answer(ctx, mapping, query, length: Int(rc), header: header)
                        } else if rc == 0 {
                            // A request for another unit: libmodbus then also drops the *next*
                            // frame (it expects the other unit's answer). A silent unit never
                            // answers, so start with a fresh context instead.
                            if !reopenRTU() { return }
                            continue
                        } else {
                            modbus_flush(ctx)
                            if fds[0].revents & Int16(POLLHUP | POLLERR) != 0 { usleep(50_000) }
                        }
                    }
                } else {
                    if fds[0].revents & Int16(POLLIN) != 0 {
                        let c = accept(serverFd, nil, nil)
                        if c >= 0 { clients.append(c) }
                    }
                    var closed: Set<Int32> = []
                    for p in fds.dropFirst() where p.revents != 0 {
                        modbus_set_socket(ctx, p.fd)
                        let rc = query.withUnsafeMutableBufferPointer { modbus_receive(ctx, $0.baseAddress) }
                        if rc > 0 {
                            answer(ctx, mapping, query, length: Int(rc), header: header)
                        } else if rc < 0 {
                            Glibc.close(p.fd)
                            closed.insert(p.fd)
                        }
                    }
                    if !closed.isEmpty { clients.removeAll { closed.contains($0) } }
                }
            }
            checkFaultFile()
            let now = Clock.monotonicMs()
            if now - lastUpdateMs >= Int64(sim.updateIntervalMs) {
                let dt = Double(now - lastUpdateMs) / 1000
                lastUpdateMs = now
                refresh(dtSeconds: sim.frozen ? 0 : dt)
            }
        }
    }

    /// Replies to one request, applying the injected fault.
    private func answer(_ ctx: OpaquePointer, _ mapping: UnsafeMutablePointer<modbus_mapping_t>, _ query: [UInt8],
                        length rc: Int, header: Int) {
        let unit = header >= 1 && rc > header - 1 ? Int(query[header - 1]) : 0
        switch sim.faultFor(unit: unit) {
        case .noAnswer:
            return
        case let .exception(code):
            _ = query.withUnsafeBufferPointer { modbus_reply_exception(ctx, $0.baseAddress, UInt32(code)) }
            return
        case let .slow(ms):
            Clock.sleepMs(Int64(ms))
        case .none:
            break
        }
        let write = parseWrite(query, length: rc, header: header)
        // Recorded before the reply, so a client that saw its write acknowledged finds it in `writes`.
        if let write { sim.record(write) }
        _ = query.withUnsafeBufferPointer { modbus_reply(ctx, $0.baseAddress, Int32(rc), mapping) }
        if let write { handle(write) }
    }

    func close() {
        for c in clients { Glibc.close(c) }
        clients = []
        if serverFd >= 0 { Glibc.close(serverFd); serverFd = -1 }
        if let ctx {
            if isRTU { if rtuFd >= 0 { modbus_close(ctx) } } else { modbus_set_socket(ctx, -1) }
            modbus_free(ctx)
        }
        rtuFd = -1
        ctx = nil
        if let mapping { modbus_mapping_free(mapping) }
        mapping = nil
        if let log { fclose(log) }
        log = nil
    }

    /// Extracts fc 6 / fc 16 writes from a request (`header`: 7 for TCP's MBAP, 1 for RTU's unit byte).
    private func parseWrite(_ q: [UInt8], length: Int, header h: Int) -> ModbusWrite? {
        guard length >= h + 5 else { return nil }
        let unit = Int(q[h - 1])
        let fc = q[h]
        let address = Int(q[h + 1]) << 8 | Int(q[h + 2])
        func word(_ i: Int) -> UInt16 { UInt16(q[i]) << 8 | UInt16(q[i + 1]) }
        switch fc {
        case 6:
            return ModbusWrite(timestampMs: Clock.wallMs(), unit: unit, address: address, values: [word(h + 3)])
        case 16:
            let count = Int(word(h + 3))
            guard length >= h + 6 + 2 * count, (1...123).contains(count), address + count <= 65536 else { return nil }
            let values = (0..<count).map { word(h + 6 + 2 * $0) }
            return ModbusWrite(timestampMs: Clock.wallMs(), unit: unit, address: address, values: values)
        default:
            return nil
        }
    }

    private func handle(_ w: ModbusWrite) {
        if let log {
            let line = "{\"ts_ms\":\(w.timestampMs),\"unit\":\(w.unit),\"address\":\(w.address),\"values\":[\(w.values.map(String.init).joined(separator: ","))]}\n"
            fputs(line, log)
            fflush(log)
        }
        // Setpoints act at once (also when frozen): the charger follows its register.
        refresh(dtSeconds: 0)
    }

    /// Advances the simulation, writes every point into the register map and publishes what
    /// the registers now decode to (points served as "not implemented" are not published).
    private func refresh(dtSeconds: Double) {
        guard let mapping else { return }
        let holding = mapping.pointee.tab_registers!
        let input = mapping.pointee.tab_input_registers!
        model.readControl(holding: holding)
        let physical = model.step(dtSeconds: dtSeconds)
        var published: [String: Double] = [:]
        for p in served.points {
            let base = p.table == .holding ? holding : input
            let sf = p.scaleFactorAddress.map { base[$0] }
            let words: [UInt16]
            if p.notImplementedSentinels && sim.unimplemented.contains(p.name) {
                words = PointCodec.notImplemented(p)
            } else {
                let value = physical[p.name] ?? SimulationModel.fallback(for: p)
                words = PointCodec.encode(p, value, sf: sf)
            }
            for (i, w) in words.enumerated() { base[p.address + i] = w }
            let regs = (0..<words.count).map { base[p.address + $0] }
            if let v = PointCodec.decode(p, regs[...], sf: sf) { published[p.name] = v }
        }
        sim.publish(published)
    }
}

let gridletSimulatorVersion = "sim-1"

/// The physics of the simulated device, by canonical point name.
private struct SimulationModel {
    let profile: DeviceProfile
    let frozen: Bool
    var t: Double = 0
    var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    var importWh: Double
    var exportWh: Double
    var sessionWh: Double = 0
    var setpointA: Double = 0
    let phases = 3

    let voltage: Double?

    init(profile: DeviceProfile, frozen: Bool, voltage: Double? = nil) {
        self.voltage = voltage
        self.profile = profile
        self.frozen = frozen
        if profile.kind == .meter {
            importWh = 12_345_678.9
            exportWh = 1_234_567.8
        } else {
            importWh = 4_567_890
            exportWh = 0
            sessionWh = 3_217
        }
    }

    mutating func initialiseControl(holding: UnsafeMutablePointer<UInt16>) {
        guard let c = profile.control else { return }
        func put(_ r: ProfileRegister?, _ v: Double) {
            guard let r else { return }
            for (i, w) in RegisterCodec.encode(v, type: r.type, order: .hiFirst, scale: r.scale).enumerated() { holding[r.address + i] = w }
        }
        put(c.failsafeCurrent, 10)
        put(c.failsafeTimeout, 60)
        put(c.chargingCurrent, 16)
    }

    mutating func readControl(holding: UnsafeMutablePointer<UInt16>) {
        guard let r = profile.control?.chargingCurrent else { return }
        let regs = (0..<r.type.registerCount).map { holding[r.address + $0] }
        setpointA = RegisterCodec.decode(regs, type: r.type, order: .hiFirst, scale: r.scale) ?? 0
    }

    /// Uniform noise in -amplitude...amplitude (0 when frozen).
    mutating func noise(_ amplitude: Double) -> Double {
        if frozen { return 0 }
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return (Double(rng >> 11) / Double(1 << 53) * 2 - 1) * amplitude
    }

    mutating func step(dtSeconds dt: Double) -> [String: Double] {
        t += dt
        var v: [String: Double] = [:]
        let base = voltage.map { [$0, $0, $0] } ?? [231.37, 229.81, 230.52]
        let volts = [base[0] + noise(0.6), base[1] + noise(0.6), base[2] + noise(0.6)]
        switch profile.kind {
        case .meter:
            let swing = frozen ? 0 : 700 * sin(t / 9)
            let phasePower = [1012.37 + swing / 3 + noise(25), 987.61 + swing / 3 + noise(25), 1043.18 + swing / 3 + noise(25)]
            let total = phasePower.reduce(0, +)
            for i in 0..<3 {
                v["voltage_l\(i + 1)_v"] = volts[i]
                v["power_l\(i + 1)_w"] = phasePower[i]
                v["current_l\(i + 1)_a"] = phasePower[i] / volts[i]
            }
            importWh += max(total, 0) * dt / 3600
            exportWh += max(-total, 0) * dt / 3600
            v["power_w"] = total
            v["frequency_hz"] = 49.987 + noise(0.02)
            v["import_wh"] = importWh
            v["export_wh"] = exportWh
        case .charger:
            let charging = setpointA >= 6
            let amps = charging ? setpointA : 0
            var total = 0.0
            for i in 0..<3 {
                let current = charging ? max(0, amps - 0.12 + noise(0.05)) : 0
                v["voltage_l\(i + 1)_v"] = volts[i]
                v["current_l\(i + 1)_a"] = frozen ? amps : current
                total += frozen ? 0 : current * volts[i]
            }
            let power = frozen || !charging ? amps * (voltage ?? 230) * Double(phases) : total
            importWh += power * dt / 3600
            sessionWh += power * dt / 3600
            v["power_w"] = power
            v["charging"] = charging ? 1 : 0
            v["vehicle_connected"] = 1
            v["cable_state"] = 3
            v["charge_point_state"] = charging ? 2 : 1
            v["number_of_phases"] = Double(phases)
            v["setpoint_a"] = setpointA
            v["import_wh"] = importWh
            v["energy_wh"] = importWh
            v["session_energy_wh"] = sessionWh
            v["frequency_hz"] = 49.987 + noise(0.02)
        }
        return v
    }

    /// A plausible constant for points the model does not know.
    static func fallback(for p: ProfilePoint) -> Double {
        switch p.unit {
        case "V": return 230.4
        case "A": return 1.234
        case "W": return 123.4
        case "Hz": return 50.01
        case "Wh": return 98_765
        default: return 1
        }
    }
}
