import Glibc
import GridletCore
import GridletModbus
import GridletYAML
import Testing

/// Starts a frozen simulator for a builtin profile on a free port (retrying if the port was taken).
func startSimulator(_ profileName: String, frozen: Bool = true, writeLog: String? = nil,
                    port: Int? = nil) throws -> ModbusSimulator {
    let profile = try #require(try ProfileLibrary.builtin(named: profileName))
    var lastError: ModbusError?
    for _ in 0..<5 {
        let sim = ModbusSimulator(profile: profile, port: port ?? TestSupport.freePort(), frozen: frozen, writeLog: writeLog)
        do {
            try sim.start()
            return sim
        } catch {
            lastError = error
            if port != nil { break }
        }
    }
    throw lastError!
}

func tcpBus(_ port: Int, name: String = "lan", timeoutMs: Int = 500, retries: Int = 1) -> ModbusBus {
    ModbusBus(name: name, transport: .tcp(host: "127.0.0.1", port: port), timeoutMs: timeoutMs, retries: retries)
}

@Suite struct SimulatorTests {
    @Test(arguments: BuiltinProfiles.names.filter { $0 != "sunspec-meter" })
    func conformance(profileName: String) throws {
        let sim = try startSimulator(profileName)
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        let reader = DeviceReader(profile: sim.profile, deviceName: "dut")
        let values = try reader.read(on: bus).get()
        let expected = sim.currentValues()
        #expect(expected.count == sim.profile.points.count)
        #expect(values.count == sim.profile.points.count)
        for point in sim.profile.points {
            let got = try #require(values[point.name] ?? nil, "\(point.name) missing or NaN")
            #expect(got == expected[point.name], "\(profileName).\(point.name)")
        }
        // Plausibility (for the profiles that measure these; bender-cc613 has no meter registers).
        if sim.profile.point("voltage_l1_v") != nil {
            let v1 = try #require(expected["voltage_l1_v"])
            #expect(v1 > 220 && v1 < 240)
        }
        if sim.profile.point("power_w") != nil, sim.profile.power == nil {   // a bidirectional device starts idle
            let power = try #require(expected["power_w"])
            #expect(power > 2000 && power < 12000)
        }
        if sim.profile.kind == .meter, let hz = expected["frequency_hz"] {
            #expect(abs(hz - 50) < 0.5)
        }
    }

    @Test func meterValuesChangeWhenNotFrozen() throws {
        let sim = try startSimulator("eastron-sdm630", frozen: false)
        defer { sim.stop() }
        let first = sim.currentValues()
        let changed = TestSupport.waitUntil(timeoutMs: 3000) {
            let now = sim.currentValues()
            return now["power_w"] != first["power_w"] && (now["import_wh"] ?? 0) > (first["import_wh"] ?? 0)
        }
        #expect(changed, "power and energy should evolve")
        let now = sim.currentValues()
        let p = try #require(now["power_w"])
        #expect(p > 1500 && p < 4500)
        // Currents are consistent with power per phase.
        let i1 = try #require(now["current_l1_a"]), u1 = try #require(now["voltage_l1_v"]), p1 = try #require(now["power_l1_w"])
        #expect(abs(i1 * u1 - p1) < 1)
    }

    @Test func chargerWriteIsRecordedLoggedAndFollowed() throws {
        let logPath = TestSupport.tempPath("jsonl")
        defer { unlink(logPath) }
        let sim = try startSimulator("vestel-evc04", writeLog: logPath)
        defer { sim.stop() }
        let bus = tcpBus(sim.port)
        defer { bus.stop() }
        #expect(sim.currentValues()["power_w"] == 11040.0, "16 A x 230 V x 3 phases")

        let w = bus.write(address: 5004, values: [6], unit: 255, deviceName: "wallbox")
        #expect((try? w.get()) != nil, "\(w)")
        let back = try bus.read(table: .holding, address: 5004, count: 1, unit: 255).get()
        #expect(back == [6])

        let writes = sim.writes
        #expect(writes.count == 1)
        #expect(writes.first?.address == 5004 && writes.first?.values == [6] && writes.first?.unit == 255)
        let log = TestSupport.readFile(logPath) ?? ""
        let ts = writes.first?.timestampMs ?? -1
        #expect(log == "{\"ts_ms\":\(ts),\"unit\":255,\"address\":5004,\"values\":[6]}\n")

        // The simulated charger follows the setpoint.
        let values = try DeviceReader(profile: sim.profile).read(on: bus).get()
        #expect(values["power_w"] == 6 * 230 * 3)
        #expect(values["current_l2_a"] == 6)
        #expect(values["charging"] == 1)

        // fc 16 and pause.
        #expect((try? bus.write(address: 2000, values: [8, 30], unit: 255).get()) != nil)
        #expect((try? bus.write(address: 5004, values: [0], unit: 255).get()) != nil)
        #expect(sim.writes.map(\.values) == [[6], [8, 30], [0]])
        let paused = try DeviceReader(profile: sim.profile).read(on: bus).get()
        #expect(paused["power_w"] == 0 && paused["charging"] == 0)
        let lines = (TestSupport.readFile(logPath) ?? "").split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.dropFirst().first?.hasSuffix("\"address\":2000,\"values\":[8,30]}") == true)
    }

    @Test func servesSeveralClientsAtOnce() throws {
        let sim = try startSimulator("eastron-sdm630")
        defer { sim.stop() }
        let buses = (0..<3).map { tcpBus(sim.port, name: "bus\($0)") }
        defer { for b in buses { b.stop() } }
        // Open all three connections first, then use them interleaved.
        for b in buses { #expect((try? b.read(table: .input, address: 0, count: 2, unit: 1).get()) != nil) }
        for _ in 0..<3 {
            for b in buses {
                let regs = try b.read(table: .input, address: 0x34, count: 2, unit: 7).get()
                #expect(RegisterCodec.decode(regs, type: .float32, order: .hiFirst) == sim.currentValues()["power_w"])
            }
        }
    }

    @Test func busyPortIsReported() throws {
        let sim = try startSimulator("eastron-sdm630")
        defer { sim.stop() }
        let second = ModbusSimulator(profile: sim.profile, port: sim.port, frozen: true)
        do {
            try second.start()
            second.stop()
            Issue.record("expected the second simulator to fail")
        } catch {
            #expect(error.code == EADDRINUSE)
            #expect(error.description == "eastron-sdm630 (unit 1 on simulator 127.0.0.1:\(sim.port)): listen: cannot listen on 127.0.0.1:\(sim.port): address already in use (EADDRINUSE)")
        }
        #expect(!second.isRunning)
    }

    @Test func runForeverStopsWhenAsked() throws {
        let profile = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        let sim = ModbusSimulator(profile: profile, port: TestSupport.freePort(), frozen: true)
        let start = TestSupport.monotonicMs()
        try sim.runForever { TestSupport.monotonicMs() - start > 300 }
        let elapsed = TestSupport.monotonicMs() - start
        #expect(elapsed >= 300 && elapsed < 2000)
    }

    @Test func mbpollReadsTheSimulator() throws {
        let mbpoll = TestSupport.which("mbpoll")
        try #require(mbpoll != nil, "mbpoll is not installed (apt-get install -y mbpoll)")
        let sim = try startSimulator("eastron-sdm630")
        defer { sim.stop() }
        // power_w is input register 0x34 = 52 (0-based) = reference 53 in mbpoll's 1-based numbering.
        let (status, output) = TestSupport.run([mbpoll!, "-m", "tcp", "-a", "1", "-r", "53", "-c", "1", "-t", "3:float", "-B",
                                                "-1", "-p", String(sim.port), "127.0.0.1"])
        #expect(status == 0, "mbpoll failed: \(output)")
        let line = output.split(separator: "\n").first { $0.hasPrefix("[53]:") }
        let text = try #require(line, "no [53] line in mbpoll output: \(output)").dropFirst(5)
            .filter { $0 != " " && $0 != "\t" }
        let value = try #require(Double(String(text)), "cannot parse '\(text)'")
        let expected = try #require(sim.currentValues()["power_w"])
        #expect(abs(value - expected) <= abs(expected) * 1e-6, "mbpoll \(value) vs simulator \(expected)")
    }

    @Test func mbpollReadsAWordSwappedProfile() throws {
        let mbpoll = TestSupport.which("mbpoll")
        try #require(mbpoll != nil, "mbpoll is not installed (apt-get install -y mbpoll)")
        let sim = try startSimulator("carlo-gavazzi-em24")
        defer { sim.stop() }
        // power_w: input register 0x28 (reference 41), int32 least significant word first (mbpoll's
        // default word order for 32-bit values; -B would be hi_first), 0.1 W.
        let (status, output) = TestSupport.run([mbpoll!, "-m", "tcp", "-a", "1", "-r", "41", "-c", "1", "-t", "3:int",
                                                "-1", "-p", String(sim.port), "127.0.0.1"])
        #expect(status == 0, "mbpoll failed: \(output)")
        let line = output.split(separator: "\n").first { $0.hasPrefix("[41]:") }
        let text = try #require(line, "no [41] line in mbpoll output: \(output)").dropFirst(5)
            .filter { $0 != " " && $0 != "\t" }
        let raw = try #require(Double(String(text)), "cannot parse '\(text)'")
        let expected = try #require(sim.currentValues()["power_w"])
        #expect(abs(raw * 0.1 - expected) < 1e-6, "mbpoll \(raw) x 0.1 vs simulator \(expected)")
    }
}
