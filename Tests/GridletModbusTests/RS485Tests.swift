import Glibc
import GridletCore
import GridletModbus
import GridletYAML
import Testing

/// RS-485 direction control and per-request overrides over a socat pseudo-terminal pair.
/// A pty has no RTS line and no kernel RS-485 mode: the failure paths run for real; the
/// user-space toggling path runs with `RTSTrace` recording the transitions libmodbus asks for.
@Suite(.serialized) struct RS485Tests {
    /// A socat pty pair (a, b) and its pid.
    final class PtyPair {
        let a: String, b: String, pid: pid_t
        init() throws {
            let base = TestSupport.tempPath("tty")
            a = base + "A"; b = base + "B"
            pid = try #require(TestSupport.spawn(["socat", "pty,raw,echo=0,link=\(a)", "pty,raw,echo=0,link=\(b)"]))
            #expect(TestSupport.waitUntil(timeoutMs: 5000) { access(a, F_OK) == 0 && access(b, F_OK) == 0 })
        }
        deinit {
            kill(pid, SIGKILL)
            TestSupport.reap(pid, timeoutMs: 2000)
        }
    }

    static func simulator(on device: String, unit: Int = 1) throws -> ModbusSimulator {
        let profile = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        let sim = ModbusSimulator(profile: profile, transport: .rtu(device: device, baud: 9600, parity: .even, dataBits: 8,
                                                                     stopBits: 1, unit: unit), frozen: true)
        try sim.start()
        return sim
    }

    /// Runs `body` with the client end of a pty pair whose other end is served by the simulator
    /// (unit 1), with RTS recording switched on when `traced`.
    static func onSimulatedLine(traced: Bool, _ body: (String) throws -> Void) throws {
        let pty = try PtyPair()
        let sim = try simulator(on: pty.a)
        defer { sim.stop() }
        if traced { RTSTrace.enable() }
        defer { if traced { RTSTrace.disable() } }
        try body(pty.b)
    }

    static func rtu(_ device: String, rs485: Bool = true) -> ModbusTransport {
        .rtu(device: device, baud: 9600, parity: .even, dataBits: 8, stopBits: 1, rs485: rs485)
    }

    /// One character at 9600 8E1: 11 bits.
    static let charUs: Int64 = 1_000_000 * 11 / 9600

    @Test func userSpaceRTSIsRaisedAroundEveryRequestAndDroppedForTheAnswer() throws { try Self.onSimulatedLine(traced: true) { line in
        let c = ModbusConnection(busName: "rs485", transport: Self.rtu(line), timeoutMs: 500, retries: 0, gapMs: 30,
                                 rs485Mode: .rtsUp, rtsDelayUs: 5000)
        defer { c.close() }
        let first = try c.readRegisters(table: .input, address: 0, count: 2, unit: 1)
        let second = try c.readRegisters(table: .input, address: 0x34, count: 2, unit: 1)
        #expect(RegisterCodec.decode(first[...], type: .float32, order: .hiFirst) != nil)
        #expect(second.count == 2)
        #expect(c.direction == "rts-up (user space, 5000 us)")
        let t = RTSTrace.take()
        // Released at setup, then raised and dropped once per request (the answer is read with RTS low).
        #expect(t.map(\.on) == [false, true, false, true, false])
        guard t.count == 5 else { return }
        for i in [1, 3] {
            let heldUs = (t[i + 1].ns - t[i].ns) / 1000
            // delay before + 8 request bytes on the wire + delay after
            #expect(heldUs >= 2 * 5000 + 8 * Self.charUs, "RTS held \(heldUs) us")
            #expect(heldUs < 200_000, "RTS held \(heldUs) us")
        }
        // The bus gap separates the two transmissions.
        #expect((t[3].ns - t[2].ns) / 1_000_000 >= 30)
    } }

    @Test func rtsDownInvertsTheLine() throws { try Self.onSimulatedLine(traced: true) { line in
        let c = ModbusConnection(busName: "rs485", transport: Self.rtu(line), timeoutMs: 500, retries: 0, rs485Mode: .rtsDown)
        defer { c.close() }
        _ = try c.readRegisters(table: .input, address: 0, count: 2, unit: 1)
        #expect(RTSTrace.take().map(\.on) == [true, false, true])
        // libmodbus's default delay: one character time.
        #expect(c.direction == "rts-down (user space, \(Self.charUs) us)")
    } }

    @Test func autoFallsBackToRTSTogglingWhenTheDriverHasNoRS485Mode() throws { try Self.onSimulatedLine(traced: true) { line in
        let bus = ModbusBus(name: "rs485", transport: Self.rtu(line), timeoutMs: 500, retries: 0)   // rs485Mode .auto
        defer { bus.stop() }
        #expect(bus.direction == nil)
        guard case .success = bus.read(table: .input, address: 0, count: 2, unit: 1) else {
            Issue.record("read failed"); return
        }
        #expect(bus.direction == "rts-up (user space, \(Self.charUs) us)")
        #expect(RTSTrace.take().map(\.on) == [false, true, false])
    } }

    @Test(arguments: [
        (RS485Mode.auto, "no kernel RS-485 mode (ENOTTY) and cannot drive RTS on this port"),
        (RS485Mode.kernel, "cannot switch the serial port to RS-485 mode (the driver has no RS-485 mode; use rs485_mode: rts-up"),
        (RS485Mode.rtsUp, "cannot drive RTS on this port (a pty or an adapter without modem control lines)"),
        (RS485Mode.rtsDown, "cannot drive RTS on this port"),
    ])
    func aPortWithoutDirectionControlIsAClearError(mode: RS485Mode, fragment: String) throws { try Self.onSimulatedLine(traced: false) { line in
        let c = ModbusConnection(busName: "rs485", transport: Self.rtu(line), timeoutMs: 200, retries: 0, rs485Mode: mode)
        defer { c.close() }
        do {
            _ = try c.readRegisters(table: .input, address: 0, count: 2, unit: 1, device: "meter")
            Issue.record("a pty has no RS-485 direction control, yet the read succeeded")
        } catch let error as ModbusError {
            #expect(error.description.contains(fragment), "\(error.description)")
            #expect(error.description.hasPrefix("meter (unit 1 on rs485): connect") || error.description.hasPrefix("meter (unit 1 on rs485): read"),
                    "\(error.description)")
            #expect(!c.isConnected)
        }
        // Without rs485 the same port reads fine: the error was the direction control, not the line.
        let plain = ModbusConnection(busName: "rs485", transport: Self.rtu(line, rs485: false), timeoutMs: 500, retries: 0)
        defer { plain.close() }
        #expect(try plain.readRegisters(table: .input, address: 0, count: 2, unit: 1).count == 2)
    } }

    @Test func aPerRequestTimeoutReplacesTheBusTimeoutForThatRequestOnly() throws {
        let pty = try PtyPair()   // nothing answers on the other end
        let bus = ModbusBus(name: "rs485", transport: Self.rtu(pty.b, rs485: false), timeoutMs: 400, retries: 1)
        defer { bus.stop() }
        let request = ModbusRequest.read(table: .holding, address: 0, count: 1, unit: 3, deviceName: "probe")
        var start = TestSupport.monotonicMs()
        let quick = bus.perform(request, overrides: .init(timeoutMs: 40, retries: 0))
        let quickMs = TestSupport.monotonicMs() - start
        guard case let .failure(e1) = quick else { Issue.record("nothing answers, yet \(quick)"); return }
        #expect(e1.message == "no answer within 40 ms")
        #expect(quickMs >= 35 && quickMs < 300, "took \(quickMs) ms")
        start = TestSupport.monotonicMs()
        let normal = bus.perform(request)
        let normalMs = TestSupport.monotonicMs() - start
        guard case let .failure(e2) = normal else { Issue.record("nothing answers, yet \(normal)"); return }
        #expect(e2.message == "no answer within 400 ms")
        #expect(normalMs >= 2 * 390, "the bus's own timeout and retry were back: took \(normalMs) ms")
    }
}
