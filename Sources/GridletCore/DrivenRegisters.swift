/// A charger control register that the running daemon writes itself (a profile's `control:`).
///
/// Why it exists: `gridlet modbus write` through the daemon would otherwise let a person change a
/// register the control loop owns. The daemon rewrites the setpoint whenever the limit changes and
/// again periodically, so a hand-written value does not stick, and until it is overwritten the
/// charger may draw more than the limit in force. The failsafe registers are programmed only at
/// start and when the fallback changes, so a hand-written value there would stay, and a charger
/// that loses the daemon would fall back to it instead of the safe current.
public struct DrivenRegister: Sendable, Equatable {
    /// The profile's name for the register (`control.<name>`).
    public enum Purpose: String, Sendable, CaseIterable {
        case chargingCurrent = "charging_current"
        case failsafeCurrent = "failsafe_current"
        case failsafeTimeout = "failsafe_timeout"
        case alive
        /// A bidirectional device's `power:` registers.
        case powerSetpoint = "power.setpoint"
        case reversion = "power.reversion"
        case setup = "power.setup"
    }

    public var device: String
    public var bus: String
    public var unit: Int
    /// A write with any unit id is taken as aimed at this device: a Modbus TCP device alone on its
    /// endpoint usually ignores the unit id, so another id (`--unit` defaults to 1) still reaches it.
    public var anyUnit: Bool
    public var purpose: Purpose
    /// Holding registers it occupies (a 32-bit type takes two).
    public var addresses: Range<Int>

    public init(device: String, bus: String, unit: Int, anyUnit: Bool = false, purpose: Purpose, addresses: Range<Int>) {
        self.device = device; self.bus = bus; self.unit = unit; self.anyUnit = anyUnit; self.purpose = purpose
        self.addresses = addresses
    }

    /// The registers the daemon drives on one charger: the setpoint, and the failsafe and alive
    /// registers when the profile has them.
    public static func of(_ device: DeviceConfig, control: ChargerControl, anyUnit: Bool = false) -> [DrivenRegister] {
        let registers: [(Purpose, ProfileRegister?)] = [
            (.chargingCurrent, control.chargingCurrent), (.failsafeCurrent, control.failsafeCurrent),
            (.failsafeTimeout, control.failsafeTimeout), (.alive, control.alive),
        ]
        return registers.compactMap { purpose, register in
            register.map {
                DrivenRegister(device: device.name, bus: device.bus, unit: device.unit, anyUnit: anyUnit, purpose: purpose,
                               addresses: $0.address..<($0.address + $0.type.registerCount))
            }
        }
    }

    /// The registers the daemon drives on one bidirectional device (`power:`).
    public static func of(_ device: DeviceConfig, power: BidirectionalControl, anyUnit: Bool = false) -> [DrivenRegister] {
        let registers: [(Purpose, ProfileRegister?)] = [(.powerSetpoint, power.setpoint), (.reversion, power.reversionTimeout),
                                                        (.reversion, power.reversionSetpoint)]
            + power.setup.map { (Purpose.setup, Optional($0.register)) }
        return registers.compactMap { purpose, register in
            register.map {
                DrivenRegister(device: device.name, bus: device.bus, unit: device.unit, anyUnit: anyUnit, purpose: purpose,
                               addresses: $0.address..<($0.address + $0.type.registerCount))
            }
        }
    }

    /// Why the daemon keeps this register to itself, and what to do instead.
    var why: String {
        switch purpose {
        case .chargingCurrent:
            return "the daemon writes the charging current whenever the limit changes and rewrites it periodically (at "
                + "least every quarter of control.device_failsafe_timeout, 15 s by default): your value would be "
                + "overwritten, and until then the charger could draw more than the limit in force. To change the current, "
                + "send a dispatch (cmd/event over MQTT, see docs/mqtt-api.md)"
        case .failsafeCurrent, .failsafeTimeout:
            return "the daemon programs the charger's own failsafe from control.fallback_limit_w and "
                + "control.device_failsafe_timeout at start and whenever the fallback changes: your value would stay until "
                + "then, and a charger that loses the daemon would fall back to it instead of the safe current. Change "
                + "those keys in the configuration and restart the daemon"
        case .alive:
            return "the daemon writes it at least every quarter of control.device_failsafe_timeout (15 s by default) so "
                + "the charger's failsafe timer sees the daemon alive; writes from here would interleave with it"
        case .powerSetpoint:
            return "the daemon writes the signed power setpoint whenever the limits or the dispatch change and rewrites it "
                + "at least every quarter of control.device_failsafe_timeout: your value would be overwritten, and until "
                + "then the device could import or export more than allowed. To change it, send a dispatch with setpoint_w"
        case .reversion, .setup:
            return "the daemon programs the device's own reversion (control.device_failsafe_timeout, the fallback) and "
                + "its remote-control setup at start and after failures: a value written here would change what the "
                + "device does when the daemon goes silent. Change the configuration and restart the daemon"
        }
    }
}

/// The registers the running daemon drives, and the check `modbus write` through it must pass.
public struct DrivenRegisters: Sendable, Equatable {
    public var registers: [DrivenRegister]
    public init(_ registers: [DrivenRegister] = []) { self.registers = registers }

    /// Why `operation` on `bus`/`unit` is refused while the daemon runs; nil when it may go ahead.
    /// Reads are always allowed; so is a write that touches none of the driven registers.
    public func refusal(of operation: ModbusOperation, bus: String, unit: Int) -> String? {
        guard case let .write(_, address, values) = operation else { return nil }
        let written = address..<(address + values.count)
        guard let hit = registers.first(where: {
            $0.bus == bus && ($0.anyUnit || $0.unit == unit) && $0.addresses.overlaps(written)
        }) else { return nil }
        let what = hit.addresses.count == 1 ? "holding register \(hit.addresses.lowerBound)"
            : "holding registers \(hit.addresses.lowerBound)-\(hit.addresses.upperBound - 1)"
        let otherUnit = hit.unit == unit ? "" : "; alone on a Modbus TCP endpoint it answers any unit id, \(unit) included"
        return "refused: \(what) is the \(hit.purpose.rawValue) register of charger \(hit.device) (bus \(hit.bus), unit "
            + "\(hit.unit)\(otherUnit)), which the running daemon drives; \(hit.why). For a bench test, stop the daemon "
            + "(sudo systemctl stop gridlet) and write directly. Reads stay allowed."
    }
}
