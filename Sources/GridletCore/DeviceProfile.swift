/// How a value is laid out in Modbus registers.
public enum RegisterType: String, Sendable, Equatable, CaseIterable {
    case uint16, int16, uint32, int32, float32, float64
    /// Unsigned 64-bit (SunSpec DER acc64 energies); exact up to 2^53.
    case uint64
    public var registerCount: Int {
        switch self {
        case .uint16, .int16: return 1
        case .uint32, .int32, .float32: return 2
        case .float64, .uint64: return 4
        }
    }
}

/// Order of 16-bit words in a multi-register value. Bytes inside a word are always big-endian.
public enum WordOrder: String, Sendable, Equatable {
    case hiFirst = "hi_first"   // ABCD
    case loFirst = "lo_first"   // CDAB
}

/// Modbus register table a point lives in.
public enum RegisterTable: String, Sendable, Equatable {
    case holding   // read fc 3, write fc 6/16
    case input     // read fc 4
    public var readFunction: Int { self == .holding ? 3 : 4 }
}

/// One readable quantity of a device. `value = raw * scale`.
public struct ProfilePoint: Sendable, Equatable {
    /// Canonical names the agent understands: power_w, import_wh, export_wh, voltage_l1_v..l3,
    /// current_l1_a..l3, frequency_hz, and for chargers charging (0/1), vehicle_connected (0/1),
    /// energy_wh, setpoint_a. Other names are read and shown by `gridlet read` but not used in control.
    public var name: String
    public var address: Int
    public var table: RegisterTable
    public var type: RegisterType
    public var wordOrder: WordOrder
    public var scale: Double
    public var unit: String
    public var verified: Bool
    /// SunSpec: the point's ID in the SunSpec model (e.g. `W`, `AphA`); the address is filled in
    /// by discovery (`SunSpec.resolve`). nil for ordinary points.
    public var sunspecID: String?
    /// SunSpec scale factor register (sunssf, int16): `value = raw * scale * 10^sf`.
    public var scaleFactorAddress: Int?
    /// SunSpec "not implemented" sentinels apply (0x8000 int16, 0xFFFF uint16, 0x80000000 int32,
    /// 0 for acc32/uint32, NaN floats; sunssf 0x8000): such values decode as missing (nil).
    public var notImplementedSentinels: Bool
    public init(name: String, address: Int, table: RegisterTable, type: RegisterType, wordOrder: WordOrder = .hiFirst,
                scale: Double = 1, unit: String = "", verified: Bool = false, sunspecID: String? = nil,
                scaleFactorAddress: Int? = nil, notImplementedSentinels: Bool = false) {
        self.name = name; self.address = address; self.table = table; self.type = type
        self.wordOrder = wordOrder; self.scale = scale; self.unit = unit; self.verified = verified
        self.sunspecID = sunspecID; self.scaleFactorAddress = scaleFactorAddress; self.notImplementedSentinels = notImplementedSentinels
    }
}

/// A writable holding register (charger control).
public struct ProfileRegister: Sendable, Equatable {
    public var address: Int
    public var type: RegisterType
    public var scale: Double      // register value = physical value / scale
    /// A SunSpec scale factor register (sunssf, int16) that also applies: register value =
    /// physical value / scale / 10^sf. The writer reads it before the first write.
    public var scaleFactorAddress: Int?
    public init(address: Int, type: RegisterType = .uint16, scale: Double = 1, scaleFactorAddress: Int? = nil) {
        self.address = address; self.type = type; self.scale = scale; self.scaleFactorAddress = scaleFactorAddress
    }
}

/// The charger control surface of a profile.
public struct ChargerControl: Sendable, Equatable {
    /// Charging current setpoint in A per phase; 0 = pause.
    public var chargingCurrent: ProfileRegister
    /// Current the charger falls back to by itself when the agent stops refreshing.
    public var failsafeCurrent: ProfileRegister?
    /// Seconds without a refresh after which the charger applies its failsafe current.
    public var failsafeTimeout: ProfileRegister?
    /// Register written with `aliveValue` to show the agent is alive.
    public var alive: ProfileRegister?
    public var aliveValue: Int
    /// Resolution of the setpoint in A (amps are rounded down to it).
    public var currentResolution: Double
    /// The charger drops a written setpoint after this many seconds unless it is written again
    /// (Alfen "validity time", set in the installer tool, not over Modbus). The agent must rewrite
    /// the setpoint well within it (at most every `setpointValidityS / 2`). nil: the setpoint stays.
    public var setpointValidityS: Double?
    /// Fraction of the failsafe timeout after which the alive register (or the setpoint) is
    /// written again (evcc: Vestel 1/4, Webasto Next 1/2). nil: the agent's default.
    public var refreshFraction: Double?
    /// The point by which the charger says it is in fault; nil: the profile knows none.
    public var fault: ChargerFault?
    /// The failsafe registers can be read back (holding registers the charger keeps): after a
    /// write the agent reads each one and writes again if the charger kept another value.
    public var failsafeReadback = false
    public init(chargingCurrent: ProfileRegister, failsafeCurrent: ProfileRegister? = nil, failsafeTimeout: ProfileRegister? = nil,
                alive: ProfileRegister? = nil, aliveValue: Int = 1, currentResolution: Double = 1,
                setpointValidityS: Double? = nil, refreshFraction: Double? = nil, fault: ChargerFault? = nil) {
        self.chargingCurrent = chargingCurrent; self.failsafeCurrent = failsafeCurrent; self.failsafeTimeout = failsafeTimeout
        self.alive = alive; self.aliveValue = aliveValue; self.currentResolution = currentResolution
        self.setpointValidityS = setpointValidityS; self.refreshFraction = refreshFraction; self.fault = fault
    }
}

/// Which point of a charger says it is in fault, and which of its values mean fault
/// (`control.fault` of a profile). A charger's own word about its health is the one input that
/// sees a fault while the charger still answers: a charger in fault gets the SafetyDerate (SPEC §2),
/// and the state says why, in the words of the register map.
///
/// A value is a fault when it is listed in `values`, has a bit listed in `bits` set, or, with
/// `nonzero`, is anything but 0. Texts are for people; "" means none is known.
public struct ChargerFault: Sendable, Equatable {
    /// The profile point read; its value as decoded (raw × scale).
    public var point: String
    /// Any value other than 0 is a fault (an error-code register whose 0 means "no error").
    public var nonzero: Bool
    /// Values that are a fault (a state register's "faulted"), or with `nonzero` the texts of known codes.
    public var values: [Int: String]
    /// Masks: the value is a fault when any bit of a mask is set (an error bit field).
    public var bits: [Int: String]

    public init(point: String, nonzero: Bool = false, values: [Int: String] = [:], bits: [Int: String] = [:]) {
        self.point = point; self.nonzero = nonzero; self.values = values; self.bits = bits
    }

    /// Why `value` is a fault, e.g. "faulted (charge_point_state = 8)"; nil when it is not one.
    public func reason(_ value: Double) -> String? {
        guard value.isFinite, value == value.rounded(), abs(value) < 1e15 else {
            // Not a code: only "anything but 0" can judge it.
            return nonzero && value != 0 ? "\(point) = \(value)" : nil
        }
        let v = Int(value)
        if let text = values[v] { return Self.shown(text: text, "\(point) = \(v)") }
        let set = v > 0 ? bits.keys.sorted().filter { v & $0 != 0 } : []
        if !set.isEmpty {
            let texts = set.compactMap { bits[$0] }.filter { !$0.isEmpty }
            return Self.shown(text: texts.joined(separator: ", "), "\(point) = 0x\(String(v, radix: 16, uppercase: true))")
        }
        return nonzero && v != 0 ? "\(point) = \(v)" : nil
    }

    private static func shown(text: String, _ raw: String) -> String { text.isEmpty ? raw : "\(text) (\(raw))" }
}

/// SunSpec discovery parameters of a profile (`sunspec:` section).
public struct SunSpecSettings: Sendable, Equatable {
    /// Where to look for the "SunS" marker, in order.
    public var bases: [Int]
    /// Acceptable meter models, in order of preference when a device has several.
    public var models: [Int]
    public init(bases: [Int] = [40000, 0, 50000], models: [Int] = [201, 202, 203, 204, 211, 212, 213, 214]) {
        self.bases = bases; self.models = models
    }
}

public enum DeviceKind: String, Sendable, Equatable { case meter, charger }

/// A device's register map: what to read, how to decode it, how to control it.
public struct DeviceProfile: Sendable, Equatable {
    public var name: String
    public var kind: DeviceKind
    public var vendor: String
    public var model: String
    public var defaultUnit: Int
    public var transport: String      // "rtu", "tcp" or "rtu,tcp": what the real device offers
    public var notes: String
    public var sources: [String]
    public var points: [ProfilePoint]
    public var control: ChargerControl?
    /// Set for SunSpec devices: the point addresses are found by discovery (see `SunSpec`).
    public var sunspec: SunSpecSettings?
    /// Set for bidirectional devices (V2G chargers, battery inverters): how to drive a signed
    /// power setpoint (`power:` section).
    public var power: BidirectionalControl?
    /// Registers the device serves with fixed values (`layout:`): SunSpec markers, model ids and
    /// lengths, scale factors. The simulator serves them.
    public var layout: [Int: UInt16] = [:]
    public init(name: String, kind: DeviceKind, vendor: String, model: String, defaultUnit: Int = 1, transport: String = "rtu",
                notes: String = "", sources: [String] = [], points: [ProfilePoint], control: ChargerControl? = nil,
                sunspec: SunSpecSettings? = nil) {
        self.name = name; self.kind = kind; self.vendor = vendor; self.model = model; self.defaultUnit = defaultUnit
        self.transport = transport; self.notes = notes; self.sources = sources; self.points = points; self.control = control
        self.sunspec = sunspec
    }
    public func point(_ name: String) -> ProfilePoint? { points.first { $0.name == name } }
}
