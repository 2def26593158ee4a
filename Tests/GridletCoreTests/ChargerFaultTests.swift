import GridletCore
import Testing

/// YAML documents built by hand (the core's tests do not link libyaml), with the lines a parser
/// would report, so errors can be checked for key path and line.
private enum Doc {
    static func s(_ text: String, line: Int) -> YAMLNode { YAMLNode(.scalar(text, quoted: false), line: line) }
    static func map(line: Int, _ pairs: [(String, YAMLNode)]) -> YAMLNode {
        YAMLNode(.mapping(pairs.map { (key: $0.0, keyLine: $0.1.line, value: $0.1) }), line: line)
    }
    static func list(line: Int, _ items: [String]) -> YAMLNode { YAMLNode(.sequence(items.map { s($0, line: line) }), line: line) }

    /// ```yaml
    /// 1 name: evse
    /// 2 kind: charger
    /// 3 points:
    /// 4   charge_point_state: { address: 1000 }
    /// 5   error_code: { address: 1006 }
    /// 6 control:
    /// 7   charging_current: { address: 5004 }
    /// 8   fault: ...              # `fault`, its keys on lines 8, 9, 10, ...
    /// ```
    static func charger(fault: YAMLNode?) -> YAMLNode {
        var control: [(String, YAMLNode)] = [("charging_current", map(line: 7, [("address", s("5004", line: 7))]))]
        if let fault { control.append(("fault", fault)) }
        return map(line: 1, [
            ("name", s("evse", line: 1)), ("kind", s("charger", line: 2)),
            ("points", map(line: 4, [("charge_point_state", map(line: 4, [("address", s("1000", line: 4))])),
                                     ("error_code", map(line: 5, [("address", s("1006", line: 5))]))])),
            ("control", map(line: 7, control)),
        ])
    }

    /// `fault:` with one key per line from line 8.
    static func fault(_ pairs: [(String, (Int) -> YAMLNode)]) -> YAMLNode {
        map(line: 8, pairs.enumerated().map { ($0.element.0, $0.element.1(8 + $0.offset)) })
    }
}

@Suite struct ChargerFaultDecodingTests {
    func decode(_ fault: YAMLNode?) throws(YAMLError) -> ChargerFault? {
        try DeviceProfile.decode(Doc.charger(fault: fault), file: "evse.yaml").control?.fault
    }

    func error(_ fault: YAMLNode) -> YAMLError? {
        do { _ = try decode(fault); return nil } catch { return error }
    }

    @Test func aProfileWithoutFaultHasNone() throws {
        #expect(try decode(nil) == nil)
    }

    @Test func valuesWithTextsAListOfCodesBitsAndNonzero() throws {
        let states = Doc.fault([("point", { Doc.s("charge_point_state", line: $0) }),
                                ("values", { Doc.map(line: $0, [("8", Doc.s("faulted", line: $0)), ("7", Doc.s("", line: $0))]) })])
        #expect(try decode(states) == ChargerFault(point: "charge_point_state", values: [8: "faulted", 7: ""]))

        let list = Doc.fault([("point", { Doc.s("charge_point_state", line: $0) }), ("values", { Doc.list(line: $0, ["5", "0x6"]) })])
        #expect(try decode(list) == ChargerFault(point: "charge_point_state", values: [5: "", 6: ""]))

        let code = Doc.fault([("point", { Doc.s("error_code", line: $0) }), ("nonzero", { Doc.s("true", line: $0) }),
                              ("bits", { Doc.map(line: $0, [("0x0400", Doc.s("relay fault", line: $0))]) })])
        #expect(try decode(code) == ChargerFault(point: "error_code", nonzero: true, bits: [0x400: "relay fault"]))
    }

    @Test func aPointTheProfileDoesNotHaveIsNamedWithPathAndLine() throws {
        let e = try #require(error(Doc.fault([("point", { Doc.s("eror_code", line: $0) }), ("nonzero", { Doc.s("true", line: $0) })])))
        #expect(e.path == "control.fault.point" && e.line == 8)
        #expect(e.description == "evse.yaml:8: control.fault.point: no point 'eror_code' in this profile; name one of: charge_point_state, error_code")
    }

    @Test func aFaultThatNamesNoFaultValueSaysWhatToAdd() throws {
        let e = try #require(error(Doc.fault([("point", { Doc.s("error_code", line: $0) }), ("nonzero", { Doc.s("false", line: $0) })])))
        #expect(e.path == "control.fault" && e.line == 8)
        #expect(e.message.contains("say which values of 'error_code' mean fault"))
        #expect(e.message.contains("nonzero: true") && e.message.contains("values:") && e.message.contains("bits:"))
    }

    @Test func badCodesAndUnknownKeysAreNamed() throws {
        let point: (String, (Int) -> YAMLNode) = ("point", { Doc.s("error_code", line: $0) })
        let zeroBit = try #require(error(Doc.fault([point, ("bits", { Doc.map(line: $0, [("0", Doc.s("none", line: $0))]) })])))
        #expect(zeroBit.path == "control.fault.bits.0" && zeroBit.line == 9)
        #expect(zeroBit.message.contains("expected an integer code in 1...4294967295"))

        let twice = try #require(error(Doc.fault([point, ("values", { Doc.map(line: $0, [("8", Doc.s("a", line: $0)), ("0x8", Doc.s("b", line: $0))]) })])))
        #expect(twice.path == "control.fault.values.0x8" && twice.message == "code 8 is listed twice")

        let word = try #require(error(Doc.fault([point, ("values", { Doc.list(line: $0, ["faulted"]) })])))
        #expect(word.path == "control.fault.values.faulted" && word.line == 9)

        let scalar = try #require(error(Doc.fault([point, ("values", { Doc.s("8", line: $0) })])))
        #expect(scalar.path == "control.fault.values" && scalar.message.contains("{ 8: faulted }"))

        let unknown = try #require(error(Doc.fault([point, ("nonzero", { Doc.s("true", line: $0) }), ("mask", { Doc.s("0xFF", line: $0) })])))
        #expect(unknown.path == "control.fault.mask" && unknown.line == 10 && unknown.message == "unknown key")

        let noPoint = try #require(error(Doc.fault([("nonzero", { Doc.s("true", line: $0) })])))
        #expect(noPoint.path == "control.fault.point" && noPoint.message == "required key is missing")
    }
}

@Suite struct ChargerFaultReasonTests {
    @Test func listedValuesAreFaultsWithTheirText() {
        let f = ChargerFault(point: "charge_point_state", values: [8: "faulted", 7: ""])
        #expect(f.reason(8) == "faulted (charge_point_state = 8)")
        #expect(f.reason(7) == "charge_point_state = 7")
        #expect(f.reason(2) == nil)
        #expect(f.reason(0) == nil)
        #expect(f.reason(8.5) == nil)
    }

    @Test func nonzeroMakesEveryOtherCodeAFaultAndListedCodesGiveTheText() {
        let f = ChargerFault(point: "error_code", nonzero: true, values: [3: "EV communication error"])
        #expect(f.reason(0) == nil)
        #expect(f.reason(3) == "EV communication error (error_code = 3)")
        #expect(f.reason(12) == "error_code = 12")
        #expect(f.reason(0.25) == "error_code = 0.25")
    }

    @Test func bitsNameEverySetBitInHex() {
        let f = ChargerFault(point: "error_code", bits: [0x0002: "residual current", 0x0400: "relay fault", 0x8000: ""])
        #expect(f.reason(0x0402) == "residual current, relay fault (error_code = 0x402)")
        #expect(f.reason(0x8000) == "error_code = 0x8000")
        #expect(f.reason(0x0001) == nil)           // a bit not listed, without nonzero
        #expect(f.reason(0) == nil)
        let any = ChargerFault(point: "error_code", nonzero: true, bits: [0x0002: "residual current"])
        #expect(any.reason(0x0001) == "error_code = 1")
    }
}

@Suite struct SiteReadingsFaultTests {
    let stateFault = ChargerFault(point: "charge_point_state", values: [8: "faulted"])

    func site() -> SiteReadings {
        SiteReadings(roles: [.siteMeter, .charger], nominalVoltage: 230, meterStaleAfterMs: 10_000, startedMonoMs: 0)
    }

    @Test func theReasonComesFromTheDefinitionsPointInTheLatestValues() {
        #expect(SiteReadings.faultReason(stateFault, values: ["charge_point_state": 8]) == "faulted (charge_point_state = 8)")
        #expect(SiteReadings.faultReason(stateFault, values: ["charge_point_state": 2]) == nil)
        #expect(SiteReadings.faultReason(stateFault, values: ["charge_point_state": Double?.none]) == nil)   // not implemented
        #expect(SiteReadings.faultReason(stateFault, values: ["power_w": 8]) == nil)
    }

    @Test func enteringAndLeavingAFaultAreReportedOnceEach() {
        var s = site()
        _ = s.polled(1, values: ["charge_point_state": 2], nowWall: 0, nowMono: 100)
        #expect(s.assessFault(1, definition: stateFault) == .none)
        _ = s.polled(1, values: ["charge_point_state": 8], nowWall: 0, nowMono: 200)
        #expect(s.assessFault(1, definition: stateFault) == .entered("faulted (charge_point_state = 8)"))
        #expect(s.health[1].fault == "faulted (charge_point_state = 8)")
        _ = s.polled(1, values: ["charge_point_state": 8], nowWall: 0, nowMono: 300)
        #expect(s.assessFault(1, definition: stateFault) == .none)
        #expect(s.assessFault(1, definition: stateFault) == .none)
        _ = s.polled(1, values: ["charge_point_state": 1], nowWall: 0, nowMono: 400)
        #expect(s.assessFault(1, definition: stateFault) == .cleared("faulted (charge_point_state = 8)"))
        #expect(s.health[1].fault == nil)
        #expect(s.assessFault(1, definition: stateFault) == .none)
    }

    @Test func aChargerThatFallsSilentInFaultStaysInFault() {
        var s = site()
        _ = s.polled(1, values: ["charge_point_state": 8], nowWall: 0, nowMono: 100)
        #expect(s.assessFault(1, definition: stateFault) == .entered("faulted (charge_point_state = 8)"))
        _ = s.failed(1, error: "timeout")
        #expect(s.assessFault(1, definition: stateFault) == .none)
        #expect(s.health[1].fault == "faulted (charge_point_state = 8)")
        _ = s.polled(1, values: ["charge_point_state": 2], nowWall: 0, nowMono: 5000)
        #expect(s.assessFault(1, definition: stateFault) == .cleared("faulted (charge_point_state = 8)"))
    }

    @Test func aDifferentFaultIsANewEntryAndNoDefinitionMeansNoFault() {
        var s = site()
        let codes = ChargerFault(point: "error_code", nonzero: true, values: [3: "EV communication error"])
        _ = s.polled(1, values: ["error_code": 3], nowWall: 0, nowMono: 100)
        #expect(s.assessFault(1, definition: codes) == .entered("EV communication error (error_code = 3)"))
        _ = s.polled(1, values: ["error_code": 9], nowWall: 0, nowMono: 200)
        #expect(s.assessFault(1, definition: codes) == .entered("error_code = 9"))
        #expect(s.assessFault(1, definition: nil) == .cleared("error_code = 9"))
        _ = s.polled(0, values: ["error_code": 9], nowWall: 0, nowMono: 300)
        #expect(s.assessFault(0, definition: nil) == .none)
    }
}
