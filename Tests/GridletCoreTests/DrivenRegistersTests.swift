import GridletCore
import Testing

/// `modbus write` through the running daemon may not touch the registers the daemon drives.
@Suite struct DrivenRegistersTests {
    static let evse = DeviceConfig(name: "evse", bus: "lan", unit: 255, profile: "vestel-evc04", role: .charger,
                                   maxCurrent: 16)
    static let control = ChargerControl(
        chargingCurrent: ProfileRegister(address: 5004), failsafeCurrent: ProfileRegister(address: 2000),
        failsafeTimeout: ProfileRegister(address: 2002, type: .uint32), alive: ProfileRegister(address: 6000))

    static func write(_ address: Int, _ values: [UInt16] = [10]) -> ModbusOperation {
        .write(function: values.count == 1 ? 6 : 16, address: address, values: values)
    }

    @Test func everyControlRegisterOfTheProfileIsDriven() {
        let driven = DrivenRegister.of(Self.evse, control: Self.control)
        #expect(driven.map(\.purpose) == [.chargingCurrent, .failsafeCurrent, .failsafeTimeout, .alive])
        #expect(driven.map(\.addresses) == [5004..<5005, 2000..<2001, 2002..<2004, 6000..<6001])
        let setpointOnly = DrivenRegister.of(Self.evse, control: ChargerControl(chargingCurrent: ProfileRegister(address: 1210)))
        #expect(setpointOnly.map(\.purpose) == [.chargingCurrent])
    }

    @Test func aBidirectionalDevicesPowerRegistersAreDrivenToo() throws {
        let power = BidirectionalControl(setpoint: ProfileRegister(address: 40301, type: .int32, scaleFactorAddress: 40332),
                                         sign: .exportPositive, reversionTimeout: ProfileRegister(address: 40308, type: .uint32),
                                         reversionSetpoint: ProfileRegister(address: 40303, type: .int32),
                                         setup: [SetupWrite(register: ProfileRegister(address: 40299), value: 1)])
        let driven = DrivenRegister.of(Self.evse, power: power)
        #expect(driven.map(\.purpose) == [.powerSetpoint, .reversion, .reversion, .setup])
        #expect(driven.map(\.addresses) == [40301..<40303, 40308..<40310, 40303..<40305, 40299..<40300])
        let why = try #require(DrivenRegisters(driven).refusal(of: Self.write(40302), bus: "lan", unit: 255))
        #expect(why.contains("power.setpoint") && why.contains("setpoint_w"))
        #expect(DrivenRegisters(driven).refusal(of: Self.write(40320), bus: "lan", unit: 255) == nil)
    }

    @Test func aWriteToTheSetpointIsRefusedAndTheMessageSaysWhyAndWhatToDo() throws {
        let guardian = DrivenRegisters(DrivenRegister.of(Self.evse, control: Self.control))
        let why = try #require(guardian.refusal(of: Self.write(5004), bus: "lan", unit: 255))
        #expect(why.hasPrefix("refused: holding register 5004 is the charging_current register of charger evse (bus lan, unit 255)"))
        #expect(why.contains("overwritten"))
        #expect(why.contains("more than the limit in force"))
        #expect(why.contains("cmd/event"))
        #expect(why.contains("stop the daemon"))
    }

    @Test func aWriteThatOverlapsADrivenRegisterIsRefused() throws {
        let guardian = DrivenRegisters(DrivenRegister.of(Self.evse, control: Self.control))
        // fc 16 over 5002...5005 covers the setpoint; the second word of the 32-bit failsafe timeout.
        #expect(guardian.refusal(of: Self.write(5002, [0, 0, 0, 0]), bus: "lan", unit: 255) != nil)
        let timeout = try #require(guardian.refusal(of: Self.write(2003), bus: "lan", unit: 255))
        #expect(timeout.hasPrefix("refused: holding registers 2002-2003 is the failsafe_timeout register"))
        #expect(timeout.contains("fall back to it instead of the safe current"))
        #expect(guardian.refusal(of: Self.write(6000), bus: "lan", unit: 255)?.contains("alive register") == true)
    }

    @Test func readsOtherRegistersOtherUnitsAndOtherBusesStayAllowed() {
        let guardian = DrivenRegisters(DrivenRegister.of(Self.evse, control: Self.control))
        #expect(guardian.refusal(of: .read(function: 3, address: 5004, count: 1), bus: "lan", unit: 255) == nil)
        #expect(guardian.refusal(of: Self.write(5005), bus: "lan", unit: 255) == nil)
        #expect(guardian.refusal(of: Self.write(5000, [1, 2, 3, 4]), bus: "lan", unit: 255) == nil)
        #expect(guardian.refusal(of: Self.write(5004), bus: "lan", unit: 1) == nil)
        #expect(guardian.refusal(of: Self.write(5004), bus: "rs485", unit: 255) == nil)
        #expect(DrivenRegisters().refusal(of: Self.write(5004), bus: "lan", unit: 255) == nil)
    }

    /// A Modbus TCP charger alone on its endpoint usually answers any unit id.
    @Test func anyUnitMatchesEveryUnitIdAndSaysSo() throws {
        let guardian = DrivenRegisters(DrivenRegister.of(Self.evse, control: Self.control, anyUnit: true))
        let why = try #require(guardian.refusal(of: Self.write(5004), bus: "lan", unit: 1))
        #expect(why.contains("(bus lan, unit 255; alone on a Modbus TCP endpoint it answers any unit id, 1 included)"))
    }
}
