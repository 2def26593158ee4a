import Glibc
import GridletCore
import GridletModbus
import GridletYAML
import Testing

/// RTU frames over raw TCP, both halves in-process: `RTUOverTCPListener` (what
/// `gridlet simulate --rtu-over-tcp` uses) in front of the RTU simulator, and a
/// `ModbusConnection` with `.rtuOverTCP` (the agent's side) talking to it.
@Suite struct RTUOverTCPTests {
    @Test func readsExactlyWhatTheSimulatorServesAndSaysWhenTheAdapterIsAway() throws {
        let profile = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        var listener: RTUOverTCPListener?
        var port = 0
        for _ in 0..<5 {
            port = TestSupport.freePort()
            listener = RTUOverTCPListener(host: "127.0.0.1", port: port)
            if listener != nil { break }
        }
        let adapter = try #require(listener)
        adapter.start()
        defer { adapter.stop() }
        let sim = ModbusSimulator(profile: profile, transport: .rtu(device: adapter.devicePath, baud: 115_200, parity: .none,
                                                                     dataBits: 8, stopBits: 1, unit: 9), frozen: true)
        try sim.start()
        defer { sim.stop() }

        let c = ModbusConnection(busName: "gw", transport: .rtuOverTCP(host: "127.0.0.1", port: port), timeoutMs: 500, retries: 0)
        defer { c.close() }
        let regs = try c.readRegisters(table: .input, address: 0x34, count: 2, unit: 9, device: "meter")
        let served = try #require(sim.currentValues()["power_w"])
        #expect(RegisterCodec.decode(regs[...], type: .float32, order: .hiFirst) == served)
        // A unit nobody answers is a timeout, as on a serial bus (the adapter forwards, nothing replies).
        do {
            _ = try c.readRegisters(table: .input, address: 0, count: 1, unit: 10, device: "ghost")
            Issue.record("unit 10 answered")
        } catch {
            #expect(error.kind == .timeout, "\(error.description)")
        }
        // The connection still works afterwards.
        #expect(try c.readRegisters(table: .input, address: 0x34, count: 2, unit: 9) == regs)

        // Nothing listens: said at once, naming the adapter.
        let away = ModbusConnection(busName: "gw2", transport: .rtuOverTCP(host: "127.0.0.1", port: TestSupport.freePort()),
                                    timeoutMs: 500, retries: 0)
        defer { away.close() }
        let start = TestSupport.monotonicMs()
        do {
            _ = try away.readRegisters(table: .input, address: 0, count: 1, unit: 1, device: "meter")
            Issue.record("read through an adapter that is not there")
        } catch {
            #expect(error.description.contains("RTU-over-TCP adapter 127.0.0.1:"), "\(error.description)")
            #expect(error.kind == .connectionRefused, "\(error.description)")
        }
        #expect(TestSupport.monotonicMs() - start < 450)
    }
}
