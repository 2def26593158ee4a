import ArgumentParser
import GridletAgent
import GridletCore
import GridletYAML

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a profile's register map over Modbus TCP or RTU (libmodbus server) for demos and tests.",
        discussion: """
            Faults: --fault no-answer | exception:N | slow:300ms [--fault-unit N], or --fault device[:VALUE]: a
            charger that answers and says it is in fault (its profile's control.fault point serves VALUE, by default
            the first value the profile lists as a fault). With --fault-file PATH the fault is read from that file
            about every 100 ms (same syntax, optionally FAULT@UNIT; a missing file means none), so a test can make
            the device stop answering, or go into fault, mid-run.
            """)
    @Argument(help: "Built-in profile name or profile file.") var profile: String
    @Option(name: .long, help: "TCP port.") var port: Int = 1502
    @Option(name: .long, help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(name: .long, help: "Serve Modbus RTU on this serial device (e.g. a socat pty) instead of TCP.") var rtu: String?
    @Flag(name: .long, help: "Serve RTU frames over raw TCP on --host/--port (a transparent serial-to-Ethernet adapter).")
    var rtuOverTcp = false
    @Option(name: .long, help: "RTU: baud rate.") var baud: Int = 9600
    @Option(name: .long, help: "RTU: parity none|even|odd.") var parity: String = "none"
    @Option(name: .long, help: "RTU: stop bits 1|2.") var stopBits: Int = 1
    @Option(name: .long, help: "RTU: unit id answered (default: the profile's unit).") var unit: Int?
    @Flag(name: .long, help: "Keep values constant (for exact comparisons).") var frozen = false
    @Option(name: .long, help: "Append every write received as a JSON line to this file.") var writeLog: String?
    @Option(name: .long, help: "Serve this phase voltage on every phase (e.g. 230).") var voltage: Double?
    @Option(name: .long, help: "Raise every phase voltage by this percent in every other second (e.g. 0.5), also with --frozen.")
    var voltageWobble: Double = 0
    @Option(name: .long, help: "SunSpec profiles: meter model to serve (201-204, 211-214).") var sunspecModel: Int = 203
    @Option(name: .long, help: "SunSpec profiles: address of the 'SunS' marker (40000, 0 or 50000).") var sunspecBase: Int = 40000
    @Option(name: .long, parsing: .upToNextOption, help: "SunSpec profiles: points served as 'not implemented'.") var unimplemented: [String] = []
    @Option(name: .long, help: "Inject a fault: none, no-answer, exception:N, slow:MS, device[:VALUE].") var fault: String = "none"
    @Option(name: .long, help: "Apply the fault to this unit id only.") var faultUnit: Int?
    @Option(name: .long, help: "Read the fault from this file at run time.") var faultFile: String?
    @Option(name: .long, help: "Bidirectional profiles: battery capacity in Wh.") var capacityWh: Double = 60_000
    @Option(name: .long, help: "Bidirectional profiles: state of charge at start, in %.") var soc: Double = 50
    @Option(name: .long, help: "Bidirectional profiles: the most the device charges or discharges, in W.") var maxPowerW: Double = 7400

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
