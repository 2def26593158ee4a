import Glibc
import GridletCore
import GridletModbus
import GridletYAML
import Testing

/// Per-profile facts checked against the raw registers the simulator serves: word order, signs
/// and scale are what the profile says (not just "reader and simulator agree").
@Suite struct ProfileConformanceTests {
    func rawRegisters(_ bus: ModbusBus, _ p: ProfilePoint, unit: Int) throws -> [UInt16] {
        try bus.read(table: p.table, address: p.address, count: p.type.registerCount, unit: unit).get()
    }

    @Test func carloGavazziWordOrderIsLowWordFirst() throws {
        let sim = try startSimulator("carlo-gavazzi-em24")
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let p = try #require(sim.profile.point("import_wh"))
        let regs = try rawRegisters(bus, p, unit: 1)
        // lo_first: the first register is the least significant word; raw counts 0.1 kWh.
        let raw = UInt32(regs[1]) << 16 | UInt32(regs[0])
        #expect(Double(raw) * 100 == sim.currentValues()["import_wh"])
        #expect(regs[1] != 0 && regs[0] != regs[1], "a value that shows the word order: \(regs)")
        let v = try #require(sim.profile.point("voltage_l1_v"))
        let vr = try rawRegisters(bus, v, unit: 1)
        #expect(Double(Int32(bitPattern: UInt32(vr[1]) << 16 | UInt32(vr[0]))) * 0.1 == sim.currentValues()["voltage_l1_v"])
    }

    @Test func abbSetpointIsMilliampsInTwoRegisters() throws {
        let sim = try startSimulator("abb-terra-ac")
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let ctl = try #require(sim.profile.control)
        let regs = RegisterCodec.encode(10, type: ctl.chargingCurrent.type, order: .hiFirst, scale: ctl.chargingCurrent.scale)
        #expect(regs == [0, 10_000])
        #expect((try? bus.write(address: ctl.chargingCurrent.address, values: regs, unit: 1).get()) != nil)
        #expect(sim.writes.last?.values == [0, 10_000] && sim.writes.last?.address == 0x4100)
        let values = try DeviceReader(profile: sim.profile).read(on: bus).get()
        #expect(values["current_l1_a"] == 10)
    }

    @Test func alfenSetpointIsFloat32() throws {
        let sim = try startSimulator("alfen-eve")
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let ctl = try #require(sim.profile.control)
        #expect(ctl.setpointValidityS == 60 && ctl.failsafeCurrent == nil)
        let regs = RegisterCodec.encode(7.5, type: .float32, order: .hiFirst)
        #expect(regs == [0x40F0, 0x0000])
        #expect((try? bus.write(address: 1210, values: regs, unit: 1).get()) != nil)
        let values = try DeviceReader(profile: sim.profile).read(on: bus).get()
        #expect(values["setpoint_a"] == 7.5)
        #expect(values["import_wh"] == sim.currentValues()["import_wh"])
    }

    @Test func benderAndWebastoControlRegisters() throws {
        let bender = try #require(try ProfileLibrary.builtin(named: "bender-cc613")?.control)
        #expect(bender.chargingCurrent.address == 1000 && bender.failsafeCurrent?.address == 131 && bender.failsafeTimeout?.address == 132)
        let webasto = try #require(try ProfileLibrary.builtin(named: "webasto-next"))
        #expect(webasto.control?.refreshFraction == 0.5 && webasto.control?.alive?.address == 6000)
        #expect(webasto.point("import_wh")?.table == .holding)
    }

    // MARK: SunSpec

    func sunspecSimulator(model: Int, base: Int = 40000, unimplemented: Set<String> = []) throws -> ModbusSimulator {
        let profile = try #require(try ProfileLibrary.builtin(named: "sunspec-meter"))
        var lastError: ModbusError?
        for _ in 0..<5 {
            let sim = ModbusSimulator(profile: profile, port: TestSupport.freePort(), frozen: true, sunspecModel: model,
                                      sunspecBase: base, unimplemented: unimplemented)
            do { try sim.start(); return sim } catch { lastError = error }
        }
        throw lastError!
    }

    @Test(arguments: [(203, 40000), (213, 40000), (201, 0), (211, 50000)])
    func sunspecConformance(model: Int, base: Int) throws {
        let sim = try sunspecSimulator(model: model, base: base, unimplemented: ["power_l3_w", "export_wh"])
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let reader = DeviceReader(profile: sim.profile, deviceName: "sunspec")
        #expect(reader.blocks.isEmpty, "nothing is known before discovery")
        let values = try reader.read(on: bus).get()
        let found = try #require(reader.sunspecModel)
        #expect(found.id == model && found.address == base + 70)
        let expected = sim.currentValues()
        for point in sim.profile.points {
            if ["power_l3_w", "export_wh"].contains(point.name) {
                #expect(values[point.name] == .some(nil), "\(point.name) is not implemented: missing, not a number")
                #expect(expected[point.name] == nil)
            } else {
                let got = try #require(values[point.name] ?? nil, "\(point.name) missing")
                #expect(got == expected[point.name], "model \(model) \(point.name)")
            }
        }
        // Scale: int models carry scale factors (V_SF -1 -> 0.1 V steps), float models the value itself.
        let v1 = try #require(values["voltage_l1_v"] ?? nil)
        #expect(abs(v1 - 231.37) < (SunSpec.intMeterModels.contains(model) ? 0.051 : 1e-4))
        #expect(values["power_w"]! == expected["power_w"])
        // The cached map is used from now on: a second read needs no discovery.
        let before = sim.requestCount
        _ = try reader.read(on: bus).get()
        #expect(sim.requestCount - before == reader.blocks.count)
    }

    @Test func sunspecRawLayoutIsWhatTheStandardSays() throws {
        let sim = try sunspecSimulator(model: 203)
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        #expect(try bus.read(table: .holding, address: 40000, count: 4, unit: 1).get() == [0x5375, 0x6E53, 1, 66])
        let m = 40070
        let head = try bus.read(table: .holding, address: m, count: 23, unit: 1).get()
        #expect(head[0] == 203 && head[1] == 105)
        // W at offset 18 with W_SF at 22 (0), PhVphA at 8 with V_SF at 15 (-1).
        #expect(Double(Int16(bitPattern: head[18])) == sim.currentValues()["power_w"])
        #expect(try bus.read(table: .holding, address: m + 2 + 105, count: 1, unit: 1).get() == [0xFFFF])
        #expect(Int16(bitPattern: try bus.read(table: .holding, address: m + 15, count: 1, unit: 1).get()[0]) == -1)
    }

    @Test func sunspecWithoutMarkerIsReportedAsSuch() throws {
        let sim = try startSimulator("eastron-sdm630")   // no SunS anywhere
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let profile = try #require(try ProfileLibrary.builtin(named: "sunspec-meter"))
        let r = DeviceReader(profile: profile, deviceName: "pv").read(on: bus)
        guard case let .failure(e) = r else { Issue.record("expected failure"); return }
        #expect(e.description.contains("no SunSpec marker 'SunS' at 40000, 0, 50000"), "\(e)")
    }

    @Test func sentinelsAndScaleFactorsDecode() {
        let p = ProfilePoint(name: "w", address: 10, table: .holding, type: .int16, scaleFactorAddress: 12, notImplementedSentinels: true)
        #expect(PointCodec.decode(p, [0x8000][...], sf: 0) == nil, "int16 not implemented")
        #expect(PointCodec.decode(p, [1234][...], sf: 0x8000) == nil, "sunssf not implemented")
        #expect(PointCodec.decode(p, [1234][...], sf: UInt16(bitPattern: -2)) == 12.34)
        #expect(PointCodec.decode(p, [0xFFFE][...], sf: 1) == -20)
        var u = p; u.type = .uint16
        #expect(PointCodec.decode(u, [0xFFFF][...], sf: 0) == nil)
        var f = p; f.type = .float32; f.scaleFactorAddress = nil
        #expect(PointCodec.decode(f, [0x7FC0, 0][...], sf: nil) == nil)
        var acc = p; acc.type = .uint32
        #expect(PointCodec.decode(acc, [0, 0][...], sf: 0) == nil)
        #expect(PointCodec.decode(acc, [1, 0][...], sf: 0) == 65536)
        // Without sentinels 0x8000 is just -32768.
        var plain = p; plain.notImplementedSentinels = false; plain.scaleFactorAddress = nil
        #expect(PointCodec.decode(plain, [0x8000][...], sf: nil) == -32768)
    }
}
