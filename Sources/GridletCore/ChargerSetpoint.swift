/// Converts a limit in W into a charging current per phase (SPEC §2): A = W / (phases × V),
/// rounded down to the charger's resolution, clamped to the hardware maximum, and 0 A
/// (paused) below the charger's minimum current.
public struct ChargerSetpoint: Sendable, Equatable {
    public var amps: Double
    public var paused: Bool

    public static func compute(limitW: Double, phases: Int, voltage: Double, maxCurrent: Double, minCurrent: Double,
                               resolution: Double = 1) -> ChargerSetpoint {
        guard limitW.isFinite, limitW > 0, voltage > 0, phases > 0 else { return ChargerSetpoint(amps: 0, paused: true) }
        let raw = limitW / (Double(phases) * voltage)
        let step = resolution > 0 ? resolution : 1
        // A tiny epsilon keeps exact quotients (4140 W / 690 V = 6 A) from flooring to 5.
        var amps = ((raw + 1e-9) / step).rounded(.down) * step
        amps = min(amps, (maxCurrent / step).rounded(.down) * step)
        if amps < minCurrent { return ChargerSetpoint(amps: 0, paused: true) }
        return ChargerSetpoint(amps: amps, paused: false)
    }

    /// The voltage to convert with: the mean of the charger's plausible measured phase voltages,
    /// else the site meter's, else the nominal voltage.
    public static func voltage(charger: [Double?], siteMeter: [Double?], nominal: Double) -> Double {
        func mean(_ v: [Double?]) -> Double? {
            let ok = v.compactMap { $0 }.filter { $0 > 50 && $0 < 500 }
            return ok.isEmpty ? nil : ok.reduce(0, +) / Double(ok.count)
        }
        return mean(charger) ?? mean(siteMeter) ?? nominal
    }
}
