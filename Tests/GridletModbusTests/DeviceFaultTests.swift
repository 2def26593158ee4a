import GridletCore
import GridletModbus
import GridletYAML
import Testing

/// Chargers that say they are in fault: the built-in profiles' fault points, and the simulator
/// playing a fault over real Modbus.
@Suite struct DeviceFaultTests {
    @Test func builtinFaultDefinitionsNameDocumentedPoints() throws {
        func fault(_ name: String) throws -> ChargerFault? { try #require(try ProfileLibrary.builtin(named: name)).control?.fault }
        #expect(try fault("vestel-evc04") == ChargerFault(point: "charge_point_state", values: [8: "faulted"]))
        let webasto = try #require(try fault("webasto-next"))
        #expect(webasto.point == "evse_error_code" && webasto.nonzero && webasto.values[3] == "EV communication error")
        let webastoProfile = try #require(try ProfileLibrary.builtin(named: "webasto-next"))
        #expect(webastoProfile.point("evse_error_code") == ProfilePoint(name: "evse_error_code", address: 1006, table: .input, type: .uint16))
        #expect(try fault("abb-terra-ac") == ChargerFault(point: "error_code", nonzero: true))
        #expect(try fault("bender-cc613") == ChargerFault(point: "cp_state", values: [5: "control pilot state E (error)"]))
        #expect(try fault("alfen-eve") == nil)   // its mode 3 state is a string
    }

    /// Every built-in charger with a fault point is served healthy, so a simulated site is not derated.
    @Test(arguments: ["vestel-evc04", "webasto-next", "abb-terra-ac", "bender-cc613"])
    func simulatedChargersAreHealthy(profileName: String) throws {
        let sim = try startSimulator(profileName)
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let fault = try #require(sim.profile.control?.fault)
        let values = try DeviceReader(profile: sim.profile).read(on: bus).get()
        #expect(values[fault.point] != nil)
        #expect(SiteReadings.faultReason(fault, values: values) == nil)
    }

    @Test func theSimulatorPlaysAChargerInFaultAndRecovers() throws {
        let sim = try startSimulator("vestel-evc04")
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let fault = try #require(sim.profile.control?.fault)
        let reader = DeviceReader(profile: sim.profile)
        sim.setFault(.device(nil))
        #expect(TestSupport.waitUntil(timeoutMs: 3000) { sim.currentValues()["charge_point_state"] == 8 })
        let faulted = try reader.read(on: bus).get()
        #expect(SiteReadings.faultReason(fault, values: faulted) == "faulted (charge_point_state = 8)")
        #expect(faulted["charging"] == 0 && faulted["power_w"] == 0)   // a charger in fault does not charge
        sim.setFault(.device(7))
        #expect(TestSupport.waitUntil(timeoutMs: 3000) { sim.currentValues()["charge_point_state"] == 7 })
        sim.setFault(.none)
        #expect(TestSupport.waitUntil(timeoutMs: 3000) { sim.currentValues()["charge_point_state"] == 2 })
        let healthy = try reader.read(on: bus).get()
        #expect(SiteReadings.faultReason(fault, values: healthy) == nil)
        #expect(healthy["charging"] == 1)
    }

    @Test func deviceFaultSyntax() {
        #expect(SimulatorFault("device") == .device(nil))
        #expect(SimulatorFault("device:8") == .device(8))
        #expect(SimulatorFault("device:0x400@255") == .device(0x400))
        #expect(SimulatorFault("device:eight") == nil)
        #expect(SimulatorFault("device:8")?.description == "device:8")
        #expect(SimulatorFault("device")?.description == "device")
    }
}
