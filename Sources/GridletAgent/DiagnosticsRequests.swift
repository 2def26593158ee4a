import GridletCore
import GridletModbus
import GridletSys

/// Diagnostics requests on the local socket and their JSON answers (also used by the CLI when
/// no daemon runs, so both paths print the same).
///
/// - `modbus BUS UNIT read FC ADDRESS COUNT [TIMEOUT_MS]`
/// - `modbus BUS UNIT write FC ADDRESS V1,V2,... [TIMEOUT_MS]` (raw register values; refused on
///   a charger register the daemon drives, see `DrivenRegisters`)
/// - `scan BUS FROM TO [TIMEOUT_MS]`
///
/// TIMEOUT_MS (1...60000) replaces the bus timeout for that request; diagnostics never retry.
/// The CLI scans one unit per request so the daemon's polls go on between them.
public enum DiagnosticsRequests {
    public static func modbusJSON(bus: String, unit: Int, op: ModbusOperation,
                                  result: Result<[UInt16], ModbusError>, via: String = "direct") -> String {
        let fields = operationFields(bus: bus, unit: unit, op: op, via: via)
        switch result {
        case let .success(regs):
            return JSONValue.object([("ok", .bool(true))] + fields + [("registers", .array(regs.map { .number(Double($0)) }))]).serialized
        case let .failure(e):
            var err: [(String, JSONValue)] = [("error", .string(e.description)), ("message", .string(e.message))]
            if case let .exception(code) = e.kind { err.append(("exception", .number(Double(code)))) }
            return JSONValue.object([("ok", .bool(false))] + fields + err).serialized
        }
    }

    static func operationFields(bus: String, unit: Int, op: ModbusOperation, via: String) -> [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [("via", .string(via)), ("bus", .string(bus)), ("unit", .number(Double(unit)))]
        switch op {
        case let .read(fc, address, count):
            fields += [("function", .number(Double(fc))), ("address", .number(Double(address))), ("count", .number(Double(count)))]
        case let .write(fc, address, values):
            fields += [("function", .number(Double(fc))), ("address", .number(Double(address))), ("count", .number(Double(values.count)))]
        }
        return fields
    }

    public static func scanJSON(bus: String, results: [(unit: Int, probe: ModbusProbe)], elapsedMs: Int64,
                                via: String = "direct") -> String {
        let found = results.filter { $0.probe.found }.map { r -> JSONValue in
            var f: [(String, JSONValue)] = [("unit", .number(Double(r.unit)))]
            if case let .exception(c) = r.probe { f.append(("exception", .number(Double(c)))) }
            return .object(f)
        }
        return JSONValue.object([("ok", .bool(true)), ("via", .string(via)), ("bus", .string(bus)), ("scanned", .number(Double(results.count))),
                                 ("elapsed_ms", .number(Double(elapsedMs))), ("found", .array(found))]).serialized
    }

    static func error(_ text: String) -> String {
        JSONValue.object([("ok", .bool(false)), ("error", .string(text))]).serialized
    }

    /// Answers a `modbus` or `scan` request on one of the daemon's buses. A write to a register in
    /// `driven` is refused before it reaches the bus (`"refused":true`, see `DrivenRegisters`).
    static func respond(_ words: [String], buses: [ModbusBus], driven: DrivenRegisters = DrivenRegisters()) -> String {
        guard words.count >= 2 else { return error("usage: modbus BUS UNIT read|write ... or scan BUS FROM TO") }
        guard let bus = buses.first(where: { $0.name == words[1] }) else {
            return error("unknown bus '\(words[1])'; configured: \(buses.map(\.name).joined(separator: ", "))")
        }
        var words = words
        var timeoutMs: Int?
        let plain = words[0] == "scan" ? 4 : 7
        if words.count == plain + 1 {
            guard let t = Int(words[plain]), (1...60_000).contains(t) else { return error("timeout must be 1...60000 ms") }
            timeoutMs = t
            words.removeLast()
        }
        if words[0] == "scan" {
            guard words.count == 4, let from = Int(words[2]), let to = Int(words[3]), from >= 0, from <= to, to <= 255 else {
                return error("usage: scan BUS FROM TO [TIMEOUT_MS]")
            }
            let start = SystemClock.monoMs()
            let results = ModbusDiagnostics.scan(from...to, on: bus, timeoutMs: timeoutMs)
            return scanJSON(bus: bus.name, results: results, elapsedMs: SystemClock.monoMs() - start, via: "daemon")
        }
        guard words.count == 7, let unit = Int(words[2]), let fc = Int(words[4]), let address = Int(words[5]) else {
            return error("usage: modbus BUS UNIT read FC ADDRESS COUNT [TIMEOUT_MS] | modbus BUS UNIT write FC ADDRESS V1,V2,... [TIMEOUT_MS]")
        }
        let op: ModbusOperation
        switch words[3] {
        case "read":
            guard let count = Int(words[6]) else { return error("count must be a number") }
            op = .read(function: fc, address: address, count: count)
        case "write":
            let values = words[6].split(separator: ",").compactMap { UInt16($0) }
            guard !values.isEmpty, values.count == words[6].split(separator: ",").count else { return error("values must be 0...65535") }
            op = .write(function: fc, address: address, values: values)
        default:
            return error("expected read or write, got '\(words[3])'")
        }
        if let problem = op.problem { return error(problem) }
        if let refusal = driven.refusal(of: op, bus: bus.name, unit: unit) {
            let fields = operationFields(bus: bus.name, unit: unit, op: op, via: "daemon")
            return JSONValue.object([("ok", .bool(false))] + fields + [("error", .string(refusal)), ("refused", .bool(true))]).serialized
        }
        return modbusJSON(bus: bus.name, unit: unit, op: op,
                          result: ModbusDiagnostics.perform(op, unit: unit, on: bus, deviceName: "modbus",
                                                            overrides: .init(timeoutMs: timeoutMs, retries: 0)),
                          via: "daemon")
    }
}

extension DrivenRegisters {
    /// The registers of the chargers the daemon drives: role `charger` with a profile `control:`
    /// section (the ones the agent makes a `ChargerDriver` for). A charger alone on a Modbus TCP
    /// bus is matched whatever the unit id of the write (such devices usually ignore it).
    init(links: [DeviceLink]) {
        var registers: [DrivenRegister] = []
        for link in links where link.config.role == .charger {
            guard link.profile.control != nil || link.profile.power != nil else { continue }
            let aloneOnTCP: Bool
            if case .tcp = link.bus.transport {
                aloneOnTCP = links.filter { $0.bus === link.bus }.count == 1
            } else {
                aloneOnTCP = false
            }
            if let control = link.profile.control { registers += DrivenRegister.of(link.config, control: control, anyUnit: aloneOnTCP) }
            if let power = link.profile.power { registers += DrivenRegister.of(link.config, power: power, anyUnit: aloneOnTCP) }
        }
        self.init(registers)
    }
}
