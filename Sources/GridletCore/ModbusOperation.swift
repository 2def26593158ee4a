/// One raw diagnostics transaction with an explicit function code (`gridlet modbus`, the
/// daemon's `modbus` request). A value in the core, not in the libmodbus adapter, so the
/// command line can build and check it without linking the bus code.
public enum ModbusOperation: Sendable, Equatable {
    /// fc 3 (holding) or fc 4 (input).
    case read(function: Int, address: Int, count: Int)
    /// fc 6 (one register) or fc 16.
    case write(function: Int, address: Int, values: [UInt16])

    /// What is wrong with the function code or the range; nil when the operation can be sent.
    public var problem: String? {
        switch self {
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
}

/// What a unit id did when a scan probed it. Any answer, even an exception, means a device is
/// there, which is why an exception is not a failure here.
public enum ModbusProbe: Sendable, Equatable {
    /// Answered normally.
    case answered
    /// Answered with a Modbus exception: a device is there (it just has no such register).
    case exception(Int)
    /// No answer (or garbage): nothing at that unit id.
    case none(String)
    public var found: Bool { if case .none = self { return false } else { return true } }
}
