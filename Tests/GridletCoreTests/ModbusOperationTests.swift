import GridletCore
import Testing

/// The checks run before anything reaches a bus, in the CLI and in the daemon alike.
@Suite struct ModbusOperationTests {
    @Test func validReadsAndWritesHaveNoProblem() {
        #expect(ModbusOperation.read(function: 3, address: 0, count: 125).problem == nil)
        #expect(ModbusOperation.read(function: 4, address: 65535, count: 1).problem == nil)
        #expect(ModbusOperation.write(function: 6, address: 10, values: [1]).problem == nil)
        #expect(ModbusOperation.write(function: 16, address: 10, values: Array(repeating: 0, count: 123)).problem == nil)
    }

    @Test func theProblemSaysWhatIsAllowed() {
        #expect(ModbusOperation.read(function: 5, address: 0, count: 1).problem == "reads use function 3 (holding) or 4 (input), got 5")
        #expect(ModbusOperation.read(function: 3, address: 65535, count: 2).problem == "read 1...125 registers inside 0...65535")
        #expect(ModbusOperation.read(function: 3, address: 0, count: 126).problem == "read 1...125 registers inside 0...65535")
        #expect(ModbusOperation.write(function: 3, address: 0, values: [1]).problem == "writes use function 6 (one register) or 16 (several), got 3")
        #expect(ModbusOperation.write(function: 6, address: 0, values: [1, 2]).problem == "function 6 writes exactly one register, got 2")
        #expect(ModbusOperation.write(function: 16, address: 0, values: []).problem == "write 1...123 registers inside 0...65535")
    }

    @Test func anExceptionIsAFindButNoAnswerIsNot() {
        #expect(ModbusProbe.answered.found)
        #expect(ModbusProbe.exception(2).found)
        #expect(!ModbusProbe.none("timeout").found)
    }
}
