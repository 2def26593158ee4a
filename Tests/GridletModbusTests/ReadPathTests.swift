import GridletCore
@testable import GridletModbus
import GridletYAML
import Testing

/// The read path's shortcuts (bench/poll-rate.sh) decide nothing differently: a poll's values
/// stored through the plan's dictionary positions are each point decoded from its own registers
/// by `PointCodec`, a poll never sees another poll's values, and an array of registers a caller
/// keeps is not overwritten by the connection's next read.
@Suite struct ReadPathTests {
    /// A small deterministic generator (SplitMix64) for register contents.
    struct Registers {
        var state: UInt64
        mutating func next() -> UInt16 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt16(truncatingIfNeeded: z ^ (z >> 31))
        }
        mutating func block(_ count: Int) -> [UInt16] { (0..<count).map { _ in next() } }
    }

    /// Compares with NaN-free equality: both nil, or both the same number.
    static func same(_ a: [String: Double?], _ b: [String: Double?]) -> Bool {
        guard a.count == b.count else { return false }
        return a.allSatisfy { key, value in
            guard let other = b[key] else { return false }
            return value == other
        }
    }

    /// What a point's value is, worked out here from the point alone (the plan's blocks hold
    /// every register of their points).
    static func expected(_ block: ReadBlock, _ regs: [UInt16]) -> [String: Double?] {
        var out: [String: Double?] = [:]
        for p in block.points {
            let start = p.address - block.address
            let sf = p.scaleFactorAddress.map { regs[$0 - block.address] }
            out[p.name] = .some(PointCodec.decode(p, regs[start..<(start + p.type.registerCount)], sf: sf))
        }
        return out
    }

    @Test(arguments: BuiltinProfiles.names.filter { $0 != "sunspec-meter" })
    func planDecodesEachPointFromItsRegistersAndPollsDoNotShareValues(profileName: String) throws {
        let profile = try #require(try ProfileLibrary.builtin(named: profileName))
        let blocks = DeviceReader.plan(profile.points)
        let plan = PollPlan(blocks)
        #expect(plan.template.count == profile.points.count)
        #expect(plan.template.values.allSatisfy { $0 == nil })
        var gen = Registers(state: UInt64(profileName.utf8.count) &* 7_777)
        var polls: [[String: Double?]] = []
        var expected: [[String: Double?]] = []
        for _ in 0..<3 {
            var values = plan.template
            var reference: [String: Double?] = [:]
            for (i, block) in blocks.enumerated() {
                let regs = gen.block(block.count)
                plan.decode(block: i, registers: regs, into: &values)
                reference.merge(Self.expected(block, regs)) { _, new in new }
            }
            polls.append(values)
            expected.append(reference)
        }
        for (got, want) in zip(polls, expected) { #expect(Self.same(got, want)) }
        // Three polls of random registers differ from each other, and each kept its own values.
        #expect(!Self.same(polls[0], polls[1]) && !Self.same(polls[1], polls[2]))
        #expect(plan.template.values.allSatisfy { $0 == nil })
    }

    @Test func pointsOutsideAShortAnswerAreNil() throws {
        let profile = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        let blocks = DeviceReader.plan(profile.points)
        let plan = PollPlan(blocks)
        var values = plan.template
        plan.decode(block: 0, registers: [0x4366, 0x0000], into: &values)   // 2 of 18 registers
        #expect(values["voltage_l1_v"] == .some(230.0))
        #expect(values["voltage_l2_v"] == .some(nil))
        #expect(values.count == profile.points.count)
    }

    @Test func anArrayOfRegistersKeptByTheCallerSurvivesTheNextRead() throws {
        let sim = try startSimulator("eastron-sdm630")
        defer { sim.stop() }
        let connection = ModbusConnection(busName: "lan", transport: .tcp(host: "127.0.0.1", port: sim.port))
        defer { connection.close() }
        let first = try connection.readRegisters(table: .input, address: 0, count: 18, unit: 1)
        let copy = first.map { $0 }   // storage of its own
        let second = try connection.readRegisters(table: .input, address: 70, count: 6, unit: 1)
        #expect(second.count == 6)
        #expect(first == copy)
        let again = try connection.readRegisters(table: .input, address: 0, count: 18, unit: 1)
        #expect(again == first)
    }
}
