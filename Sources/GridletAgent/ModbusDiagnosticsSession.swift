import GridletSys
import Glibc
import GridletCore
import GridletModbus

/// The bus side of `gridlet modbus` and `gridlet scan`: where their transactions go, and the
/// I/O itself, so the executable only parses options and prints answers.
///
/// A bus the configuration names (by `--bus`, or by the endpoint given on the command line)
/// goes through the running daemon when its socket exists: the daemon owns that bus, and an
/// RS-485 line takes one master. Otherwise, or once the daemon stops answering, the session
/// opens the bus itself (it is then the only master) without retries: diagnostics report the
/// first failure.
public final class ModbusDiagnosticsSession {
    /// What the command line named.
    public enum Endpoint: Sendable, Equatable {
        /// A bus of the configuration, by name.
        case configured(String)
        /// An endpoint given on the command line; `name` is how it was written (answers name the bus so).
        case given(BusConfig.Kind, name: String)
    }

    /// What a scan reports while it runs (the command line prints it as progress).
    public enum ScanProgress: Sendable, Equatable {
        /// Before the first unit: whether the units are probed through the daemon.
        case started(throughDaemon: Bool)
        /// The daemon went away mid-scan; the remaining units are probed directly.
        case daemonGone
        case probed(unit: Int, ModbusProbe)
    }

    /// How to open the bus directly.
    private struct DirectBus {
        var name: String
        var kind: BusConfig.Kind
        var gapMs: Int
        var rs485Mode: RS485Mode
        var rtsDelayUs: Int?
    }

    /// The bus's name in answers: the configured name, or the endpoint as written.
    public var busName: String { direct.name }
    private let direct: DirectBus
    private let timeoutMs: Int
    /// The daemon's socket while requests go through it.
    private var daemonSocket: String?
    private var bus: ModbusBus?

    /// - Parameters:
    ///   - timeoutMs: the response timeout for every transaction, direct or through the daemon.
    ///   - rs485Mode, rtsDelayUs: for an RTU endpoint given on the command line (a configured bus has its own).
    ///   - configuration: the loaded configuration, nil when there is none (then nothing goes through a daemon).
    ///   - configPath: names the configuration in errors.
    public init(_ endpoint: Endpoint, timeoutMs: Int, rs485Mode: RS485Mode = .auto, rtsDelayUs: Int? = nil,
                configuration: ConfigLoading.Loaded?, configPath: String) throws(DiagnosticsError) {
        self.timeoutMs = timeoutMs
        let shared: BusConfig?
        switch endpoint {
        case let .configured(name):
            guard let configuration else {
                throw DiagnosticsError("bus '\(name)' needs a configuration, and \(configPath) was not loaded; pass --config PATH",
                                       isUsage: true)
            }
            guard let b = configuration.config.bus(named: name) else {
                let names = configuration.config.buses.map(\.name).joined(separator: ", ")
                throw DiagnosticsError("no bus '\(name)' in \(configPath); configured: \(names)", isUsage: true)
            }
            shared = b
        case let .given(kind, name):
            shared = configuration?.config.buses.first { Self.sameEndpoint($0.kind, kind) }
            if shared == nil {
                let gapMs = if case .tcp = kind { 0 } else { 20 }   // RTU framing needs silence between frames
                direct = DirectBus(name: name, kind: kind, gapMs: gapMs, rs485Mode: rs485Mode, rtsDelayUs: rtsDelayUs)
                return
            }
        }
        guard let shared, let configuration else { preconditionFailure("a configured bus without a configuration") }
        direct = DirectBus(name: shared.name, kind: shared.kind, gapMs: Int(shared.gapMs), rs485Mode: shared.rs485Mode,
                           rtsDelayUs: shared.rtsDelayUs)
        let socket = SocketPath.resolve(configured: configuration.config.site.socket)
        if access(socket, F_OK) == 0 { daemonSocket = socket }
    }

    deinit { close() }

    /// Stops the directly opened bus, if any.
    public func close() {
        bus?.stop()
        bus = nil
    }

    /// One raw transaction; the JSON answer of the daemon's `modbus` request (`ok`, `registers`
    /// or `error`), whichever way it went. Check `operation.problem` first.
    public func perform(_ operation: ModbusOperation, unit: Int) throws(DiagnosticsError) -> String {
        if let socket = daemonSocket {
            let request: String
            switch operation {
            case let .read(fc, a, c): request = "modbus \(busName) \(unit) read \(fc) \(a) \(c)"
            case let .write(fc, a, v): request = "modbus \(busName) \(unit) write \(fc) \(a) \(v.map(String.init).joined(separator: ","))"
            }
            if let answer = try ask(request + " \(timeoutMs)", socket: socket) { return answer }
            daemonSocket = nil
        }
        return DiagnosticsRequests.modbusJSON(bus: busName, unit: unit, op: operation,
                                              result: ModbusDiagnostics.perform(operation, unit: unit, on: openBus()))
    }

    /// Probes `units` one at a time (each through the daemon is a separate request, so its polls
    /// go on between them); the JSON answer of the daemon's `scan` request.
    public func scan(_ units: ClosedRange<Int>, progress: (ScanProgress) -> Void) throws(DiagnosticsError) -> String {
        if daemonSocket == nil, case .rtu = direct.kind, units.lowerBound == 0 || units.upperBound > 247 {
            throw DiagnosticsError("RTU unit ids are 1...247; pass --from/--to within it", isUsage: true)
        }
        progress(.started(throughDaemon: daemonSocket != nil))
        let start = SystemClock.monoMs()
        var via = "direct"
        var results: [(unit: Int, probe: ModbusProbe)] = []
        for unit in units {
            var probe: ModbusProbe?
            if let socket = daemonSocket {
                if let answer = try ask("scan \(busName) \(unit) \(unit) \(timeoutMs)", socket: socket) {
                    probe = try Self.probe(fromDaemon: answer, unit: unit)
                    via = "daemon"
                } else {
                    progress(.daemonGone)
                    daemonSocket = nil
                }
            }
            let result = probe ?? ModbusDiagnostics.scan(unit...unit, on: openBus(), timeoutMs: timeoutMs)[0].probe
            results.append((unit, result))
            progress(.probed(unit: unit, result))
        }
        return DiagnosticsRequests.scanJSON(bus: busName, results: results, elapsedMs: SystemClock.monoMs() - start, via: via)
    }

    private func openBus() -> ModbusBus {
        if let bus { return bus }
        let b = ModbusBus(name: direct.name, transport: ModbusTransport(direct.kind), timeoutMs: timeoutMs, retries: 0,
                          gapMs: direct.gapMs, rs485Mode: direct.rs485Mode, rtsDelayUs: direct.rtsDelayUs)
        bus = b
        return b
    }

    /// The daemon's answer; nil when no daemon listens (then the caller goes direct).
    private func ask(_ request: String, socket: String) throws(DiagnosticsError) -> String? {
        switch LocalClient.request(request, socketPath: socket, timeoutS: 10 + timeoutMs / 1000) {
        case let .success(text): return text
        case let .failure(e):
            if e.description.hasPrefix("cannot reach the daemon") { return nil }
            throw DiagnosticsError(e.description)
        }
    }

    /// One unit's probe from the daemon's `scan BUS U U TIMEOUT` answer.
    static func probe(fromDaemon answer: String, unit: Int) throws(DiagnosticsError) -> ModbusProbe {
        guard let v = try? JSONValue.parse(answer) else { throw DiagnosticsError("unreadable answer from the daemon: \(answer.prefix(200)); run the same gridlet version as the daemon (gridlet --version)") }
        guard v["ok"]?.boolValue == true else { throw DiagnosticsError(v["error"]?.stringValue ?? answer) }
        guard let f = (v["found"]?.arrayValue ?? []).first(where: { Int($0["unit"]?.doubleValue ?? -1) == unit }) else {
            return .none("no answer")
        }
        if let c = f["exception"]?.doubleValue { return .exception(Int(c)) }
        return .answered
    }

    /// The same bus: the same host and port, or the same serial device (whatever its line settings).
    static func sameEndpoint(_ a: BusConfig.Kind, _ b: BusConfig.Kind) -> Bool {
        switch (a, b) {
        case let (.tcp(h1, p1), .tcp(h2, p2)): return h1 == h2 && p1 == p2
        case let (.rtu(d1, _, _, _, _, _), .rtu(d2, _, _, _, _, _)): return d1 == d2
        case let (.rtuOverTCP(h1, p1), .rtuOverTCP(h2, p2)): return h1 == h2 && p1 == p2
        default: return false
        }
    }
}
