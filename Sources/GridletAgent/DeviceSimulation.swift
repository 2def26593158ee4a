import Glibc
import GridletCore
import GridletModbus

/// `gridlet simulate`: a profile's register map served by the built-in libmodbus server over
/// TCP, RTU, or RTU over TCP (the simulator behind a listening bridge, as a transparent
/// serial-to-Ethernet adapter would be), so the executable only parses and prints.
public final class DeviceSimulation {
    /// Where the simulated device answers.
    public enum Place: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case rtu(device: String, baud: Int, parity: Parity, stopBits: Int, unit: Int)
        case rtuOverTCP(host: String, port: Int, unit: Int)
    }

    /// A fault the device plays: `none`, `no-answer`, `exception:N`, `slow:MS`, or `device[:VALUE]`
    /// (it answers, and its profile's `control.fault` point says it is in fault).
    public struct Fault: Sendable, Equatable, CustomStringConvertible {
        fileprivate let value: SimulatorFault
        /// nil when `text` is none of the forms above.
        public init?(_ text: String) {
            guard let f = SimulatorFault(text) else { return nil }
            value = f
        }
        public var isNone: Bool { value == .none }
        /// True for `device[:VALUE]`, which needs a profile with a fault point.
        public var isDeviceFault: Bool { if case .device = value { return true } else { return false } }
        public var description: String { value.description }
    }

    private let simulator: ModbusSimulator
    private let listener: RTUOverTCPListener?

    /// Sets the device up; for RTU over TCP it already listens on host:port.
    public init(profile: DeviceProfile, place: Place, frozen: Bool = false, voltage: Double? = nil, voltageWobblePercent: Double = 0,
                writeLog: String? = nil,
                sunspecModel: Int = 203, sunspecBase: Int = 40000, unimplemented: Set<String> = [],
                fault: Fault, faultUnit: Int? = nil, faultFile: String? = nil,
                capacityWh: Double = 60_000, socPct: Double = 50, maxPowerW: Double = 7400) throws(DiagnosticsError) {
        let transport: SimulatorTransport
        switch place {
        case let .tcp(host, port):
            transport = .tcp(host: host, port: port)
            listener = nil
        case let .rtu(device, baud, parity, stopBits, unit):
            transport = .rtu(device: device, baud: baud, parity: parity, dataBits: 8, stopBits: stopBits, unit: unit)
            listener = nil
        case let .rtuOverTCP(host, port, unit):
            guard let l = RTUOverTCPListener(host: host, port: port) else {
                throw DiagnosticsError("cannot listen on \(host):\(port): \(String(cString: strerror(errno))); pick another --port, or stop what listens there (ss -ltnp)")
            }
            l.start()
            listener = l
            // The bridge's end is a pty, where line settings have no effect.
            transport = .rtu(device: l.devicePath, baud: 115_200, parity: .none, dataBits: 8, stopBits: 1, unit: unit)
        }
        simulator = ModbusSimulator(profile: profile, transport: transport, frozen: frozen, voltage: voltage,
                                    voltageWobblePercent: voltageWobblePercent, writeLog: writeLog,
                                    sunspecModel: sunspecModel, sunspecBase: sunspecBase, unimplemented: unimplemented,
                                    fault: fault.value, faultUnit: faultUnit, faultFile: faultFile,
                                    battery: SimulatedBattery(capacityWh: capacityWh, socPct: socPct, maxPowerW: maxPowerW))
    }

    /// Serves on the calling thread until `shouldStop` returns true (checked between requests).
    public func run(until shouldStop: () -> Bool) throws(DiagnosticsError) {
        defer { listener?.stop() }
        do { try simulator.runForever(until: shouldStop) } catch { throw DiagnosticsError("\(error)") }
    }
}
