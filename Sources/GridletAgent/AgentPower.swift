import GridletCore
import GridletModbus

/// Bidirectional devices (profiles with `power:`): the export side of the decision, one
/// `BidirectionalDriver` per device, and what telemetry and the state say about them.
extension Agent {
    /// A `BidirectionalDriver` for every charger whose profile has a `power:` section.
    static func makePowerDrivers(devices: [any DevicePort], chargers: [Int], failsafeTimeoutMs: Int64) -> [Int: BidirectionalDriver] {
        var out: [Int: BidirectionalDriver] = [:]
        for i in chargers {
            guard let power = devices[i].profile.power else { continue }
            out[i] = BidirectionalDriver(settings: BidirectionalDriverSettings(device: devices[i].config, power: power,
                                                                               failsafeTimeoutMs: failsafeTimeoutMs))
        }
        return out
    }

    /// The hardware charge maximum of device `i` now (`max_current` × phases × V).
    func chargeMaxW(_ i: Int) -> Double {
        let d = devices[i].config
        return d.maxCurrent * Double(d.phases) * readings.voltage(charger: i)
    }

    /// The name of a bidirectional device whose writes fail while it does not answer (the
    /// SafetyDerate input, as for chargers).
    var faultyPowerDevice: Int? {
        powerDrivers.keys.sorted().first { powerDrivers[$0]?.fault(deviceAnswering: readings.health[$0].ok) != nil }
    }

    /// Decides the export side for the import decision `d` and drives the bidirectional devices
    /// with their shares (called from `applyLimits`, after the chargers).
    func drivePower(_ d: ControlDecision, importShareW: Double, faulty: String?, nowWall: Int64, nowMono: Int64) {
        guard !powerDrivers.isEmpty else { return }
        let ids = powerDrivers.keys.sorted()
        var devicePowerW = 0.0
        for i in readings.chargerIndices { devicePowerW += readings.health[i].value("power_w") ?? 0 }
        let x = engine.decideExport(nowMs: nowWall, importLimitW: d.limitW, inputs: ExportInputs(
            dischargeMaxW: ids.reduce(0) { $0 + (devices[$1].config.maxDischargeW ?? chargeMaxW($1)) },
            hasSiteMeter: readings.siteMeterIndex != nil, siteMeterPowerW: readings.siteMeterPowerW(nowMono: nowMono),
            devicePowerW: devicePowerW, faultyDevice: faulty))
        if x.exportSource != exportDecision?.exportSource || x.setpointW != exportDecision?.setpointW {
            log.notice("export: limit \(JSONValue.format(x.exportLimitW)) W (\(x.exportSource)), setpoint "
                       + (x.setpointW.map { "\(JSONValue.format($0)) W (\(x.setpointSource ?? ""))" } ?? "none"))
        }
        exportDecision = x
        let n = Double(ids.count)
        let fallbackShare = config.control.fallbackLimitW / Double(max(1, readings.chargerIndices.count))
        let box = mailbox
        for i in ids {
            guard var driver = powerDrivers[i], let power = devices[i].profile.power else { continue }
            let h = readings.health[i]
            let before = driver.target
            let writes = driver.drive(PowerCommand(
                importLimitW: importShareW, exportLimitW: x.exportLimitW / n, setpointW: x.requestedSetpointW.map { $0 / n },
                chargeMaxW: chargeMaxW(i), socPct: h.ok ? h.value("soc_pct") : nil, fallbackImportW: fallbackShare), nowMs: nowMono)
            powerDrivers[i] = driver
            let name = devices[i].config.name
            if let t = driver.target, t != before {
                let why = t.limitedBy.map { ", limited by \($0)" } ?? ""
                if t.limitedBy == "soc_reserve", before?.limitedBy != "soc_reserve" {
                    log.notice("\(name): state of charge \(JSONValue.format(h.value("soc_pct") ?? 0)) % at the reserve "
                               + "(min_soc_pct \(JSONValue.format(devices[i].config.minSocPct ?? 0))): no discharge")
                }
                log.info("\(name): \(JSONValue.format(t.w)) W\(why) (\(x.setpointSource ?? d.source))")
            }
            for w in writes {
                guard let register = power.register(w.register) else { continue }
                devices[i].write(register, value: w.value) { r in
                    box.post(.wrotePower(device: i, register: w.register, value: w.value, result: r))
                }
            }
        }
    }

    func powerWritten(device i: Int, register: PowerRegister, value: Double, result: Result<[UInt16], ModbusError>) {
        var error: String?
        if case let .failure(e) = result { error = e.description }
        if powerDrivers[i]?.completed(register, error: error, nowMs: time.monoMs()) == true {
            log.error("\(devices[i].config.name): writing \(register) \(JSONValue.format(value)) failed: \(error ?? "")")
        }
    }

    // MARK: reports

    /// The measured power of the bidirectional devices together (+ import), nil when none answers.
    var bidirectionalPowerW: Double? {
        let values = powerDrivers.keys.compactMap { readings.health[$0].ok ? readings.health[$0].value("power_w") : nil }
        return values.isEmpty ? nil : values.reduce(0, +)
    }

    /// `import`, `export` or `idle` from measured power (50 W dead band), else from the targets.
    var powerDirection: String {
        if let p = bidirectionalPowerW { return p > 50 ? "import" : p < -50 ? "export" : "idle" }
        let t = powerDrivers.values.compactMap { $0.target?.w }.reduce(0, +)
        return PowerTarget(w: t).direction
    }

    /// The export side as telemetry and the state show it (nil without bidirectional devices).
    var powerFields: [(String, JSONValue)]? {
        guard !powerDrivers.isEmpty else { return nil }
        let x = exportDecision
        func num(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
        var o: [(String, JSONValue)] = [
            ("export_limit_w", num(x?.exportLimitW)), ("export_source", x.map { .string($0.exportSource) } ?? .null),
            ("setpoint_w", num(x?.setpointW)), ("power_w", num(bidirectionalPowerW)), ("direction", .string(powerDirection)),
        ]
        if let r = x?.requestedSetpointW, r != x?.setpointW { o.append(("requested_setpoint_w", .number(r))) }
        if let c = x?.clampedBy { o.append(("clamped_by", .string(c))) }
        if let m = x?.market { o.append(("market", .string(m))) }
        return o
    }

    /// Telemetry's `control` with the export side added.
    func withPowerControl(_ control: JSONValue) -> JSONValue {
        guard let f = powerFields, case var .object(o) = control else { return control }
        o += f
        return .object(o)
    }

    /// The state with the export side (`power`) and, per bidirectional device, its signed power,
    /// SoC, target and what bound it (`limited_by`, e.g. `soc_reserve`).
    func withPowerState(_ state: JSONValue) -> JSONValue {
        guard let f = powerFields, case var .object(o) = state else { return state }
        o.append(("power", .object(f)))
        if let di = o.firstIndex(where: { $0.0 == "devices" }), case var .object(devs) = o[di].1 {
            for (k, entry) in devs.enumerated() {
                guard let i = devices.firstIndex(where: { $0.config.name == entry.0 }), let driver = powerDrivers[i],
                      case var .object(fields) = entry.1 else { continue }
                let h = readings.health[i]
                func num(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
                fields += [("power_w", num(h.ok ? h.value("power_w") : nil)), ("soc_pct", num(h.ok ? h.value("soc_pct") : nil)),
                           ("setpoint_w", num(driver.target?.w)), ("direction", .string(driver.target?.direction ?? "idle"))]
                if let why = driver.target?.limitedBy { fields.append(("limited_by", .string(why))) }
                devs[k].1 = .object(fields)
            }
            o[di].1 = .object(devs)
        }
        return .object(o)
    }

    /// The state as compared for "changed" (Reports.stateChangeKey): the export limit follows the
    /// site meter, so it counts in steps of 100 W like `limit_w`.
    func powerKeyed(_ state: JSONValue) -> JSONValue {
        guard case var .object(o) = state, let pi = o.firstIndex(where: { $0.0 == "power" }), case var .object(p) = o[pi].1 else { return state }
        p.removeAll { $0.0 == "power_w" || $0.0 == "direction" }
        if let xi = p.firstIndex(where: { $0.0 == "export_limit_w" }), let x = p[xi].1.doubleValue {
            p[xi].1 = .number((x / 100).rounded())
        }
        o[pi].1 = .object(p)
        return .object(o)
    }
}

extension BidirectionalControl {
    /// The profile register behind a driver's register.
    func register(_ r: PowerRegister) -> ProfileRegister? {
        switch r {
        case let .setup(i): return setup.indices.contains(i) ? setup[i].register : nil
        case .reversionTimeout: return reversionTimeout
        case .reversionSetpoint: return reversionSetpoint
        case .setpoint: return setpoint
        }
    }
}

