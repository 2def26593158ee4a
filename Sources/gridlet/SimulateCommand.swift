import GridletAgent
import GridletCLI
import GridletCore
import GridletYAML

struct Simulate {
    static let command = Command(
        "simulate", abstract: "Serve a profile's register map over Modbus TCP or RTU (libmodbus server) for demos and tests.",
        discussion: """
            Faults: --fault no-answer | exception:N | slow:300ms [--fault-unit N], or --fault device[:VALUE]: a
            charger that answers and says it is in fault (its profile's control.fault point serves VALUE, by default
            the first value the profile lists as a fault). With --fault-file PATH the fault is read from that file
            about every 100 ms (same syntax, optionally FAULT@UNIT; a missing file means none), so a test can make
            the device stop answering, or go into fault, mid-run.
            """,
        args: [
            .positional("profile", "Built-in profile name or profile file.", required: true),
            .option("port", .int, "TCP port.", default: "1502"),
            .option("host", "Address to bind.", default: "127.0.0.1"),
            .option("rtu", "Serve Modbus RTU on this serial device (e.g. a socat pty) instead of TCP."),
            .flag("rtu-over-tcp", "Serve RTU frames over raw TCP on --host/--port (a transparent serial-to-Ethernet adapter)."),
            .option("baud", .int, "RTU: baud rate.", default: "9600"),
            .option("parity", "RTU: parity none|even|odd.", default: "none"),
            .option("stop-bits", .int, "RTU: stop bits 1|2.", default: "1"),
            .option("unit", .int, "RTU: unit id answered (default: the profile's unit)."),
            .flag("frozen", "Keep values constant (for exact comparisons)."),
            .option("write-log", "Append every write received as a JSON line to this file."),
            .option("voltage", .double, "Serve this phase voltage on every phase (e.g. 230)."),
            .option("voltage-wobble", .double,
                    "Raise every phase voltage by this percent in every other second (e.g. 0.5), also with --frozen.", default: "0.0"),
            .option("sunspec-model", .int, "SunSpec profiles: meter model to serve (201-204, 211-214).", default: "203"),
            .option("sunspec-base", .int, "SunSpec profiles: address of the 'SunS' marker (40000, 0 or 50000).", default: "40000"),
            .option("unimplemented", "SunSpec profiles: points served as 'not implemented'.", repeating: true),
            .option("fault", "Inject a fault: none, no-answer, exception:N, slow:MS, device[:VALUE].", default: "none"),
            .option("fault-unit", .int, "Apply the fault to this unit id only."),
            .option("fault-file", "Read the fault from this file at run time."),
            .option("capacity-wh", .double, "Bidirectional profiles: battery capacity in Wh.", default: "60000.0"),
            .option("soc", .double, "Bidirectional profiles: state of charge at start, in %.", default: "50.0"),
            .option("max-power-w", .double, "Bidirectional profiles: the most the device charges or discharges, in W.",
                    default: "7400.0"),
        ]) { try Simulate($0).run() }
    let profile: String, port: Int, host: String, rtu: String?, rtuOverTcp: Bool, baud: Int, parity: String, stopBits: Int
    let unit: Int?, frozen: Bool, writeLog: String?, voltage: Double?, voltageWobble: Double, sunspecModel: Int, sunspecBase: Int
    let unimplemented: [String], fault: String, faultUnit: Int?, faultFile: String?, capacityWh: Double, soc: Double
    let maxPowerW: Double
    init(_ p: Parsed) {
        profile = p.string("profile"); port = p.int("port"); host = p.string("host"); rtu = p.optionalString("rtu")
        rtuOverTcp = p.flag("rtu-over-tcp"); baud = p.int("baud"); parity = p.string("parity"); stopBits = p.int("stop-bits")
        unit = p.optionalInt("unit"); frozen = p.flag("frozen"); writeLog = p.optionalString("write-log")
        voltage = p.optionalDouble("voltage"); voltageWobble = p.double("voltage-wobble"); sunspecModel = p.int("sunspec-model")
        sunspecBase = p.int("sunspec-base"); unimplemented = p.strings("unimplemented"); fault = p.string("fault")
        faultUnit = p.optionalInt("fault-unit"); faultFile = p.optionalString("fault-file"); capacityWh = p.double("capacity-wh")
        soc = p.double("soc"); maxPowerW = p.double("max-power-w")
    }

    func run() throws {
        let p: DeviceProfile
        do { p = try ProfileLibrary.profile(profile) } catch { throw Failure("\(error)", code: 2) }
        guard let f = DeviceSimulation.Fault(fault) else {
            throw Failure("--fault: expected none, no-answer, exception:N, slow:MS or device[:VALUE], got '\(fault)'", code: 2)
        }
        if f.isDeviceFault, p.control?.fault == nil {
            throw Failure("--fault \(fault): profile \(p.name) names no fault point (control.fault), so there is nothing to set; "
                          + "use a profile with one (gridlet profiles NAME shows it) or add control.fault to a profile file", code: 2)
        }
        guard capacityWh > 0, (0...100).contains(soc), maxPowerW > 0 else {
            throw Failure("--capacity-wh and --max-power-w must be > 0 and --soc 0...100", code: 2)
        }
        if p.sunspec != nil, SunSpec.length(ofModel: sunspecModel) == nil {
            throw Failure("--sunspec-model: expected 201-204 or 211-214, got \(sunspecModel)", code: 2)
        }
        let place: DeviceSimulation.Place
        if rtuOverTcp {
            guard rtu == nil else { throw Failure("give --rtu DEVICE or --rtu-over-tcp, not both", code: 2) }
            place = .rtuOverTCP(host: host, port: port, unit: try rtuUnit(p))
        } else if let rtu {
            let par = try ModbusCLI.parity(parity)
            guard stopBits == 1 || stopBits == 2 else { throw Failure("--stop-bits: expected 1 or 2", code: 2) }
            place = .rtu(device: rtu, baud: baud, parity: par, stopBits: stopBits, unit: try rtuUnit(p))
        } else {
            place = .tcp(host: host, port: port)
        }
        guard (0...50).contains(voltageWobble) else { throw Failure("--voltage-wobble: expected a percent from 0 to 50, got \(voltageWobble)", code: 2) }
        let sim = try DeviceSimulation(profile: p, place: place, frozen: frozen, voltage: voltage, voltageWobblePercent: voltageWobble,
                                       writeLog: writeLog,
                                       sunspecModel: sunspecModel, sunspecBase: sunspecBase, unimplemented: Set(unimplemented),
                                       fault: f, faultUnit: faultUnit, faultFile: faultFile,
                                       capacityWh: capacityWh, socPct: soc, maxPowerW: maxPowerW)
        installSimulatorSignals()
        let shown = rtuOverTcp ? "RTU over TCP \(host):\(port) unit \(unit ?? p.defaultUnit)"
            : rtu.map { "RTU \($0) unit \(unit ?? p.defaultUnit) \(baud) \(parity) \(stopBits) stop" } ?? "\(host):\(port)"
        printError("<5>gridlet simulate: \(p.name) on \(shown)\(frozen ? " (frozen)" : "")\(f.isNone ? "" : " fault \(f)")")
        try sim.run(until: { simulatorStop() })
    }

    /// --unit, else the profile's; RTU addresses units 1...247.
    func rtuUnit(_ p: DeviceProfile) throws -> Int {
        let u = unit ?? p.defaultUnit
        guard (1...247).contains(u) else { throw Failure("--unit: RTU unit ids are 1...247 (the profile says \(p.defaultUnit); pass --unit)", code: 2) }
        return u
    }
}
