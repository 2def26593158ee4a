import GridletCore
import GridletYAML
import Testing

/// The `power:` and `layout:` sections of a profile (bidirectional devices).
@Suite struct ProfilePowerTests {
    static let head = """
        name: v2g
        kind: charger
        points:
          power_w: { address: 526, type: int16 }
          soc_pct: { address: 538 }

        """

    @Test func builtinBidirectionalProfilesDecode() throws {
        let q = try #require(try ProfileLibrary.builtin(named: "wallbox-quasar"))
        let qp = try #require(q.power)
        #expect(q.control == nil)
        #expect(qp.setpoint == ProfileRegister(address: 260, type: .int16))
        #expect(qp.sign == .importPositive)
        #expect(qp.reversionTimeout?.address == 88)
        #expect(qp.setup.map(\.register.address) == [81, 82, 83, 257])
        let s = try #require(try ProfileLibrary.builtin(named: "sunspec-der"))
        let sp = try #require(s.power)
        #expect(sp.setpoint == ProfileRegister(address: 40301, type: .int32, scaleFactorAddress: 40332))
        #expect(sp.sign == .exportPositive)
        #expect(sp.reversionSetpoint?.address == 40303)
        #expect(s.layout[40000] == 0x5375 && s.layout[40277] == 704 && s.layout[40352] == UInt16(bitPattern: -1))
        #expect(s.point("power_w")?.scale == -1)
        #expect(s.point("power_w")?.scaleFactorAddress == 40186)
        #expect(s.point("import_wh")?.type == .uint64)
    }

    @Test func aPowerOnlyChargerNeedsNoControlSection() throws {
        let p = try ProfileLibrary.parse(Self.head + """
            power:
              setpoint: { address: 260, type: int16 }
              sign: import_positive
            """)
        #expect(p.power?.setup.isEmpty == true)
    }

    @Test(arguments: [
        ("power:\n  setpoint: { address: 260, type: int16 }\n", "power.sign", "required key is missing"),
        ("power:\n  setpoint: { address: 260, type: int16 }\n  sign: plus\n", "power.sign", "expected import_positive"),
        ("power:\n  setpoint: { address: 260 }\n  sign: import_positive\n", "power.setpoint", "signed type"),
        ("power:\n  sign: import_positive\n", "power.setpoint", "required key is missing"),
        ("power:\n  setpoint: { address: 260, type: int16 }\n  sign: import_positive\n  setup:\n    - { address: 81 }\n",
         "power.setup[0].value", "required key is missing"),
        ("power:\n  setpoint: { address: 260, type: int16 }\n  sign: import_positive\n  rvrt: 1\n", "power.rvrt", "unknown"),
        ("layout: { 40000: 70000 }\npower:\n  setpoint: { address: 260, type: int16 }\n  sign: import_positive\n",
         "layout.40000", "register value"),
        ("", "control", "required key is missing"),
    ])
    func errorsNameThePath(tail: String, path: String, message: String) {
        do {
            _ = try ProfileLibrary.parse(Self.head + tail)
            Issue.record("accepted: \(tail)")
        } catch {
            #expect(error.path == path, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func aMeterCannotHaveAPowerSection() {
        #expect(throws: YAMLError.self) {
            try ProfileLibrary.parse("name: m\nkind: meter\npoints:\n  power_w: { address: 1 }\npower:\n  setpoint: { address: 2, type: int16 }\n  sign: import_positive\n")
        }
    }
}
