import CModbus
import Glibc

/// A failed Modbus transaction (or connection attempt), naming the device and registers.
public struct ModbusError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The device answered with a Modbus exception (code 1...11).
        case exception(code: Int)
        /// No (complete) answer within the response timeout.
        case timeout
        /// TCP connection refused: nothing listens there.
        case connectionRefused
        /// Other transport-level failures (reset, unreachable, serial port missing, ...).
        case connection
        /// The answer was malformed (CRC, wrong unit, wrong length).
        case invalidResponse
        /// The request itself was invalid (address range, count, unit id).
        case invalidRequest
        /// The bus was stopped before the request ran.
        case stopped
    }

    /// libmodbus's raw error code: an errno value or a libmodbus EMB* code; 0 when none.
    public var code: Int32
    public var kind: Kind
    /// Name of the device (e.g. `meter`), or the bus name when no device is involved.
    public var device: String
    /// Name of the bus (e.g. `lan`).
    public var bus: String
    public var unit: Int
    /// e.g. `read input registers`, `write holding registers`, `connect`.
    public var function: String
    public var address: Int
    public var count: Int
    /// Human readable reason, e.g. `no answer within 500 ms`.
    public var message: String

    public init(code: Int32, kind: Kind, device: String, bus: String, unit: Int, function: String,
                address: Int, count: Int, message: String) {
        self.code = code; self.kind = kind; self.device = device; self.bus = bus; self.unit = unit
        self.function = function; self.address = address; self.count = count; self.message = message
    }

    /// Builds an error from a libmodbus/errno code.
    public init(code: Int32, device: String, bus: String, unit: Int, function: String, address: Int, count: Int, timeoutMs: Int) {
        let (kind, message) = ModbusError.classify(code, timeoutMs: timeoutMs)
        self.init(code: code, kind: kind, device: device, bus: bus, unit: unit, function: function,
                  address: address, count: count, message: message)
    }

    /// True when the connection should be closed and reopened before the next transaction.
    public var isConnectionLevel: Bool {
        switch kind {
        case .exception, .invalidRequest, .stopped: return false
        case .timeout, .connectionRefused, .connection, .invalidResponse: return true
        }
    }

    public var codeName: String { ModbusError.codeName(code) }

    public var description: String {
        let target = count == 0 ? function : "\(function) \(address)+\(count)"
        let codePart = code == 0 ? "" : " (\(codeName))"
        return "\(device) (unit \(unit) on \(bus)): \(target): \(message)\(codePart)"
    }

    // MARK: - code tables (modbus_strerror is not thread safe, so messages are ours)

    static let exceptionNames: [Int: String] = [
        1: "illegal function", 2: "illegal data address", 3: "illegal data value",
        4: "slave device failure", 5: "acknowledge", 6: "slave device busy", 7: "negative acknowledge",
        8: "memory parity error", 10: "gateway path unavailable", 11: "gateway target device failed to respond",
    ]

    static func classify(_ code: Int32, timeoutMs: Int) -> (Kind, String) {
        let base = gridlet_MODBUS_ENOBASE
        if code > base && code <= base + 11 {
            let exc = Int(code - base)
            return (.exception(code: exc), "exception \(exc): \(exceptionNames[exc] ?? "unknown exception")")
        }
        switch code {
        case gridlet_EMBBADCRC: return (.invalidResponse, "invalid CRC in the answer")
        case gridlet_EMBBADDATA: return (.invalidResponse, "invalid data in the answer")
        case gridlet_EMBBADEXC: return (.invalidResponse, "invalid exception code in the answer")
        case gridlet_EMBMDATA: return (.invalidRequest, "too many registers in one request")
        case gridlet_EMBBADSLAVE: return (.invalidResponse, "answer from an unexpected unit id")
        case ETIMEDOUT: return (.timeout, "no answer within \(timeoutMs) ms")
        case ECONNREFUSED: return (.connectionRefused, "connection refused")
        case ECONNRESET: return (.connection, "connection reset by the device")
        case EPIPE: return (.connection, "connection closed by the device")
        case EHOSTUNREACH: return (.connection, "host unreachable")
        case ENETUNREACH: return (.connection, "network unreachable")
        case ENOENT: return (.connection, "no such serial device")
        case EACCES: return (.connection, "permission denied")
        case EBUSY: return (.connection, "device busy")
        case EBADF: return (.connection, "not connected")
        case EIO: return (.connection, "input/output error")
        case EINVAL: return (.invalidRequest, "invalid argument")
        case EMSGSIZE: return (.invalidResponse, "answer has the wrong length")
        case EADDRINUSE: return (.connection, "address already in use")
        case ENOTTY: return (.connection, "inappropriate ioctl for device")
        case EOPNOTSUPP: return (.connection, "operation not supported")
        default: return (.connection, "error \(code)")
        }
    }

    static func codeName(_ code: Int32) -> String {
        let base = gridlet_MODBUS_ENOBASE
        switch code {
        case gridlet_EMBXILFUN: return "EMBXILFUN"
        case gridlet_EMBXILADD: return "EMBXILADD"
        case gridlet_EMBXILVAL: return "EMBXILVAL"
        case gridlet_EMBXSFAIL: return "EMBXSFAIL"
        case gridlet_EMBXACK: return "EMBXACK"
        case gridlet_EMBXSBUSY: return "EMBXSBUSY"
        case gridlet_EMBXNACK: return "EMBXNACK"
        case gridlet_EMBXMEMPAR: return "EMBXMEMPAR"
        case gridlet_EMBXGPATH: return "EMBXGPATH"
        case gridlet_EMBXGTAR: return "EMBXGTAR"
        case gridlet_EMBBADCRC: return "EMBBADCRC"
        case gridlet_EMBBADDATA: return "EMBBADDATA"
        case gridlet_EMBBADEXC: return "EMBBADEXC"
        case gridlet_EMBMDATA: return "EMBMDATA"
        case gridlet_EMBBADSLAVE: return "EMBBADSLAVE"
        case ETIMEDOUT: return "ETIMEDOUT"
        case ECONNREFUSED: return "ECONNREFUSED"
        case ECONNRESET: return "ECONNRESET"
        case EPIPE: return "EPIPE"
        case EHOSTUNREACH: return "EHOSTUNREACH"
        case ENETUNREACH: return "ENETUNREACH"
        case ENOENT: return "ENOENT"
        case EACCES: return "EACCES"
        case EBUSY: return "EBUSY"
        case EBADF: return "EBADF"
        case EIO: return "EIO"
        case EINVAL: return "EINVAL"
        case EMSGSIZE: return "EMSGSIZE"
        case EADDRINUSE: return "EADDRINUSE"
        case ENOTTY: return "ENOTTY"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        default: return code > base ? "MODBUS+\(code - base)" : "errno \(code)"
        }
    }
}
