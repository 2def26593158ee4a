import Testing
@testable import GridletCore

@Suite struct ChargerSetpointTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var w: Double, phases: Int, v: Double, max: Double, min: Double, res: Double, amps: Double, paused: Bool
        var testDescription: String { "\(w) W \(phases)ph \(v) V -> \(amps) A\(paused ? " paused" : "")" }
    }

    @Test(arguments: [
        Row(w: 4140, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 6, paused: false),
        Row(w: 1000, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: 100_000, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 32, paused: false),
        Row(w: 4139, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: 4829, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 6, paused: false),
        Row(w: 4830, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 7, paused: false),
        Row(w: 11_040, phases: 3, v: 230, max: 16, min: 6, res: 1, amps: 16, paused: false),
        Row(w: 7360, phases: 1, v: 230, max: 32, min: 6, res: 1, amps: 32, paused: false),
        Row(w: 3000, phases: 1, v: 230, max: 32, min: 6, res: 1, amps: 13, paused: false),
        Row(w: 3000, phases: 1, v: 230, max: 32, min: 6, res: 0.1, amps: 13, paused: false),
        Row(w: 3045, phases: 1, v: 230, max: 32, min: 6, res: 0.5, amps: 13, paused: false),
        Row(w: 3105, phases: 1, v: 230, max: 32, min: 6, res: 0.5, amps: 13.5, paused: false),
        Row(w: 100_000, phases: 1, v: 230, max: 31.7, min: 6, res: 0.5, amps: 31.5, paused: false),
        Row(w: 1380, phases: 1, v: 230, max: 32, min: 6, res: 1, amps: 6, paused: false),
        Row(w: 0, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: -500, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: .nan, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: .infinity, phases: 3, v: 230, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: 5000, phases: 0, v: 230, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: 5000, phases: 3, v: 0, max: 32, min: 6, res: 1, amps: 0, paused: true),
        Row(w: 4140, phases: 3, v: 230, max: 32, min: 6, res: 0, amps: 6, paused: false),
    ])
    func compute(r: Row) {
        let s = ChargerSetpoint.compute(limitW: r.w, phases: r.phases, voltage: r.v, maxCurrent: r.max, minCurrent: r.min,
                                        resolution: r.res)
        #expect(s == ChargerSetpoint(amps: r.amps, paused: r.paused))
    }

    @Test func neverExceedsLimitOrMaxAndRespectsResolution() {
        for res in [0.1, 0.5, 1.0] {
            for w in stride(from: 0.0, through: 30_000, by: 37) {
                let s = ChargerSetpoint.compute(limitW: w, phases: 3, voltage: 230, maxCurrent: 32, minCurrent: 6, resolution: res)
                #expect(s.amps <= 32)
                #expect(s.amps * 3 * 230 <= w + 1e-6, "\(w) W res \(res) -> \(s.amps)")
                #expect(s.paused == (s.amps == 0))
                if !s.paused {
                    #expect(s.amps >= 6)
                    let steps = s.amps / res
                    #expect(abs(steps - steps.rounded()) < 1e-6)
                    // Rounded down, not further: one more step would exceed the limit or the max.
                    #expect((s.amps + res) * 690 > w - 1e-6 || s.amps + res > 32 + 1e-9)
                }
            }
        }
    }

    @Test(arguments: [
        ([230.0, 232, 228] as [Double?], [240.0] as [Double?], 230.0, 230.0),
        ([nil, nil, nil], [240, 242, nil], 230, 241),
        ([0, 0, 0], [], 230, 230),
        ([10, 600, 231], [], 230, 231),
        ([], [], 120, 120),
    ])
    func voltage(charger: [Double?], site: [Double?], nominal: Double, expected: Double) {
        #expect(ChargerSetpoint.voltage(charger: charger, siteMeter: site, nominal: nominal) == expected)
    }
}
