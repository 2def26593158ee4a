import GridletCore

/// From readings to register writes: the engine decides the limit, each charger's driver decides
/// its writes, the agent performs them on the device's bus.
extension Agent {
    func control(nowWall: Int64, nowMono: Int64) {
        guard readings.settle(nowMono: nowMono) else { return }
        let advanced = engine.advance(nowMs: nowWall)
        if advanced.changed { persistInBackground() }
        for r in advanced.responses { log.info("event \(r.event): \(r.status.name)") }
        emit(advanced.responses, wallMs: nowWall)
        applyLimits(nowWall: nowWall, nowMono: nowMono)
    }

    /// Decides the effective limit and drives the chargers. Called every turn, and right after
    /// a command changed the engine, before its state is persisted.
    func applyLimits(nowWall: Int64, nowMono: Int64) {
        guard readings.settled else { return }
        let chargers = readings.chargerIndices
        var hardwareMaxW = 0.0
        var chargerPowerW = 0.0
        for i in chargers {
            let d = devices[i].config
            hardwareMaxW += d.maxCurrent * Double(d.phases) * readings.voltage(charger: i)
            chargerPowerW += readings.health[i].value("power_w") ?? 0
        }
        assessChargerFaults()
        let faulty = drivers.keys.sorted().first {
            readings.health[$0].fault != nil || drivers[$0]?.fault(deviceAnswering: readings.health[$0].ok) != nil
        } ?? faultyPowerDevice
        if clockCheckCadence.due(nowMs: nowMono) { clockSynced = time.isSynchronised() }
        let previous = decision
        let d = engine.decide(nowMs: nowWall, inputs: ControlInputs(
            hardwareMaxW: hardwareMaxW, hasSiteMeter: readings.siteMeterIndex != nil,
            siteMeterPowerW: readings.siteMeterPowerW(nowMono: nowMono), chargerPowerW: chargerPowerW,
            faultyDevice: faulty.map { devices[$0].config.name }, clockSynced: clockSynced))
        decision = d
        if d.restoring != lastRestoring { lastRestoring = d.restoring; persistInBackground() }
        feedLedger(nowWall: nowWall, nowMono: nowMono, source: d.targetSource)
        if previous?.source != d.source || previous?.commOK != d.commOK {
            log.notice("control: \(d.source), limit \(JSONValue.format(d.limitW)) W, comm \(d.commOK ? "ok" : "lost")")
        }
        requestedW = d.limitW

        // The limit and the fallback are split evenly over the chargers.
        let share = chargers.isEmpty ? 0 : d.limitW / Double(chargers.count)
        let fallbackShare = chargers.isEmpty ? 0 : config.control.fallbackLimitW / Double(chargers.count)
        for i in drivers.keys.sorted() {
            guard var driver = drivers[i], let control = devices[i].profile.control else { continue }
            let v = readings.voltage(charger: i)
            let before = driver.written
            let actions = driver.drive(limitW: share, voltage: v, fallbackW: fallbackShare, nowMs: nowMono)
            drivers[i] = driver
            let box = mailbox
            for action in actions {
                switch action {
                case let .write(register, value):
                    if register == .setpoint, let sp = driver.written, sp != before {
                        log.info("charger \(devices[i].config.name): \(sp.paused ? "pause (0 A)" : "\(JSONValue.format(sp.amps)) A") for \(JSONValue.format(share)) W (\(d.source), \(JSONValue.format(v)) V)")
                    }
                    guard let target = control.register(register) else { continue }
                    devices[i].write(target, value: value) { r in
                        box.post(.wrote(device: i, register: register, value: value, result: r))
                    }
                case let .read(register):
                    guard let target = control.register(register) else { continue }
                    devices[i].read(target) { r in box.post(.readBack(device: i, register: register, result: r)) }
                }
            }
        }
        drivePower(d, importShareW: share, faulty: faulty.map { devices[$0].config.name }, nowWall: nowWall, nowMono: nowMono)
    }

    // MARK: energy ledger

    func feedLedger(nowWall: Int64, nowMono: Int64, source: String) {
        let sample = readings.takeLedgerSample()
        // A dispatch event's market tag goes with its energy (award hours apart from retail).
        let market = source.hasPrefix("dispatch:") ? engine.events.first { "dispatch:" + $0.id == source }?.market : nil
        let records = ledger.feed(nowMs: nowWall, sample: sample, source: source, market: market)
        for r in records {
            enqueue(.ledger, Array(JSONValue.object(r.jsonFields).serialized.utf8), wallMs: nowWall)
        }
        reportUsage(records, nowWall: nowWall)
        logLedger(records)
        // Saved whenever records were emitted (after the queue holds them durably, so a crash can
        // neither lose nor repeat energy), and every minute so the outage after a crash is short.
        let minute = sample != nil && ledgerSaveCadence.waitMs(nowMs: nowMono) == 0
        if !records.isEmpty || minute {
            saveLedger(syncQueue: !records.isEmpty)
            _ = ledgerSaveCadence.due(nowMs: nowMono)
        }
    }

    /// Restores the ledger saved by the previous run: its open segment is closed with its own
    /// source, and the time until now goes to `derate:agent_offline` (see EnergyLedger).
    func resumeLedger() {
        guard let bytes = StateFile.read(ledgerPath) else { return }
        guard let state = try? JSONValue.parse(bytes), let closed = ledger.restore(state) else {
            log.warning("ignoring unreadable \(ledgerPath); the ledger starts at the first reading")
            return
        }
        let nowWall = time.wallMs()
        if let side = openADR, let u = state["openadr_usage"], !side.usage.restore(u) {
            log.warning("ignoring the unreadable OpenADR usage state in \(ledgerPath); the open interval is not reported")
        }
        for r in closed { enqueue(.ledger, Array(JSONValue.object(r.jsonFields).serialized.utf8), wallMs: nowWall) }
        reportUsage(closed, nowWall: nowWall)
        logLedger(closed)
        if let t = state["t"]?.doubleValue {
            log.info("ledger resumed from the reading at \(Timestamp.format(ms: Int64(t)))")
        }
        saveLedger(syncQueue: !closed.isEmpty)
    }

    /// Saves `ledger.json`; `syncQueue`: only once the queue holds the records just emitted
    /// durably. With background syncs that is a sync request and the save follows its completion
    /// (`releaseDurable`; a save asked for meanwhile waits with it), so the loop never waits for
    /// the disk; else the queue syncs here.
    func saveLedger(syncQueue: Bool) {
        guard ledger.persistentState != nil else { return }
        if queue.syncsInBackground && (syncQueue || ledgerSaveAfterSeq != nil) {
            if syncQueue {
                do { try queue.requestSync(nowMs: time.wallMs()) } catch {
                    log.error("queue sync before saving the ledger failed (ledger not saved): \(error)")
                    return
                }
                ledgerSaveAfterSeq = queue.stats.nextSeq
            }
            releaseDurable()
            return
        }
        if syncQueue {
            do { try queue.sync() } catch {
                log.error("queue sync before saving the ledger failed (ledger not saved): \(error)")
                return
            }
            ledgerLog.sync()
        }
        writeLedgerState(syncLog: false)
    }

    /// `ledger.json` through the state writer (`syncLog`: it fdatasyncs `ledger.log` first).
    func writeLedgerState(syncLog: Bool) {
        guard var state = ledger.persistentState else { return }
        // The OpenADR usage reports' open interval goes with the ledger's open segment (one file,
        // one write), so a restart neither reports an interval twice nor loses part of one.
        if let side = openADR, case .object(var fields) = state {
            fields.append(("openadr_usage", side.usage.persistentState))
            state = .object(fields)
        }
        stateStore.submit(path: ledgerPath, bytes: Array(state.serialized.utf8), durable: true, token: nil,
                          syncFirst: syncLog ? ledgerLog.path : nil)
    }
}

extension Agent {
    /// Appends to `state_dir/ledger.log`; a failure is logged once (the queue stays the record).
    func logLedger(_ records: [LedgerRecord]) {
        let hadError = ledgerLog.lastError != nil
        if let e = ledgerLog.append(records), !hadError { log.warning("ledger log: \(e) (gridlet ledger will miss these records)") }
    }
}

extension ChargerControl {
    /// The profile register behind a driver's register.
    func register(_ r: ChargerRegister) -> ProfileRegister? {
        switch r {
        case .setpoint: return chargingCurrent
        case .alive: return alive
        case .failsafeCurrent: return failsafeCurrent
        case .failsafeTimeout: return failsafeTimeout
        }
    }
}
