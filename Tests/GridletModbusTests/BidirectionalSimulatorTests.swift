import Glibc
import GridletCore
@testable import GridletModbus
import GridletYAML
import Testing

/// `gridlet simulate` for bidirectional profiles: signed power that follows the setpoint in the
/// device's own sign and scale once set up, a state of charge that moves with it, and the
/// device's own reversion when the controller goes silent.
@Suite(.serialized) struct BidirectionalSimulatorTests {
    static func start(_ name: String, battery: SimulatedBattery) throws -> ModbusSimulator {
        let profile = try #require(try ProfileLibrary.builtin(named: name))
        let sim = ModbusSimulator(profile: profile, port: TestSupport.freePort(), frozen: true, updateIntervalMs: 50, battery: battery)
        try sim.start()
        return sim
    }

    static func write(_ bus: ModbusBus, _ r: ProfileRegister, raw: Double) throws {
        let regs = RegisterCodec.encode(raw, type: r.type, order: .hiFirst, scale: r.scale)
        _ = try bus.perform(.writeMultiple(address: r.address, values: regs, unit: 1, deviceName: "dut")).get()
    }

    static func engage(_ bus: ModbusBus, _ power: BidirectionalControl) throws {
        for w in power.setup { try write(bus, w.register, raw: w.value) }
    }

    @Test func sunspecFollowsWSetInItsOwnSignAndScaleAndTheSoCFalls() throws {
        let sim = try Self.start("sunspec-der", battery: SimulatedBattery(capacityWh: 100, socPct: 50, maxPowerW: 7400))
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let power = try #require(sim.profile.power)
        // Not set up: WSet alone is not followed.
        try Self.write(bus, power.setpoint, raw: 500)
        usleep(300_000)
        #expect(sim.currentValues()["power_w"] == 0)
        try Self.engage(bus, power)
        try Self.write(bus, power.setpoint, raw: 500)   // WSet_SF = 1: 5000 W, SunSpec + = discharge
        #expect(TestSupport.waitUntil(timeoutMs: 1000) { sim.currentValues()["power_w"] == -5000 })
        let soc0 = try #require(sim.currentValues()["soc_pct"])
        #expect(TestSupport.waitUntil(timeoutMs: 3000) { (sim.currentValues()["soc_pct"] ?? 100) < soc0 - 2 })
        // The register holds the device's sign: 701 W is +5000 (generation).
        let w = try bus.read(table: .holding, address: 40080, count: 1, unit: 1).get()
        #expect(Int16(bitPattern: w[0]) == 5000)
        let values = try DeviceReader(profile: sim.profile).read(on: bus).get()
        #expect(values["power_w"] == -5000)
        #expect(values["setpoint_w"] == -5000)
        #expect((values["export_wh"] ?? nil).map { $0 > 250_000 } == true)
    }

    @Test func quasarRevertsByItselfAfterItsIdleTimeoutAndHandsControlBack() throws {
        let sim = try Self.start("wallbox-quasar", battery: SimulatedBattery(capacityWh: 60_000, socPct: 80, maxPowerW: 7400))
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let power = try #require(sim.profile.power)
        try Self.write(bus, try #require(power.reversionTimeout), raw: 1)   // 1 s
        try Self.engage(bus, power)
        try Self.write(bus, power.setpoint, raw: -3000)
        #expect(TestSupport.waitUntil(timeoutMs: 500) { sim.currentValues()["power_w"] == -3000 })
        #expect(sim.currentValues()["charger_state"] == 11)   // discharging
        // Refreshed within the timeout: it keeps going.
        for _ in 0..<3 {
            usleep(500_000)
            try Self.write(bus, power.setpoint, raw: -3000)
        }
        #expect(sim.currentValues()["power_w"] == -3000)
        // Silent: it stops by itself and control returns to the user (81 = 0).
        #expect(TestSupport.waitUntil(timeoutMs: 2500) { sim.currentValues()["power_w"] == 0 })
        #expect(sim.currentValues()["control_mode"] == 0)
        #expect(sim.currentValues()["setpoint_w"] == 0)
    }

    @Test func aSetpointBeyondTheDeviceIsCappedAndAnEmptyBatteryStopsDischarging() throws {
        let sim = try Self.start("wallbox-quasar", battery: SimulatedBattery(capacityWh: 10, socPct: 1, maxPowerW: 7400))
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let power = try #require(sim.profile.power)
        try Self.engage(bus, power)
        try Self.write(bus, power.setpoint, raw: 9000)
        #expect(TestSupport.waitUntil(timeoutMs: 500) { sim.currentValues()["power_w"] == 7400 })
        try Self.write(bus, power.setpoint, raw: -7400)
        #expect(TestSupport.waitUntil(timeoutMs: 3000) { sim.currentValues()["soc_pct"] == 0 && sim.currentValues()["power_w"] == 0 })
    }
}
