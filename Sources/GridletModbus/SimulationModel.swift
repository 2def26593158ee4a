import GridletCore
import Glibc

/// The physics of the simulated device, by canonical point name.
struct SimulationModel {
    let profile: DeviceProfile
    let frozen: Bool
    var t: Double = 0
    var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    var importWh: Double
    var exportWh: Double
    var sessionWh: Double = 0
    var setpointA: Double = 0
    let phases = 3

    let voltage: Double?
    /// Set by the engine before each step: the factor on every phase voltage (1 = no wobble).
    var voltageFactor = 1.0

    init(profile: DeviceProfile, frozen: Bool, voltage: Double? = nil) {
        self.voltage = voltage
        self.profile = profile
        self.frozen = frozen
        if profile.kind == .meter {
            importWh = 12_345_678.9
            exportWh = 1_234_567.8
        } else {
            importWh = 4_567_890
            exportWh = 0
            sessionWh = 3_217
        }
    }

    mutating func initialiseControl(holding: UnsafeMutablePointer<UInt16>) {
        guard let c = profile.control else { return }
        func put(_ r: ProfileRegister?, _ v: Double) {
            guard let r else { return }
            for (i, w) in RegisterCodec.encode(v, type: r.type, order: .hiFirst, scale: r.scale).enumerated() { holding[r.address + i] = w }
        }
        put(c.failsafeCurrent, 10)
        put(c.failsafeTimeout, 60)
        put(c.chargingCurrent, 16)
    }

    /// The value served on the profile's fault point while the charger plays a fault; nil: healthy.
    var faultValue: Double?

    /// Takes up a `.device` fault (the profile's first listed fault value unless one is given),
    /// or drops it for any other.
    mutating func play(_ fault: SimulatorFault) {
        guard case let .device(value) = fault, let f = profile.control?.fault else { faultValue = nil; return }
        faultValue = Double(value ?? f.values.keys.min() ?? f.bits.keys.min() ?? 1)
    }

    mutating func readControl(holding: UnsafeMutablePointer<UInt16>) {
        guard let r = profile.control?.chargingCurrent else { return }
        let regs = (0..<r.type.registerCount).map { holding[r.address + $0] }
        setpointA = RegisterCodec.decode(regs, type: r.type, order: .hiFirst, scale: r.scale) ?? 0
    }

    /// Uniform noise in -amplitude...amplitude (0 when frozen).
    mutating func noise(_ amplitude: Double) -> Double {
        if frozen { return 0 }
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return (Double(rng >> 11) / Double(1 << 53) * 2 - 1) * amplitude
    }

    mutating func step(dtSeconds dt: Double) -> [String: Double] {
        t += dt
        var v: [String: Double] = [:]
        let base = voltage.map { [$0, $0, $0] } ?? [231.37, 229.81, 230.52]
        let volts = [base[0] * voltageFactor + noise(0.6), base[1] * voltageFactor + noise(0.6), base[2] * voltageFactor + noise(0.6)]
        switch profile.kind {
        case .meter:
            let swing = frozen ? 0 : 700 * sin(t / 9)
            let phasePower = [1012.37 + swing / 3 + noise(25), 987.61 + swing / 3 + noise(25), 1043.18 + swing / 3 + noise(25)]
            let total = phasePower.reduce(0, +)
            for i in 0..<3 {
                v["voltage_l\(i + 1)_v"] = volts[i]
                v["power_l\(i + 1)_w"] = phasePower[i]
                v["current_l\(i + 1)_a"] = phasePower[i] / volts[i]
            }
            importWh += max(total, 0) * dt / 3600
            exportWh += max(-total, 0) * dt / 3600
            v["power_w"] = total
            v["frequency_hz"] = 49.987 + noise(0.02)
            v["import_wh"] = importWh
            v["export_wh"] = exportWh
        case .charger:
            // A charger in fault does not charge.
            let charging = setpointA >= 6 && faultValue == nil
            let amps = charging ? setpointA : 0
            var total = 0.0
            for i in 0..<3 {
                let current = charging ? max(0, amps - 0.12 + noise(0.05)) : 0
                v["voltage_l\(i + 1)_v"] = volts[i]
                v["current_l\(i + 1)_a"] = frozen ? amps : current
                total += frozen ? 0 : current * volts[i]
            }
            let power = frozen || !charging ? amps * (voltage ?? 230) * Double(phases) : total
            importWh += power * dt / 3600
            sessionWh += power * dt / 3600
            v["power_w"] = power
            v["charging"] = charging ? 1 : 0
            v["vehicle_connected"] = 1
            v["cable_state"] = 3
            v["charge_point_state"] = charging ? 2 : 1
            v["number_of_phases"] = Double(phases)
            v["setpoint_a"] = setpointA
            v["import_wh"] = importWh
            v["energy_wh"] = importWh
            v["session_energy_wh"] = sessionWh
            v["frequency_hz"] = 49.987 + noise(0.02)
            serveFaultPoint(&v)
        }
        return v
    }

    /// The profile's fault point: `faultValue` while playing a fault, else a value the profile
    /// does not read as a fault (the model's own, e.g. charge_point_state, when it is one; an
    /// unknown point's plausible constant 1 would be an error code).
    private func serveFaultPoint(_ v: inout [String: Double]) {
        guard let f = profile.control?.fault, let p = profile.point(f.point) else { return }
        if let faultValue { v[f.point] = faultValue; return }
        if f.reason(v[f.point] ?? Self.fallback(for: p)) != nil {
            v[f.point] = Double((0...65_535).first { f.reason(Double($0)) == nil } ?? 0)
        }
    }

    /// A plausible constant for points the model does not know.
    static func fallback(for p: ProfilePoint) -> Double {
        switch p.unit {
        case "V": return 230.4
        case "A": return 1.234
        case "W": return 123.4
        case "Hz": return 50.01
        case "Wh": return 98_765
        default: return 1
        }
    }
}
