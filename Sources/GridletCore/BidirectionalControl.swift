/// Which sign a device's power registers use.
public enum PowerSign: String, Sendable, Equatable {
    /// + = charge/import (gridlet's own convention; Wallbox Quasar).
    case importPositive = "import_positive"
    /// + = discharge/export (SunSpec DER: `W` and `WSet` are positive for generation).
    case exportPositive = "export_positive"

    /// The device's value for a power in gridlet's sign (+ import), and back (the map is its own inverse).
    public func device(_ w: Double) -> Double { self == .importPositive ? w : 0 - w }
}

/// One register written with a fixed value before the device follows setpoints (take remote
/// control, setpoint in W, enable the function, start).
public struct SetupWrite: Sendable, Equatable {
    public var register: ProfileRegister
    public var value: Double
    public init(register: ProfileRegister, value: Double) { self.register = register; self.value = value }
}

/// How a bidirectional device (a V2G charger, a battery inverter) is driven: a signed power
/// setpoint in W, its own reversion when the controller goes silent, and what must be written
/// before it follows at all (`power:` section of a profile, docs/profiles.md).
///
/// The device's actual power is the canonical point `power_w` (+ import: a device that reports
/// generation as positive gets `scale: -1` on that point), its state of charge `soc_pct`.
public struct BidirectionalControl: Sendable, Equatable {
    /// The signed setpoint in W (register = W in the device's sign / scale / 10^sf).
    public var setpoint: ProfileRegister
    public var sign: PowerSign
    /// The device reverts by itself after this many seconds without a write (SunSpec
    /// `WSetRvrtTms`, Quasar Modbus idle timeout): the failsafe, programmed with
    /// `control.device_failsafe_timeout` and refreshed at most every quarter of it.
    public var reversionTimeout: ProfileRegister?
    /// What it reverts to (SunSpec `WSetRvrt`), same sign and scale as the setpoint: programmed with
    /// the device's share of `fallback_limit_w` (never an export). Without one the device reverts
    /// to its own default (the Quasar stops).
    public var reversionSetpoint: ProfileRegister?
    /// Written in order, each until the device accepted it, before the first setpoint (and again
    /// after the device stopped accepting writes: it may have reverted or restarted meanwhile).
    public var setup: [SetupWrite]
    /// As `control.refresh_fraction`: the setpoint is rewritten every `device_failsafe_timeout` ×
    /// this, never less often than a quarter of it.
    public var refreshFraction: Double?

    public init(setpoint: ProfileRegister, sign: PowerSign, reversionTimeout: ProfileRegister? = nil,
                reversionSetpoint: ProfileRegister? = nil, setup: [SetupWrite] = [], refreshFraction: Double? = nil) {
        self.setpoint = setpoint; self.sign = sign; self.reversionTimeout = reversionTimeout
        self.reversionSetpoint = reversionSetpoint; self.setup = setup; self.refreshFraction = refreshFraction
    }
}
