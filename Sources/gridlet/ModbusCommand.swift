import Glibc
import GridletAgent
import GridletCLI
import GridletCore

/// Where a diagnostics command talks: a configured bus (through the daemon when it runs) or
/// an endpoint given on the command line (through the daemon when a configured bus has that
/// endpoint and the daemon runs; otherwise directly — then we are the only master).
struct BusTarget {
    static let args: [ArgSpec] = [
        .option("tcp", "Modbus TCP endpoint HOST:PORT."),
        .option("rtu", "Serial device for Modbus RTU (e.g. /dev/ttyUSB0)."),
        .option("rtu-over-tcp", "Modbus RTU frames over raw TCP (a serial-to-Ethernet adapter in transparent mode), HOST:PORT."),
        .option("bus", "A bus from the configuration."),
        .option("baud", .int, "RTU: baud rate.", default: "9600"),
        .option("parity", "RTU: parity none|even|odd.", default: "none"),
        .option("stop-bits", .int, "RTU: stop bits 1|2.", default: "1"),
        .flag("rs485", "RTU: RS-485 direction control (see --rs485-mode)."),
        .option("rs485-mode", "RTU with --rs485: auto (kernel RS-485 mode, else RTS toggling), kernel, rts-up or rts-down.",
                default: "auto"),
        .option("rts-delay-us", .int,
                "RTU with --rs485: RTS toggling delay before and after sending, in microseconds (default one character time)."),
        .option("timeout", "Response timeout, e.g. 100ms or 1s.", default: "500ms"),
        .option("config", "Configuration file (to find the daemon and configured buses).", default: "/etc/gridlet/gridlet.yaml"),
    ]
    let tcp: String?, rtu: String?, rtuOverTcp: String?, bus: String?, baud: Int, parity: String, stopBits: Int, rs485: Bool
    let rs485Mode: String, rtsDelayUs: Int?, timeout: String, config: String
    init(_ p: Parsed) {
        tcp = p.optionalString("tcp"); rtu = p.optionalString("rtu"); rtuOverTcp = p.optionalString("rtu-over-tcp")
        bus = p.optionalString("bus"); baud = p.int("baud"); parity = p.string("parity"); stopBits = p.int("stop-bits")
        rs485 = p.flag("rs485"); rs485Mode = p.string("rs485-mode"); rtsDelayUs = p.optionalInt("rts-delay-us")
        timeout = p.string("timeout"); config = p.string("config")
    }

    /// The --timeout in milliseconds.
    func timeoutMs() throws -> Int {
        let t = try ModbusCLI.durationMs(timeout, option: "--timeout")
        guard (1...60_000).contains(t) else { throw Failure("--timeout: expected 1ms to 60s, got '\(timeout)'", code: 2) }
        return t
    }

    /// Checks the options and opens a diagnostics session on the bus they name (the session
    /// decides between the daemon and a direct connection).
    func session() throws -> ModbusDiagnosticsSession {
        let timeoutMs = try timeoutMs()
        guard let mode = RS485Mode(rawValue: rs485Mode) else {
            throw Failure("--rs485-mode: expected one of \(RS485Mode.allCases.map(\.rawValue).joined(separator: ", ")), got '\(rs485Mode)'", code: 2)
        }
        if let d = rtsDelayUs, !(0...100_000).contains(d) { throw Failure("--rts-delay-us: expected 0 to 100000 (microseconds), got \(d)", code: 2) }
        if (rs485Mode != "auto" || rtsDelayUs != nil) && !(rs485 && rtu != nil) {
            throw Failure("--rs485-mode and --rts-delay-us apply with --rtu DEVICE --rs485", code: 2)
        }
        let given = [tcp != nil, rtu != nil, rtuOverTcp != nil, bus != nil].filter { $0 }.count
        guard given == 1 else {
            throw Failure("give exactly one of --tcp HOST:PORT, --rtu DEVICE, --rtu-over-tcp HOST:PORT or --bus NAME", code: 2)
        }
        let endpoint: ModbusDiagnosticsSession.Endpoint
        if let tcp {
            let (h, p) = try ModbusCLI.hostPort(tcp)
            endpoint = .given(.tcp(host: h, port: p), name: tcp)
        } else if let rtuOverTcp {
            let (h, p) = try ModbusCLI.hostPort(rtuOverTcp)
            endpoint = .given(.rtuOverTCP(host: h, port: p), name: rtuOverTcp)
        } else if let rtu {
            guard stopBits == 1 || stopBits == 2 else { throw Failure("--stop-bits: expected 1 or 2", code: 2) }
            endpoint = .given(.rtu(device: rtu, baud: baud, parity: try ModbusCLI.parity(parity), dataBits: 8, stopBits: stopBits, rs485: rs485),
                              name: rtu)
        } else {
            endpoint = .configured(bus!)
        }
        // A configuration is optional unless --bus names one of its buses.
        let loaded = bus != nil || access(config, R_OK) == 0 ? try loadConfig(config) : nil
        return try ModbusDiagnosticsSession(endpoint, timeoutMs: timeoutMs, rs485Mode: mode, rtsDelayUs: rtsDelayUs,
                                            configuration: loaded, configPath: config)
    }
}

enum ModbusCommand {
    static let command = Command(
        "modbus", abstract: "Raw Modbus transactions with an explicit function code (diagnostics).",
        subcommands: [ReadRegisters.command, WriteRegisters.command])

    struct Layout {
        static let args: [ArgSpec] = [
            .option("unit", .int, "Unit id.", default: "1"),
            .option("address", "Register address (0-based, as on the wire; 0x.. accepted).", required: true),
            .option("type", "Value type: uint16, int16, uint32, int32, float32, float64.", default: "uint16"),
            .option("word-order", "Word order of multi-register values: hi_first or lo_first.", default: "hi_first"),
            .flag("json", "Print JSON."),
        ]
        let unit: Int, address: String, type: String, wordOrder: String, json: Bool
        init(_ p: Parsed) {
            unit = p.int("unit"); address = p.string("address"); type = p.string("type"); wordOrder = p.string("word-order")
            json = p.flag("json")
        }

        func parsed() throws -> (address: Int, type: RegisterType, order: WordOrder) {
            guard let a = YAMLScalar.int(address), (0...65535).contains(a) else { throw Failure("--address: expected 0...65535, got '\(address)'", code: 2) }
            guard let t = RegisterType(rawValue: type) else {
                throw Failure("--type: expected one of \(RegisterType.allCases.map(\.rawValue).joined(separator: ", ")), got '\(type)'", code: 2)
            }
            guard let o = WordOrder(rawValue: wordOrder) else { throw Failure("--word-order: expected hi_first or lo_first", code: 2) }
            return (a, t, o)
        }
    }

    static func run(_ op: ModbusOperation, unit: Int, target: BusTarget) throws -> String {
        if let problem = op.problem { throw Failure(problem, code: 2) }
        let session = try target.session()
        defer { session.close() }
        return try session.perform(op, unit: unit)
    }

    /// Prints the answer; decodes the registers by type and word order.
    static func report(_ answer: String, type: RegisterType, order: WordOrder, json: Bool) throws {
        guard let v = try? JSONValue.parse(answer) else { print(answer); throw Failure("unreadable answer\(versionHint)") }
        let regs = (v["registers"]?.arrayValue ?? []).compactMap { $0.doubleValue.map { UInt16($0) } }
        let n = type.registerCount
        let values: [Double?] = stride(from: 0, to: regs.count - n + 1, by: n).map {
            RegisterCodec.decode(regs[$0..<$0 + n], type: type, order: order)
        }
        if json {
            var fields = v.objectValue ?? []
            if v["ok"]?.boolValue == true {
                fields += [("type", .string(type.rawValue)), ("word_order", .string(order.rawValue)),
                           ("values", .array(values.map { $0.map(JSONValue.number) ?? .null }))]
            }
            print(JSONValue.object(fields).serialized)
        } else if v["ok"]?.boolValue == true {
            let address = Int(v["address"]?.doubleValue ?? 0)
            for (i, value) in values.enumerated() {
                let a = address + i * n
                let raw = regs[(i * n)..<(i * n + n)].map { hex4($0) }.joined(separator: " ")
                print("\(String(a).padding(6)) \(raw.padding(20)) \(value.map { JSONValue.format($0) } ?? "NaN")")
            }
        }
        if v["ok"]?.boolValue != true { throw Failure(ModbusHint.explained(v["error"]?.stringValue ?? answer)) }
    }

    static func hex4(_ w: UInt16) -> String {
        let s = String(w, radix: 16)
        return "0x" + String(repeating: "0", count: 4 - s.count) + s
    }

    struct ReadRegisters {
        static let command = Command("read", abstract: "Read registers (function 3 or 4).", args: BusTarget.args + Layout.args + [
            .option("function", .int, "3 (holding) or 4 (input).", default: "3"),
            .option("count", .int, "Number of values of --type to read.", default: "1"),
        ]) { try ReadRegisters($0).run() }
        let target: BusTarget, layout: Layout, function: Int, count: Int
        init(_ p: Parsed) { target = BusTarget(p); layout = Layout(p); function = p.int("function"); count = p.int("count") }

        func run() throws {
            let (address, type, order) = try layout.parsed()
            guard (1...125).contains(count * type.registerCount) else { throw Failure("--count: at most 125 registers per read", code: 2) }
            let answer = try ModbusCommand.run(.read(function: function, address: address, count: count * type.registerCount),
                                               unit: layout.unit, target: target)
            try ModbusCommand.report(answer, type: type, order: order, json: layout.json)
        }
    }

    struct WriteRegisters {
        static let command = Command("write", abstract: "Write holding registers (function 6 or 16).", args: BusTarget.args + Layout.args + [
            .option("function", .int, "6 (one register) or 16 (several).", default: "16"),
            .positional("values", .double, "Values, encoded by --type and --word-order.", required: true, repeating: true),
        ]) { try WriteRegisters($0).run() }
        let target: BusTarget, layout: Layout, function: Int, values: [Double]
        init(_ p: Parsed) { target = BusTarget(p); layout = Layout(p); function = p.int("function"); values = p.doubles("values") }

        func run() throws {
            let (address, type, order) = try layout.parsed()
            guard !values.isEmpty else { throw Failure("give at least one value to write, e.g. `gridlet modbus write --tcp HOST:PORT --address 5004 16`", code: 2) }
            let regs = values.flatMap { RegisterCodec.encode($0, type: type, order: order) }
            let answer = try ModbusCommand.run(.write(function: function, address: address, values: regs), unit: layout.unit, target: target)
            try ModbusCommand.report(answer, type: type, order: order, json: layout.json)
        }
    }
}
