import CGridletSys
import CModbus
import GridletCore
import Glibc
import GridletSys

/// Where a bus is.
public enum ModbusTransport: Sendable, Equatable {
    case tcp(host: String, port: Int)
    case rtu(device: String, baud: Int, parity: Parity, dataBits: Int, stopBits: Int, rs485: Bool)
    /// RTU frames over a raw TCP connection (see `RTUOverTCPBridge`).
    case rtuOverTCP(host: String, port: Int)

    public init(_ kind: BusConfig.Kind) {
        switch kind {
        case let .tcp(host, port): self = .tcp(host: host, port: port)
        case let .rtu(device, baud, parity, dataBits, stopBits, rs485):
            self = .rtu(device: device, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits, rs485: rs485)
        case let .rtuOverTCP(host, port): self = .rtuOverTCP(host: host, port: port)
        }
    }

    var isTCP: Bool { if case .tcp = self { return true } else { return false } }

    /// `tcp://HOST:PORT` or `DEVICE BAUD 8E1` (what `gridlet status` shows).
    public var endpointDescription: String {
        switch self {
        case let .tcp(host, port): return "tcp://\(host):\(port)"
        case let .rtu(device, baud, parity, dataBits, stopBits, rs485):
            return "\(device) \(baud) \(dataBits)\(parity.rawValue)\(stopBits)\(rs485 ? " rs485" : "")"
        case let .rtuOverTCP(host, port): return "rtu-over-tcp://\(host):\(port)"
        }
    }
}

/// One libmodbus context (`modbus_t*`). Not thread safe and deliberately not `Sendable`:
/// it is created, used and closed by one thread (the `ModbusBus` thread).
///
/// Connects lazily; after a connection-level error (timeout on TCP, reset, refused, garbage)
/// the context is closed and reopened at the next transaction. Each transaction is tried
/// `retries + 1` times (Modbus exceptions are not retried: the device answered), and
/// `gapMs` of bus silence is kept between transactions.
public final class ModbusConnection {
    public let busName: String
    public let transport: ModbusTransport
    public let timeoutMs: Int
    public let retries: Int
    public let gapMs: Int
    /// RS-485 direction control on an `rs485: true` RTU bus.
    public let rs485Mode: RS485Mode
    /// User-space RTS toggling: silence before and after sending; nil = libmodbus's one character time.
    public let rtsDelayUs: Int?
    /// How DE/RE is switched on the open connection: "kernel", "rts-up (user space, N us)",
    /// "rts-down (...)", or nil (no RS-485 direction control, or not connected yet).
    public private(set) var direction: String?
    /// Per-request overrides (diagnostics: `gridlet scan --timeout` through the daemon). nil = the bus's own.
    public var overrideTimeoutMs: Int?
    public var overrideRetries: Int?
    private var effectiveTimeoutMs: Int { overrideTimeoutMs.map { max(1, $0) } ?? timeoutMs }
    private var appliedTimeoutMs = 0
    private var ctx: OpaquePointer?
    private var connected = false
    /// RTU over TCP: the pty bridge to the adapter (lives as long as the connection object).
    private var bridge: RTUOverTCPBridge?
    private var lastTransactionEndMs: Int64 = 0

    public init(busName: String, transport: ModbusTransport, timeoutMs: Int = 500, retries: Int = 2, gapMs: Int = 0,
                rs485Mode: RS485Mode = .auto, rtsDelayUs: Int? = nil) {
        self.busName = busName
        self.transport = transport
        self.timeoutMs = max(1, timeoutMs)
        self.retries = max(0, retries)
        self.gapMs = max(0, gapMs)
        self.rs485Mode = rs485Mode
        self.rtsDelayUs = rtsDelayUs
    }

    deinit {
        close()
        bridge?.stop()
    }

    public var isConnected: Bool { connected }

    /// Opens the connection now (transactions do this by themselves when needed).
    public func connect(device: String? = nil, unit: Int = 0) throws(ModbusError) {
        try open(device: device, unit: unit, function: "connect", address: 0, count: 0)
    }

    /// Opens the connection; errors name the transaction that needed it.
    private func open(device: String?, unit: Int, function: String, address: Int, count: Int) throws(ModbusError) {
        if connected { return }
        if ctx == nil {
            switch transport {
            case let .tcp(host, port):
                ctx = modbus_new_tcp(host, Int32(port))
            case let .rtu(device, baud, parity, dataBits, stopBits, _):
                let p: CChar = switch parity {
                case .none: CChar(UInt8(ascii: "N"))
                case .even: CChar(UInt8(ascii: "E"))
                case .odd: CChar(UInt8(ascii: "O"))
                }
                ctx = modbus_new_rtu(device, Int32(baud), p, Int32(dataBits), Int32(stopBits))
            case let .rtuOverTCP(host, port):
                if bridge == nil {
                    guard let b = RTUOverTCPBridge(host: host, port: port) else {
                        throw error(code: gridlet_errno(), device: device, unit: unit, function: function, address: address, count: count)
                    }
                    b.start()
                    bridge = b
                }
                // The baud rate only sets libmodbus's RTS timing, unused on a pty.
                ctx = modbus_new_rtu(bridge!.devicePath, 115_200, CChar(UInt8(ascii: "N")), 8, 1)
            }
            guard ctx != nil else {
                throw error(code: gridlet_errno(), device: device, unit: unit, function: function, address: address, count: count)
            }
            appliedTimeoutMs = 0
        }
        guard let ctx else { return }
        if modbus_connect(ctx) != 0 {
            let code = gridlet_errno()
            throw error(code: code, device: device, unit: unit, function: function, address: address, count: count)
        }
        if case let .rtu(_, _, _, _, _, rs485) = transport, rs485 {
            do throws(ModbusError) {
                direction = try setUpDirection(ctx, device: device, unit: unit, function: function, address: address, count: count)
            } catch {
                modbus_close(ctx)
                throw error
            }
        }
        connected = true
    }

    /// Switches on RS-485 direction control (`rs485: true`): the kernel's RS-485 mode, or
    /// user-space RTS toggling around each request (libmodbus raises RTS, waits the delay,
    /// writes, waits until the frame is out plus the delay, lowers RTS). Returns what is in use.
    private func setUpDirection(_ ctx: OpaquePointer, device: String?, unit: Int, function: String, address: Int,
                                count: Int) throws(ModbusError) -> String {
        func fail(_ code: Int32, _ text: String) -> ModbusError {
            var e = error(code: code, device: device, unit: unit, function: function, address: address, count: count)
            e.message = text + ": " + e.message
            return e
        }
        var kernelRefusal: Int32?
        if rs485Mode == .kernel || rs485Mode == .auto {
            if modbus_rtu_set_serial_mode(ctx, gridlet_MODBUS_RTU_RS485) == 0 { return "kernel" }
            let code = gridlet_errno()
            // ENOTTY/EINVAL/EOPNOTSUPP (and ENOIOCTLCMD leaking as 515): the driver has no RS-485 mode.
            let noSuchMode = [ENOTTY, EINVAL, EOPNOTSUPP, 515].contains(code)
            if rs485Mode == .kernel || !noSuchMode {
                let hint = noSuchMode ? " (the driver has no RS-485 mode; use rs485_mode: rts-up to toggle RTS from gridlet, "
                    + "or an adapter with automatic direction control and rs485: false)" : ""
                throw fail(code, "cannot switch the serial port to RS-485 mode\(hint)")
            }
            kernelRefusal = code
        }
        let up = rs485Mode != .rtsDown
        let fd = modbus_get_socket(ctx)
        let probe = gridlet_rts_probe(fd)
        if probe != 0 {
            let first = kernelRefusal.map { "no kernel RS-485 mode (\(ModbusError.codeName($0))) and " } ?? ""
            throw fail(probe, first + "cannot drive RTS on this port (a pty or an adapter without modem control lines); "
                + "use an adapter with automatic direction control and rs485: false")
        }
        let setter: @convention(c) (OpaquePointer?, Int32) -> Void = { ctx, on in
            gridlet_rts_set_fd(modbus_get_socket(ctx), on)
        }
        if modbus_rtu_set_custom_rts(ctx, setter) != 0
            || modbus_rtu_set_rts(ctx, up ? gridlet_MODBUS_RTU_RTS_UP : gridlet_MODBUS_RTU_RTS_DOWN) != 0
            || (rtsDelayUs.map { modbus_rtu_set_rts_delay(ctx, Int32($0)) != 0 } ?? false) {
            throw fail(gridlet_errno(), "cannot set up RTS toggling")
        }
        let delay = modbus_rtu_get_rts_delay(ctx)
        return "\(up ? "rts-up" : "rts-down") (user space, \(delay) us)"
    }

    /// Closes the connection; the next transaction reconnects.
    public func close() {
        if let ctx {
            if connected { modbus_close(ctx) }
            modbus_free(ctx)
        }
        ctx = nil
        connected = false
        direction = nil
    }

    /// Reads `count` registers (fc 3 for holding, fc 4 for input).
    public func readRegisters(table: RegisterTable, address: Int, count: Int, unit: Int, device: String? = nil) throws(ModbusError) -> [UInt16] {
        let function = table == .holding ? "read holding registers" : "read input registers"
        guard (1...125).contains(count), address >= 0, address + count <= 65536 else {
            throw invalid(device: device, unit: unit, function: function, address: address, count: count,
                          message: "register range must be 1...125 registers inside 0...65535")
        }
        // The registers go into the connection's own array, which the caller gets a copy of: once
        // the caller has dropped it (the bus's completions decode and drop it), the next read
        // reuses the storage. A fresh array per read cost an allocation and a metadata lookup.
        if readBuffer.count > count {
            readBuffer.removeLast(readBuffer.count - count)
        } else if readBuffer.count < count {
            readBuffer.append(contentsOf: repeatElement(0, count: count - readBuffer.count))
        }
        try transaction(device: device, unit: unit, function: function, address: address, count: count) { ctx in
            readBuffer.withUnsafeMutableBufferPointer { buf in
                table == .holding
                    ? modbus_read_registers(ctx, Int32(address), Int32(count), buf.baseAddress)
                    : modbus_read_input_registers(ctx, Int32(address), Int32(count), buf.baseAddress)
            }
        }
        return readBuffer
    }
    private var readBuffer: [UInt16] = []

    /// Writes one holding register (fc 6).
    public func writeRegister(address: Int, value: UInt16, unit: Int, device: String? = nil) throws(ModbusError) {
        let function = "write holding register"
        guard (0...65535).contains(address) else {
            throw invalid(device: device, unit: unit, function: function, address: address, count: 1, message: "address outside 0...65535")
        }
        try transaction(device: device, unit: unit, function: function, address: address, count: 1) { ctx in
            modbus_write_register(ctx, Int32(address), value)
        }
    }

    /// Writes holding registers: fc 6 for one value, fc 16 for several.
    public func writeRegisters(address: Int, values: [UInt16], unit: Int, device: String? = nil,
                               forceMultiple: Bool = false) throws(ModbusError) {
        if values.count == 1 && !forceMultiple { return try writeRegister(address: address, value: values[0], unit: unit, device: device) }
        let function = "write holding registers"
        guard (1...123).contains(values.count), address >= 0, address + values.count <= 65536 else {
            throw invalid(device: device, unit: unit, function: function, address: address, count: values.count,
                          message: "register range must be 1...123 registers inside 0...65535")
        }
        try transaction(device: device, unit: unit, function: function, address: address, count: values.count) { ctx in
            values.withUnsafeBufferPointer { buf in
                modbus_write_registers(ctx, Int32(address), Int32(values.count), buf.baseAddress)
            }
        }
    }

    // MARK: - internals

    private func transaction(device: String?, unit: Int, function: String, address: Int, count: Int,
                             _ call: (OpaquePointer) -> Int32) throws(ModbusError) {
        let validUnit = transport.isTCP ? (0...255).contains(unit) : (0...247).contains(unit)
        guard validUnit else {
            throw invalid(device: device, unit: unit, function: function, address: address, count: count,
                          message: "unit id \(unit) is out of range")
        }
        var lastError: ModbusError?
        for _ in 0...(overrideRetries.map { max(0, $0) } ?? retries) {
            keepGap()
            // Only a bus with a gap needs to know when the last transaction ended.
            defer { if gapMs > 0 { lastTransactionEndMs = SystemClock.monoMs() } }
            do throws(ModbusError) {
                try open(device: device, unit: unit, function: function, address: address, count: count)
            } catch {
                lastError = error
                close()
                if error.kind == .invalidRequest { break }
                continue
            }
            guard let ctx else { continue }
            if let bridge, let code = bridge.waitConnected(timeoutMs: Int64(effectiveTimeoutMs)) {
                var e = error(code: code, device: device, unit: unit, function: function, address: address, count: count)
                let why = code == ETIMEDOUT ? "no TCP connection within \(effectiveTimeoutMs) ms" : e.message
                e.message = "RTU-over-TCP adapter \(bridge.host):\(bridge.port): " + why
                lastError = e
                continue
            }
            if appliedTimeoutMs != effectiveTimeoutMs {
                appliedTimeoutMs = effectiveTimeoutMs
                let to = UInt32(appliedTimeoutMs)
                modbus_set_response_timeout(ctx, to / 1000, (to % 1000) * 1000)
            }
            modbus_set_slave(ctx, Int32(unit))
            if call(ctx) >= 0 { return }
            let err = self.error(code: gridlet_errno(), device: device, unit: unit, function: function, address: address, count: count)
            lastError = err
            if case .exception = err.kind { break }
            if err.kind == .invalidRequest { break }
            if err.isConnectionLevel {
                if transport.isTCP || err.kind == .connection {
                    // On TCP a late answer would desynchronise the stream: start afresh.
                    close()
                } else {
                    // RTU timeouts/garbage: drop whatever is still arriving, keep the port open.
                    modbus_flush(ctx)
                }
            }
        }
        throw lastError ?? invalid(device: device, unit: unit, function: function, address: address, count: count, message: "failed")
    }

    private func keepGap() {
        guard gapMs > 0, lastTransactionEndMs > 0 else { return }
        let wait = lastTransactionEndMs + Int64(gapMs) - SystemClock.monoMs()
        SystemClock.sleepMs(wait)
    }

    private func error(code: Int32, device: String?, unit: Int, function: String, address: Int, count: Int) -> ModbusError {
        ModbusError(code: code, device: device ?? busName, bus: busName, unit: unit, function: function,
                    address: address, count: count, timeoutMs: effectiveTimeoutMs)
    }

    private func invalid(device: String?, unit: Int, function: String, address: Int, count: Int, message: String) -> ModbusError {
        ModbusError(code: 0, kind: .invalidRequest, device: device ?? busName, bus: busName, unit: unit,
                    function: function, address: address, count: count, message: message)
    }
}
