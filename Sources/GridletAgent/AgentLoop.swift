import Glibc
import GridletCore
import GridletModbus
import GridletMQTT
import GridletOpenADR
import GridletQueue
import GridletSys
import Synchronization

/// One turn of the control loop: how long it may sleep, what each input does, what the time
/// makes due. The machines decide; this performs what they return.
extension Agent {
    /// Sleeps until something is due, never on a fixed tick (issue "Lean": no timer that fires
    /// when nothing is due): a poll, telemetry, a charger retry or refresh, a replay slot, the
    /// queue's batch sync, the engine's next transition (an event start or end, the comm-loss
    /// deadline), the watchdog, the metrics file, the comm record; while restoring (ramping) or
    /// before the start-up settle, every 200 ms; at most a second.
    func nextWaitMs() -> Int64 {
        let now = time.monoMs()
        var wait: Int64 = 1000
        if let w = polls.nextWaitMs(nowMs: now) { wait = min(wait, w) }
        wait = min(wait, telemetryCadence.waitMs(nowMs: now))
        wait = min(wait, commSaveCadence.waitMs(nowMs: now))
        if let w = watchdogCadence { wait = min(wait, w.waitMs(nowMs: now)) }
        wait = min(wait, max(0, metricsFile.nextMonoMs - now))
        for d in drivers.values { if let due = d.nextDueMs() { wait = min(wait, due - now) } }
        for d in powerDrivers.values { if let due = d.nextDueMs() { wait = min(wait, due - now) } }
        // Wake for an event's or schedule's start or end (wall clock), not after it.
        if let next = decision?.nextTransitionMs { wait = min(wait, max(0, next - time.wallMs())) }
        if decision?.restoring == true || !readings.settled { wait = min(wait, 200) }
        if let since = queue.unsyncedSinceMs { wait = min(wait, max(0, since + config.queue.syncIntervalMs - time.wallMs())) }
        if pipeline.hasLive() { wait = 1 }
        let backlog = queue.stats.records - (openADR?.reports.pending.count ?? 0)   // reports go to the VTN, not the broker
        if let us = pipeline.replayWaitUs(nowUs: time.monoUs(), backlog: backlog) { wait = min(wait, us / 1000) }
        if let w = reportWaitMs(nowMono: now) { wait = min(wait, w) }
        return max(1, wait)
    }

    // MARK: inputs

    func handle(_ input: AgentInput) {
        let nowWall = time.wallMs()
        let nowMono = time.monoMs()
        switch input {
        case let .polled(i, result):
            polls.completed(i, success: (try? result.get()) != nil, nowMs: nowMono)
            let name = devices[i].config.name
            switch result {
            case let .success(values):
                if readings.polled(i, values: values, nowWall: nowWall, nowMono: nowMono) == .answering {
                    log.info("device \(name) answering")
                }
            case let .failure(e):
                // PollScheduler backs off a device that stops answering, so it does not hold up its bus.
                if case .failing = readings.failed(i, error: e.description) { log.warning("device \(name): \(e)") }
            }
        case let .wrote(i, register, value, result):
            var error: String? = nil
            if case let .failure(e) = result { error = e.description }
            if drivers[i]?.completed(register, error: error, nowMs: nowMono) == true {
                log.error("charger \(devices[i].config.name): writing \(register.rawValue) \(JSONValue.format(value)) failed: \(error ?? "")")
            }
        case let .readBack(i, register, result):
            let value = try? result.get()
            var error: String? = nil
            if case let .failure(e) = result { error = e.description }
            let name = devices[i].config.name
            switch drivers[i]?.readBack(register, value: value, error: error, nowMs: nowMono) {
            case let .mismatch(read, expected)?:
                log.error("charger \(name): \(register.rawValue) reads \(JSONValue.format(read)) after writing \(JSONValue.format(expected)); writing it again")
            case let .unreadable(e)?:
                log.warning("charger \(name): cannot read back \(register.rawValue) (\(e)); the write stands unverified")
            case .verified?, nil:
                break
            }
        case let .wrotePower(i, register, value, result):
            powerWritten(device: i, register: register, value: value, result: result)
        case let .mqtt(event):
            handleMQTT(event, nowWall: nowWall)
        case let .local(request):
            if let answer = answerLocal(request, nowWall: nowWall) { request.reply(answer) }
        case let .stored(result):
            stored(result)
        case let .openADR(report):
            handleOpenADR(report, nowWall: nowWall)
        case let .queueSynced(id, e):
            // A failure puts the queue into its failed state; the turn's recovery takes it from there.
            do { try queue.completeSync(id: id, errno: e, nowMs: nowWall) } catch {
                log.error("\(error) (on the sync thread); what was not synced yet is given up and reported by a gap record")
                queueErrorLogged = true
            }
        }
    }

    /// The queue drops what the broker acknowledged (SPEC §4), one checkpoint for the lot.
    func writeAcks() {
        guard !acksToWrite.isEmpty else { return }
        do { try queue.ack(seqs: acksToWrite) } catch { log.error("queue ack failed (the records are sent again after a restart): \(error)") }
        acksToWrite.removeAll(keepingCapacity: true)
    }

    // MARK: the control loop turn

    func turn() {
        let nowMono = time.monoMs()
        let nowWall = time.wallMs()
        for i in polls.due(nowMs: nowMono) {
            let box = mailbox
            devices[i].poll { result in box.post(.polled(device: i, result: result)) }
        }
        control(nowWall: nowWall, nowMono: nowMono)
        if telemetryCadence.due(nowMs: nowMono), config.mqttEnabled { produceTelemetry(nowWall: nowWall) }
        if commSaveCadence.due(nowMs: nowMono) { saveComm(nowWall: nowWall, durable: false) }
        releaseDurable()
        pump()
        driveReports(nowMono: nowMono)
        // The state gate is asked every turn (a source change goes out at once); the status
        // snapshot is rebuilt at most every 100 ms: a turn happens for every PUBACK while a
        // backlog drains, and it need not.
        publishState(nowWall: nowWall, nowMono: nowMono)
        publishHomeAssistantReadings(nowMono: nowMono)
        let refresh = snapshotCadence.due(nowMs: nowMono)
        // The batch interval is measured against the records' wall-clock timestamps.
        do { try queue.flushIfDue(nowMs: nowWall) } catch {
            if !queueErrorLogged { log.error("queue: \(error)"); queueErrorLogged = true }
        }
        let refused = mailbox.refused
        if refused != commandsDropped {
            log.error("mailbox full: dropped \(refused - commandsDropped) command(s) unanswered (\(refused) since start); the sender re-sends what got no reply")
            commandsDropped = refused
        }
        recoverQueueIfFailed(nowWall: nowWall)
        releaseDurable()
        TestHooks.hangIfAsked(sinceStartMs: nowMono - startedMonoMs, log: log)
        writeMetricsIfDue(nowMono: nowMono, nowWall: nowWall)
        if watchdogCadence?.due(nowMs: nowMono) == true { notify.send("WATCHDOG=1") }
        if refresh {
            status?.update(snapshot: statusJSON(nowWall: nowWall))
            publishQueueViews(nowWall: nowWall)
        }
    }
}
