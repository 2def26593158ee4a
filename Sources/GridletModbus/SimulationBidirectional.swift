import GridletCore

/// The battery the simulator plays behind a bidirectional profile (`power:`).
public struct SimulatedBattery: Sendable, Equatable {
    /// Usable capacity in Wh (small values make the state of charge move fast in tests).
    public var capacityWh: Double
    /// State of charge at start, in %.
    public var socPct: Double
    /// The most the device charges or discharges, in W.
    public var maxPowerW: Double
    public init(capacityWh: Double = 60_000, socPct: Double = 50, maxPowerW: Double = 7400) {
        self.capacityWh = capacityWh; self.socPct = socPct; self.maxPowerW = maxPowerW
    }
}

/// The physics of a simulated bidirectional device: signed power that follows the setpoint
/// register (once every `setup` register holds its value), a state of charge that moves with
/// the power, energy counters, and the device's own reversion: no write for the programmed
/// `reversion_timeout` and the setup registers fall back to what they held at start (control
/// returns to the device) while the device runs at its reversion setpoint (0 W without one).
///
/// Works on the register map directly (the engine hands in its holding registers), in the
/// device's own sign and scale, so what the agent wrote is judged exactly as a device would.
struct BidirectionalModel {
    let control: BidirectionalControl
    var battery: SimulatedBattery
    /// Power now, + import (gridlet's sign).
    private(set) var powerW = 0.0
    private(set) var importWh = 1_000_000.0
    private(set) var exportWh = 250_000.0
    private(set) var lastWriteMs: Int64
    private(set) var reversions = 0
    private var initialSetup: [[UInt16]] = []

    init(control: BidirectionalControl, battery: SimulatedBattery, nowMs: Int64) {
        self.control = control
        self.battery = battery
        self.lastWriteMs = nowMs
    }

    /// Holding registers the agent writes: the simulator never overwrites them with point values.
    var controlledAddresses: Set<Int> {
        var regs = [control.setpoint] + control.setup.map(\.register)
        if let t = control.reversionTimeout { regs.append(t) }
        if let r = control.reversionSetpoint { regs.append(r) }
        var out: Set<Int> = []
        for r in regs { for a in r.address..<(r.address + r.type.registerCount) { out.insert(a) } }
        return out
    }

    /// Remembers what the setup registers hold before anyone wrote them (the device's own state).
    mutating func capture(_ holding: UnsafeMutablePointer<UInt16>) {
        initialSetup = control.setup.map { w in (0..<w.register.type.registerCount).map { holding[w.register.address + $0] } }
    }

    static func read(_ r: ProfileRegister, _ holding: UnsafeMutablePointer<UInt16>) -> Double {
        let regs = (0..<r.type.registerCount).map { holding[r.address + $0] }
        var v = RegisterCodec.decode(regs, type: r.type, order: .hiFirst, scale: r.scale) ?? 0
        if let a = r.scaleFactorAddress, let p = PointCodec.powerOfTen(holding[a]) { v = v * p.multiply / p.divide }
        return v
    }

    static func write(_ r: ProfileRegister, _ value: Double, _ holding: UnsafeMutablePointer<UInt16>) {
        var raw = value
        if let a = r.scaleFactorAddress, let p = PointCodec.powerOfTen(holding[a]) { raw = raw * p.divide / p.multiply }
        for (i, w) in RegisterCodec.encode(raw, type: r.type, order: .hiFirst, scale: r.scale).enumerated() { holding[r.address + i] = w }
    }

    /// A write arrived: the reversion timer starts again.
    mutating func wrote(nowMs: Int64) { lastWriteMs = nowMs }

    /// True when every setup register holds its setup value: the device follows the setpoint.
    func engaged(_ holding: UnsafeMutablePointer<UInt16>) -> Bool {
        control.setup.allSatisfy { abs(Self.read($0.register, holding) - $0.value) < 0.5 }
    }

    func timeoutS(_ holding: UnsafeMutablePointer<UInt16>) -> Double {
        control.reversionTimeout.map { Self.read($0, holding) } ?? 0
    }

    /// Seconds left before the device reverts (0 when it is not following a controller).
    func remainingS(_ holding: UnsafeMutablePointer<UInt16>, nowMs: Int64) -> Double {
        let t = timeoutS(holding)
        guard t > 0, engaged(holding) else { return 0 }
        return max(0, (t * 1000 - Double(nowMs - lastWriteMs)) / 1000).rounded(.up)
    }

    /// The device's own reversion when the controller went silent. Returns true when it reverted now.
    mutating func checkReversion(_ holding: UnsafeMutablePointer<UInt16>, nowMs: Int64) -> Bool {
        let t = timeoutS(holding)
        guard t > 0, engaged(holding), Double(nowMs - lastWriteMs) > t * 1000 else { return false }
        for (w, words) in zip(control.setup, initialSetup) {
            for (i, v) in words.enumerated() { holding[w.register.address + i] = v }
        }
        let fallback = control.reversionSetpoint.map { Self.read($0, holding) } ?? 0
        Self.write(control.setpoint, fallback, holding)
        reversions += 1
        return true
    }

    /// The power the device runs at now (+ import): the setpoint while engaged, else the
    /// reversion setpoint; within its hardware and its battery.
    func target(_ holding: UnsafeMutablePointer<UInt16>) -> Double {
        let deviceValue = engaged(holding) ? Self.read(control.setpoint, holding)
            : control.reversionSetpoint.map { Self.read($0, holding) } ?? 0
        var w = control.sign.device(deviceValue)
        w = min(max(w, -battery.maxPowerW), battery.maxPowerW)
        if w < 0, battery.socPct <= 0 { w = 0 }
        if w > 0, battery.socPct >= 100 { w = 0 }
        return w
    }

    /// Runs `dt` seconds at the power in force, then takes up the new target.
    mutating func step(dtSeconds dt: Double, holding: UnsafeMutablePointer<UInt16>, nowMs: Int64, voltage: Double) -> [String: Double] {
        if dt > 0 {
            let wh = powerW * dt / 3600
            if wh > 0 { importWh += wh } else { exportWh -= wh }
            if battery.capacityWh > 0 { battery.socPct = min(100, max(0, battery.socPct + wh / battery.capacityWh * 100)) }
        }
        powerW = target(holding)
        let flowing = powerW != 0
        return [
            "power_w": powerW,
            "soc_pct": (battery.socPct * 10).rounded() / 10,
            "import_wh": importWh,
            "export_wh": exportWh,
            "voltage_l1_v": voltage,
            "current_l1_a": abs(powerW) / voltage,
            "frequency_hz": 50,
            "capacity_wh": battery.capacityWh,
            "max_charge_w": battery.maxPowerW,
            "max_discharge_w": battery.maxPowerW,
            "max_power_w": battery.maxPowerW,
            "reversion_remaining_s": remainingS(holding, nowMs: nowMs),
            // Quasar: 1 charging, 11 discharging, 4 paused; SunSpec InvSt: 3 running, 7 standby.
            "charger_state": powerW > 0 ? 1 : powerW < 0 ? 11 : 4,
            "inverter_state": flowing ? 3 : 7,
            "error_code": 0,
            "charging": powerW > 0 ? 1 : 0,
        ]
    }
}
