import Glibc
import GridletCore
import GridletModbus
import GridletYAML
import Synchronization
import Testing

@Suite struct BusTests {
    @Test func connectionRefusedNamesDevice() throws {
        let port = TestSupport.freePort()   // nothing listens there
        let bus = tcpBus(port, name: "lan", retries: 1)
        defer { bus.stop() }
        let result = bus.read(table: .input, address: 52, count: 2, unit: 1, deviceName: "meter")
        guard case let .failure(e) = result else { Issue.record("expected a failure, got \(result)"); return }
        #expect(e.kind == .connectionRefused)
        #expect(e.code == ECONNREFUSED)
        #expect(e.device == "meter" && e.bus == "lan")
        #expect(e.description == "meter (unit 1 on lan): read input registers 52+2: connection refused (ECONNREFUSED)")
    }

    @Test func timeoutNamesDeviceAndRegister() throws {
        // Listens (the kernel completes the handshake) but never accepts or answers.
        let (fd, port) = try #require(TestSupport.boundSocket())
        defer { close(fd) }
        #expect(listen(fd, 8) == 0)
        let bus = tcpBus(port, name: "lan", timeoutMs: 200, retries: 1)
        defer { bus.stop() }
        let start = TestSupport.monotonicMs()
        let result = bus.read(table: .input, address: 52, count: 2, unit: 1, deviceName: "meter")
        let elapsed = TestSupport.monotonicMs() - start
        guard case let .failure(e) = result else { Issue.record("expected a timeout, got \(result)"); return }
        #expect(e.kind == .timeout)
        #expect(e.description == "meter (unit 1 on lan): read input registers 52+2: no answer within 200 ms (ETIMEDOUT)")
        // timeout * (retries + 1) = 400 ms
        #expect(elapsed >= 380 && elapsed < 1500, "took \(elapsed) ms")
    }

    @Test func reconnectsAfterSimulatorRestart() throws {
        let sim = try startSimulator("eastron-sdm630")
        let port = sim.port
        let bus = tcpBus(port, timeoutMs: 300, retries: 0)
        defer { bus.stop() }
        let reader = DeviceReader(profile: sim.profile, points: ["power_w"])
        #expect(try reader.read(on: bus).get()["power_w"] == sim.currentValues()["power_w"])
        sim.stop()
        let down = reader.read(on: bus)
        guard case let .failure(e) = down else { Issue.record("expected a failure while the server is down"); return }
        #expect(e.isConnectionLevel, "\(e)")
        let again = try startSimulator("eastron-sdm630", port: port)
        defer { again.stop() }
        var values: [String: Double?] = [:]
        let ok = TestSupport.waitUntil(timeoutMs: 3000) {
            if case let .success(v) = reader.read(on: bus) { values = v; return true }
            return false
        }
        #expect(ok, "bus did not reconnect")
        #expect(values["power_w"] == again.currentValues()["power_w"])
    }

    @Test func requestsRunInSubmissionOrder() throws {
        let sim = try startSimulator("vestel-evc04")
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let done = Mutex<[Int]>([])
        for i in 0..<20 {
            bus.submit(.write(address: 3000 + i, values: [UInt16(i)], unit: 255, deviceName: "evc")) { r in
                if case .success = r { done.withLock { $0.append(i) } }
            }
        }
        #expect(TestSupport.waitUntil(timeoutMs: 5000) { done.withLock { $0.count } == 20 })
        #expect(done.withLock { $0 } == Array(0..<20))
        #expect(sim.writes.map(\.address) == (0..<20).map { 3000 + $0 })
        // Submissions from several threads all complete.
        let total = Mutex(0)
        DispatchlessThreads.run(count: 4) { t in
            for i in 0..<10 {
                let r = bus.perform(.read(table: .holding, address: 3000 + i, count: 1, unit: 255, deviceName: "evc\(t)"))
                if (try? r.get()) == [UInt16(i)] { total.withLock { $0 += 1 } }
            }
        }
        #expect(total.withLock { $0 } == 40)
    }

    @Test func keepsTheSilentGapBetweenTransactions() throws {
        let sim = try startSimulator("eastron-sdm630")
        defer { sim.stop() }
        let bus = ModbusBus(name: "lan", transport: .tcp(host: "127.0.0.1", port: sim.port), timeoutMs: 500, retries: 0, gapMs: 100)
        defer { bus.stop() }
        let start = TestSupport.monotonicMs()
        for _ in 0..<5 { #expect((try? bus.read(table: .input, address: 0, count: 2, unit: 1).get()) != nil) }
        let elapsed = TestSupport.monotonicMs() - start
        #expect(elapsed >= 400 && elapsed < 2000, "5 transactions with a 100 ms gap took \(elapsed) ms")
    }

    @Test func missingSerialPortIsReported() {
        let bus = ModbusBus(name: "rs485", transport: .rtu(device: "/dev/gridlet-no-such-tty", baud: 9600, parity: .none,
                                                          dataBits: 8, stopBits: 1, rs485: true), timeoutMs: 100, retries: 0)
        defer { bus.stop() }
        let r = bus.read(table: .input, address: 0, count: 2, unit: 1, deviceName: "sdm")
        guard case let .failure(e) = r else { Issue.record("expected failure"); return }
        #expect(e.code == ENOENT)
        #expect(e.description == "sdm (unit 1 on rs485): read input registers 0+2: no such serial device (ENOENT)")
        // RTU unit ids stop at 247.
        guard case let .failure(u) = bus.read(table: .input, address: 0, count: 2, unit: 255, deviceName: "sdm") else {
            Issue.record("expected failure"); return
        }
        #expect(u.kind == .invalidRequest)
    }

    @Test func stoppedBusFailsFast() {
        let bus = tcpBus(TestSupport.freePort())
        bus.stop()
        let r = bus.read(table: .holding, address: 1, count: 1, unit: 1, deviceName: "x")
        guard case let .failure(e) = r else { Issue.record("expected failure"); return }
        #expect(e.kind == .stopped)
    }

    @Test func invalidRequestsAreRejectedWithoutTraffic() {
        let bus = tcpBus(TestSupport.freePort())
        defer { bus.stop() }
        let r = bus.read(table: .holding, address: 65535, count: 2, unit: 1, deviceName: "x")
        guard case let .failure(e) = r else { Issue.record("expected failure"); return }
        #expect(e.kind == .invalidRequest)
        #expect(e.description.hasPrefix("x (unit 1 on lan): read holding registers 65535+2: "))
    }

    @Test func interopWithPymodbus() throws {
        let python = try #require(TestSupport.which("python3"), "python3 missing")
        let check = TestSupport.run([python, "-c", "import pymodbus; print(pymodbus.__version__)"])
        try #require(check.status == 0, "pymodbus is not installed (pip install pymodbus)")
        let port = TestSupport.freePort()
        let pid = try #require(TestSupport.spawn([python, "-c", pymodbusServerScript, String(port)]), "cannot start python3")
        defer { TestSupport.terminate(pid) }
        #expect(TestSupport.waitUntil(timeoutMs: 10_000) { TestSupport.portAccepts(port) }, "pymodbus server did not start")

        let bus = tcpBus(port, name: "py", timeoutMs: 1000)
        defer { bus.stop() }
        let regs = try bus.read(table: .input, address: 100, count: 9, unit: 1, deviceName: "pymodbus").get()
        #expect(regs.count == 9)
        #expect(RegisterCodec.decode(regs[0..<2], type: .float32, order: .hiFirst) == 230.5)
        #expect(RegisterCodec.decode(regs[2..<4], type: .float32, order: .loFirst) == -1234.25)
        #expect(RegisterCodec.decode(regs[4..<6], type: .uint32, order: .hiFirst) == 305_419_896)
        #expect(RegisterCodec.decode(regs[6..<7], type: .int16, order: .hiFirst) == -1234)
        #expect(RegisterCodec.decode(regs[7..<9], type: .int32, order: .loFirst) == -70000)

        // The same through a profile and the read planner (one merged transaction plus one holding read).
        let profile = try ProfileLibrary.parse("""
            name: py
            kind: meter
            transport: tcp
            defaults: { table: input, type: float32 }
            points:
              a: { address: 100 }
              b: { address: 102, word_order: lo_first }
              c: { address: 104, type: uint32, scale: 0.5 }
              d: { address: 106, type: int16 }
              e: { address: 107, type: int32, word_order: lo_first, scale: 0.1 }
              f: { address: 200, table: holding, type: uint16 }
            """)
        let reader = DeviceReader(profile: profile, deviceName: "pymodbus")
        #expect(reader.blocks.count == 2)
        let v = try reader.read(on: bus).get()
        #expect(v["a"] == 230.5 && v["b"] == -1234.25 && v["c"] == 152_709_948 && v["d"] == -1234)
        #expect(v["e"] == -7000 && v["f"] == 4242)

        // A Modbus exception from a real server: by name, not retried, connection kept.
        let start = TestSupport.monotonicMs()
        let bad = bus.read(table: .input, address: 5000, count: 2, unit: 1, deviceName: "pymodbus")
        guard case let .failure(e) = bad else { Issue.record("expected an exception, got \(bad)"); return }
        #expect(e.kind == .exception(code: 2))
        #expect(!e.isConnectionLevel)
        #expect(e.description == "pymodbus (unit 1 on py): read input registers 5000+2: exception 2: illegal data address (EMBXILADD)")
        #expect(TestSupport.monotonicMs() - start < 900)

        // Writes land in the independent server.
        #expect((try? bus.write(address: 201, values: [7, 8], unit: 1).get()) != nil)
        #expect(try bus.read(table: .holding, address: 200, count: 3, unit: 1).get() == [4242, 7, 8])
    }
}

/// Runs `count` POSIX threads and joins them (tests must not block the cooperative pool
/// with `perform`).
enum DispatchlessThreads {
    private final class Box: Sendable {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }

    static func run(count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var threads: [pthread_t] = []
        for i in 0..<count {
            var tid = pthread_t()
            let arg = Unmanaged.passRetained(Box(body, i)).toOpaque()
            if pthread_create(&tid, nil, { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body(box.index)
                return nil
            }, arg) == 0 {
                threads.append(tid)
            }
        }
        for t in threads { pthread_join(t, nil) }
    }
}
