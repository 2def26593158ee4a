import CModbus
import GridletCore
import Glibc
import GridletSys

let gridletSimulatorVersion = "sim-1"

/// The server side state: libmodbus context, sockets, register mapping and the simulation.
/// Not Sendable: created and used by exactly one thread (the server thread or the caller of
/// `runForever`).
final class SimulatorEngine {
    let sim: ModbusSimulator
    let served: DeviceProfile
    var ctx: OpaquePointer?
    var mapping: UnsafeMutablePointer<modbus_mapping_t>?
    var serverFd: Int32 = -1
    var rtuFd: Int32 = -1
    var clients: [Int32] = []
    var log: UnsafeMutablePointer<FILE>?
    var model: SimulationModel
    /// Set for profiles with a `power:` section (bidirectional devices).
    var bidirectional: BidirectionalModel?
    var controlled: Set<Int> = []
    var lastUpdateMs: Int64 = 0
    var lastFaultCheckMs: Int64 = 0
    var lastFaultText: String?
    var isRTU: Bool { if case .rtu = sim.transport { return true } else { return false } }

    init(_ sim: ModbusSimulator) {
        self.sim = sim
        served = sim.servedProfile
        model = SimulationModel(profile: served, frozen: sim.frozen, voltage: sim.voltage)
        if let power = served.power {
            bidirectional = BidirectionalModel(control: power, battery: sim.battery, nowMs: SystemClock.monoMs())
            controlled = bidirectional?.controlledAddresses ?? []
        }
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
        if sim.profile.sunspec != nil || (served.layout.isEmpty && served.points.contains(where: { $0.scaleFactorAddress != nil })) {
            layOutSunSpec(mapping.pointee.tab_registers)
        }
        for (address, value) in served.layout { mapping.pointee.tab_registers[address] = value }
        model.initialiseControl(holding: mapping.pointee.tab_registers)
        bidirectional?.capture(mapping.pointee.tab_registers)
        lastUpdateMs = SystemClock.monoMs()
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
        let now = SystemClock.monoMs()
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
            let now = SystemClock.monoMs()
            if now - lastUpdateMs >= Int64(sim.updateIntervalMs) { advance(now: now) }
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
            SystemClock.sleepMs(Int64(ms))
        case .none, .device:
            break   // a device fault is in the registers (see `refresh`)
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
            return ModbusWrite(timestampMs: SystemClock.wallMs(), unit: unit, address: address, values: [word(h + 3)])
        case 16:
            let count = Int(word(h + 3))
            guard length >= h + 6 + 2 * count, (1...123).contains(count), address + count <= 65536 else { return nil }
            let values = (0..<count).map { word(h + 6 + 2 * $0) }
            return ModbusWrite(timestampMs: SystemClock.wallMs(), unit: unit, address: address, values: values)
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
        // Setpoints act at once (also when frozen): the charger follows its register. A
        // bidirectional device first runs the time since the last update at its old power.
        if bidirectional != nil {
            bidirectional?.wrote(nowMs: SystemClock.monoMs())
            advance(now: SystemClock.monoMs())
        } else {
            refresh(dtSeconds: 0)
        }
    }

    /// Runs the simulation up to `now` (monotonic ms). Frozen meters and chargers stand still; a
    /// bidirectional device's battery always moves with its power (its state of charge is the point).
    private func advance(now: Int64) {
        let dt = Double(now - lastUpdateMs) / 1000
        lastUpdateMs = now
        refresh(dtSeconds: sim.frozen ? 0 : dt, elapsed: dt, nowMs: now)
    }

    /// Advances the simulation, writes every point into the register map and publishes what
    /// the registers now decode to (points served as "not implemented" are not published).
    private func refresh(dtSeconds: Double, elapsed: Double = 0, nowMs: Int64 = SystemClock.monoMs()) {
        guard let mapping else { return }
        let holding = mapping.pointee.tab_registers!
        let input = mapping.pointee.tab_input_registers!
        model.readControl(holding: holding)
        model.play(sim.fault)
        if sim.voltageWobblePercent != 0 {
            model.voltageFactor = (SystemClock.monoMs() / 1000) % 2 == 1 ? 1 + sim.voltageWobblePercent / 100 : 1
        }
        let physical: [String: Double]
        if var b = bidirectional {
            if b.checkReversion(holding, nowMs: nowMs) {
                try? FileDescriptor.standardError.writeAll(Array("<5>gridlet simulate: no write for the programmed reversion time (\(JSONValue.format(b.timeoutS(holding))) s): reverted\n".utf8))
            }
            physical = b.step(dtSeconds: elapsed, holding: holding, nowMs: nowMs, voltage: sim.voltage ?? 230)
            bidirectional = b
        } else {
            physical = model.step(dtSeconds: dtSeconds)
        }
        var published: [String: Double] = [:]
        for p in served.points {
            let base = p.table == .holding ? holding : input
            let sf = p.scaleFactorAddress.map { base[$0] }
            let words: [UInt16]
            if p.table == .holding, (p.address..<(p.address + p.type.registerCount)).contains(where: controlled.contains) {
                // A register the controller writes: served as written.
                words = (0..<p.type.registerCount).map { base[p.address + $0] }
            } else if p.notImplementedSentinels && sim.unimplemented.contains(p.name) {
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
