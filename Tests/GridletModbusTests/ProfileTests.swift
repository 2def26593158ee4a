import GridletCore
import GridletModbus
import GridletYAML
import Testing

@Suite struct ProfileTests {
    @Test func builtinProfilesParse() throws {
        #expect(ProfileLibrary.builtinNames.contains("eastron-sdm630"))
        #expect(ProfileLibrary.builtinNames.contains("vestel-evc04"))
        for name in ProfileLibrary.builtinNames {
            let p = try #require(try ProfileLibrary.builtin(named: name))
            #expect(p.name == name)
            #expect(!p.points.isEmpty)
            #expect(!p.sources.isEmpty)
            #expect(p.points.allSatisfy { !$0.verified })
        }
        #expect(try ProfileLibrary.builtin(named: "nope") == nil)
    }

    @Test func sdm630Facts() throws {
        let p = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        #expect(p.kind == .meter && p.defaultUnit == 1 && p.control == nil)
        #expect(p.point("power_w") == ProfilePoint(name: "power_w", address: 0x34, table: .input, type: .float32, unit: "W"))
        #expect(p.point("import_wh")?.scale == 1000)
        #expect(p.point("export_wh")?.address == 0x4A)
        #expect(p.point("frequency_hz")?.address == 0x46)
        #expect(p.point("voltage_l3_v")?.address == 4)
        #expect(p.point("current_l2_a")?.address == 8)
        #expect(p.point("power_l3_w")?.address == 16)
    }

    @Test func evc04Facts() throws {
        let p = try #require(try ProfileLibrary.builtin(named: "vestel-evc04"))
        #expect(p.kind == .charger && p.defaultUnit == 255 && p.transport == "tcp")
        #expect(p.point("charging")?.address == 1001)
        #expect(p.point("current_l1_a")?.scale == 0.001)
        #expect(p.point("power_w")?.type == .uint32)
        #expect(p.point("import_wh")?.scale == 100)
        #expect(p.point("number_of_phases")?.table == .input)
        let c = try #require(p.control)
        #expect(c.chargingCurrent == ProfileRegister(address: 5004))
        #expect(c.failsafeCurrent?.address == 2000 && c.failsafeTimeout?.address == 2002)
        #expect(c.alive?.address == 6000 && c.aliveValue == 1 && c.currentResolution == 1)
    }

    @Test func unknownKeyNamesPathAndLine() {
        let text = """
            name: x
            kind: meter
            points:
              power_w: { address: 52, type: float32 }
              import_wh:
                address: 72
                sclae: 1000
            """
        do {
            _ = try ProfileLibrary.parse(text, file: "x.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.path == "points.import_wh.sclae")
            #expect(error.line == 7)
            #expect(error.message == "unknown key")
            #expect(error.description == "x.yaml:7: points.import_wh.sclae: unknown key")
        }
    }

    @Test func badTypeIsRejected() {
        let text = """
            name: x
            kind: meter
            points:
              power_w: { address: 52, type: float16 }
            """
        do {
            _ = try ProfileLibrary.parse(text)
            Issue.record("expected an error")
        } catch {
            #expect(error.path == "points.power_w.type")
            #expect(error.line == 4)
            #expect(error.message.contains("float16"))
        }
    }

    @Test func otherValidation() {
        func fails(_ text: String, _ path: String) {
            do {
                _ = try ProfileLibrary.parse(text)
                Issue.record("expected an error at \(path)")
            } catch {
                #expect(error.path == path, "\(error)")
            }
        }
        fails("name: x\nkind: inverter\npoints: {a: {address: 1}}", "kind")
        fails("name: x\nkind: meter\npoints: {a: {address: 65535, type: uint32}}", "points.a.address")
        fails("name: x\nkind: meter\npoints: {a: {type: uint32}}", "points.a.address")
        fails("name: x\nkind: charger\npoints: {a: {address: 1}}", "control")
        fails("name: x\nkind: meter\npoints: {a: {address: 1}}\ncontrol: {charging_current: {address: 1}}", "control")
        fails("name: x\nkind: meter\ndefaults: {word_order: middle}\npoints: {a: {address: 1}}", "defaults.word_order")
        fails("kind: meter\npoints: {a: {address: 1}}", "name")
    }

    @Test func defaultsApplyAndPointsKeepOrder() throws {
        let p = try ProfileLibrary.parse("""
            name: x
            kind: meter
            defaults: { table: input, type: int32, word_order: lo_first, verified: true }
            points:
              z: { address: 10 }
              a: { address: 0, type: uint16, table: holding, verified: false, scale: 0.1 }
            """)
        #expect(p.points.map(\.name) == ["z", "a"])
        #expect(p.points[0] == ProfilePoint(name: "z", address: 10, table: .input, type: .int32, wordOrder: .loFirst, verified: true))
        #expect(p.points[1] == ProfilePoint(name: "a", address: 0, table: .holding, type: .uint16, wordOrder: .loFirst, scale: 0.1))
    }

    @Test func readPlanMergesAdjacentPoints() throws {
        let sdm = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        let blocks = DeviceReader(profile: sdm).blocks
        // 0..17 (voltages, currents, powers); 0x34..0x4B (power, frequency, energies: hole 0x36..0x45 is 16 > 8)
        #expect(blocks.map { [$0.address, $0.count] } == [[0, 18], [0x34, 2], [0x46, 6]])
        let evc = try #require(try ProfileLibrary.builtin(named: "vestel-evc04"))
        let eb = DeviceReader(profile: evc).blocks
        #expect(eb.map { [$0.address, $0.count] } == [[404, 1], [1000, 22], [1036, 2], [1502, 2]])
        #expect(DeviceReader(profile: sdm, maxHole: 16).blocks.count == 2)
        #expect(DeviceReader(profile: sdm, maxRegisters: 10, maxHole: 0).blocks.map(\.count) == [10, 8, 2, 6])
    }
}
