import GridletCore

/// Diagnostics on a bus: raw transactions with an explicit function code, and unit id scans.
/// Used by `gridlet modbus`, `gridlet scan` and the daemon's socket (one master per bus).
public enum ModbusDiagnostics {
    public enum Operation: Sendable, Equatable {
        /// fc 3 (holding) or fc 4 (input).
        case read(function: Int, address: Int, count: Int)
        /// fc 6 (one register) or fc 16.
        case write(function: Int, address: Int, values: [UInt16])
    }

    /// Checks the function code against the operation; nil when valid, else the problem.
    public static func validate(_ op: Operation) -> String? {
        switch op {
        case let .read(fc, address, count):
            guard fc == 3 || fc == 4 else { return "reads use function 3 (holding) or 4 (input), got \(fc)" }
            guard (1...125).contains(count), address >= 0, address + count <= 65536 else { return "read 1...125 registers inside 0...65535" }
        case let .write(fc, address, values):
            guard fc == 6 || fc == 16 else { return "writes use function 6 (one register) or 16 (several), got \(fc)" }
            if fc == 6 && values.count != 1 { return "function 6 writes exactly one register, got \(values.count)" }
            guard (1...123).contains(values.count), address >= 0, address + values.count <= 65536 else { return "write 1...123 registers inside 0...65535" }
        }
        return nil
    }

    public static func request(_ op: Operation, unit: Int, deviceName: String) -> ModbusRequest {
        switch op {
        case let .read(fc, address, count):
            return .read(table: fc == 3 ? .holding : .input, address: address, count: count, unit: unit, deviceName: deviceName)
        case let .write(fc, address, values):
            return fc == 6 ? .write(address: address, values: values, unit: unit, deviceName: deviceName)
                : .writeMultiple(address: address, values: values, unit: unit, deviceName: deviceName)
        }
    }

    /// Runs one operation and waits (not on the bus thread).
    public static func perform(_ op: Operation, unit: Int, on bus: ModbusBus, deviceName: String = "modbus",
                               overrides: ModbusBus.Overrides = .init()) -> Result<[UInt16], ModbusError> {
        bus.perform(request(op, unit: unit, deviceName: deviceName), overrides: overrides)
    }

    public enum Probe: Sendable, Equatable {
        /// Answered normally.
        case answered
        /// Answered with a Modbus exception: a device is there (it just has no register 0).
        case exception(Int)
        /// No answer (or garbage): nothing at that unit id.
        case none(String)
        public var found: Bool { if case .none = self { return false } else { return true } }
    }

    /// Probes unit ids one after another by reading holding register `address` (any answer,
    /// including an exception, means a device is there). `progress` is called after each unit.
    /// Bounded: one transaction per unit without retries, each bounded by `timeoutMs` (default:
    /// the bus timeout). Each unit is a separate request on the bus FIFO, so a daemon's polls
    /// go on between them.
    public static func scan(_ units: ClosedRange<Int>, address: Int = 0, on bus: ModbusBus, timeoutMs: Int? = nil,
                            progress: (Int, Probe) -> Void = { _, _ in }) -> [(unit: Int, probe: Probe)] {
        var out: [(Int, Probe)] = []
        for u in units {
            let probe: Probe
            switch bus.perform(.read(table: .holding, address: address, count: 1, unit: u, deviceName: "unit \(u)"),
                               overrides: .init(timeoutMs: timeoutMs, retries: 0)) {
            case .success: probe = .answered
            case let .failure(e):
                if case let .exception(code) = e.kind { probe = .exception(code) } else { probe = .none(e.message) }
            }
            progress(u, probe)
            out.append((u, probe))
        }
        return out
    }
}
