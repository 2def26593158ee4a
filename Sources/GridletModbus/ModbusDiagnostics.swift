import GridletCore

/// Diagnostics on a bus: raw transactions with an explicit function code, and unit id scans.
/// Used by `gridlet modbus`, `gridlet scan` and the daemon's socket (one master per bus). The
/// operations and probe results are core values (`ModbusOperation`, `ModbusProbe`).
public enum ModbusDiagnostics {
    public static func request(_ op: ModbusOperation, unit: Int, deviceName: String) -> ModbusRequest {
        switch op {
        case let .read(fc, address, count):
            return .read(table: fc == 3 ? .holding : .input, address: address, count: count, unit: unit, deviceName: deviceName)
        case let .write(fc, address, values):
            return fc == 6 ? .write(address: address, values: values, unit: unit, deviceName: deviceName)
                : .writeMultiple(address: address, values: values, unit: unit, deviceName: deviceName)
        }
    }

    /// Runs one operation and waits (not on the bus thread).
    public static func perform(_ op: ModbusOperation, unit: Int, on bus: ModbusBus, deviceName: String = "modbus",
                               overrides: ModbusBus.Overrides = .init()) -> Result<[UInt16], ModbusError> {
        bus.perform(request(op, unit: unit, deviceName: deviceName), overrides: overrides)
    }

    /// Probes unit ids one after another by reading holding register `address` (any answer,
    /// including an exception, means a device is there). `progress` is called after each unit.
    /// Bounded: one transaction per unit without retries, each bounded by `timeoutMs` (default:
    /// the bus timeout). Each unit is a separate request on the bus FIFO, so a daemon's polls
    /// go on between them.
    public static func scan(_ units: ClosedRange<Int>, address: Int = 0, on bus: ModbusBus, timeoutMs: Int? = nil,
                            progress: (Int, ModbusProbe) -> Void = { _, _ in }) -> [(unit: Int, probe: ModbusProbe)] {
        var out: [(Int, ModbusProbe)] = []
        for u in units {
            let probe: ModbusProbe
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
