import GridletCore
import GridletMQTT
import GridletQueue

/// Outbound: records into the queue, the queue to the broker through the `PublishPipeline`, the
/// retained state, the local status snapshot.
extension Agent {
    var appliedA: Double { drivers.values.compactMap { $0.written?.amps }.reduce(0, +) }

    var paused: Bool { !drivers.isEmpty && drivers.values.allSatisfy { $0.written?.paused ?? true } }

    func produceTelemetry(nowWall: Int64) {
        var readingsJSON: [(String, JSONValue)] = []
        for (i, d) in devices.enumerated() { readingsJSON.append((d.config.name, Records.reading(readings.health[i]))) }
        let body = JSONValue.object([("ts", .string(Timestamp.format(ms: nowWall))), ("devices", .object(readingsJSON)),
                                     ("control", withPowerControl(Reports.control(limitW: requestedW, appliedA: appliedA,
                                                                                  source: decision?.source ?? "default")))])
        enqueue(.telemetry, Array(body.serialized.utf8), wallMs: nowWall)
    }

    func enqueue(_ kind: RecordKind, _ body: [UInt8], wallMs: Int64) {
        recoverQueueIfFailed(nowWall: wallMs)
        do {
            let seq = try queue.append(kind: kind, payload: body, timestampMs: wallMs)
            // `sync: always` off the loop: the broker gets a record once it is synced.
            if config.queue.sync == .always && queue.syncsInBackground { awaitingSync.append(seq) } else { pipeline.appended(seq: seq) }
        } catch {
            log.error("queue append failed, record lost: \(error); check the disk under site.state_dir (df -h, dmesg)")
            recoverQueueIfFailed(nowWall: wallMs)
        }
    }

    /// What the background syncs made durable: `sync: always` records go to the broker, a ledger
    /// save that waited for its records is written.
    func releaseDurable() {
        guard queue.syncsInBackground else { return }
        let durable = queue.durableBelowSeq
        if !awaitingSync.isEmpty {
            var n = 0
            while n < awaitingSync.count && awaitingSync[n] < durable { pipeline.appended(seq: awaitingSync[n]); n += 1 }
            if n > 0 { awaitingSync.removeFirst(n) }
        }
        if let after = ledgerSaveAfterSeq, durable >= after {
            ledgerSaveAfterSeq = nil
            writeLedgerState(syncLog: true)
        }
    }

    var telemetryExpiryS: UInt32? { config.mqtt.messageExpiryMs > 0 ? UInt32(config.mqtt.messageExpiryMs / 1000) : nil }

    /// Hands what the pipeline picks to libmosquitto.
    func pump() {
        guard let m = mqtt else { return }
        let root = self.root
        let expiry = telemetryExpiryS
        let log = self.log
        pipeline.pump(from: MQTTRecords(queue: queue), nowUs: time.monoUs()) { r, historical in
            let payload = Outbound.frame(kind: r.kind, seq: r.seq, historical: historical, body: r.payload)
            do throws(MQTTError) {
                return try m.publish(topic: Outbound.topic(r.kind, root: root), payload: payload, qos: 1, retain: false,
                                     responseCorrelation: nil, messageExpiryS: r.kind == .telemetry ? expiry : nil)
            } catch {
                log.warning("publish seq \(r.seq): \(error)")
                return nil
            }
        }
    }

    func stateJSON(nowWall: Int64) -> JSONValue {
        withPowerState(stateJSONWithoutPower(nowWall: nowWall))
    }

    func stateJSONWithoutPower(nowWall: Int64) -> JSONValue {
        Reports.state(decision: decision, limitW: requestedW, appliedA: appliedA, paused: paused,
                      startedWallMs: startedWallMs, clockSynced: clockSynced, schedules: activeScheduleIDs,
                      devices: devices.indices.map { (devices[$0].config.name, readings.health[$0]) })
    }

    /// What the state gate compares (StatePublishGate: source, events, comm, paused, applied
    /// current, device health at once; the limit beyond a deadband; else a periodic refresh).
    var stateDigest: StateDigest {
        var d = StateDigest(source: decision?.source ?? "default", events: decision?.activeEvents ?? [], schedules: activeScheduleIDs,
                    commOK: decision?.commOK ?? false, paused: paused, appliedA: appliedA, limitW: requestedW,
                    clockSynced: clockSynced, nextTransitionMs: decision?.nextTransitionMs, devicesOK: readings.health.map(\.ok))
        // Faults always; the bidirectional part only where there is one (it costs a state JSON).
        d.details = readings.health.map { $0.fault ?? "" }.joined(separator: "|")
        if !powerDrivers.isEmpty {
            d.details += "|" + (powerKeyed(stateJSON(nowWall: 0))["power"]?.serialized ?? "")
            for i in powerDrivers.keys.sorted() {
                let t = powerDrivers[i]?.target
                d.details += "|\(t.map { JSONValue.format($0.w) } ?? "-"),\(t?.direction ?? "idle"),\(t?.limitedBy ?? "")"
            }
        }
        return d
    }

    /// Publishes the retained state when the gate says so (asked every loop turn).
    func publishState(nowWall: Int64, nowMono: Int64) {
        guard pipeline.connected, let m = mqtt else { return }
        guard let reason = stateGate.offer(stateDigest, nowMs: nowMono) else { return }
        let s = stateJSON(nowWall: nowWall)
        if reason != .refresh { log.debug("state published: \(reason.rawValue) changed") }
        _ = try? m.publish(topic: "\(root)/state", payload: Array(s.serialized.utf8), qos: 1, retain: true,
                           responseCorrelation: nil, messageExpiryS: nil)
    }

    func statusJSON(nowWall: Int64) -> String {
        var readingsJSON: [(String, JSONValue)] = []
        for (i, d) in devices.enumerated() { readingsJSON.append((d.config.name, Records.reading(readings.health[i]))) }
        let st = queue.stats
        let oldest: JSONValue = st.oldestTimestampMs.map { .number(Double(max(0, nowWall - $0)) / 1000) } ?? .null
        return JSONValue.object([
            ("site", .object([("id", .string(config.site.id)), ("timezone", .string(config.site.timezone))])),
            ("state", stateJSON(nowWall: nowWall)),
            ("devices", .object(readingsJSON)),
            ("queue", .object([("records", .number(Double(st.records))), ("bytes", .number(Double(st.bytes))),
                               ("oldest_age_s", oldest), ("dropped", .number(Double(st.droppedRecords))),
                               ("next_seq", .number(Double(st.nextSeq))), ("skipped_on_recovery", .number(Double(st.skippedOnRecovery))),
                               ("ok", .bool(st.ok)), ("last_error", st.lastIOError.map { .string($0.description) } ?? .null)])),
            ("mqtt", .object([("connected", .bool(pipeline.connected)), ("broker", config.mqttEnabled ? .string("\(config.mqtt.host):\(config.mqtt.port)") : .null),
                              ("in_flight", .number(Double(pipeline.inFlight))), ("published", .number(Double(pipeline.published))),
                              ("acked", .number(Double(pipeline.acked))),
                              ("commands_dropped", .number(Double(commandsDropped))), ("last_error", lastMQTTError.map { .string($0) } ?? .null),
                              ("last_contact", .string(Timestamp.format(ms: engine.contactMs(nowMs: nowWall))))])),
            ("buses", .object(buses.map { b in
                (b.name, JSONValue.object([("endpoint", .string(b.endpointDescription)),
                                           ("rs485_direction", b.direction.map { .string($0) } ?? .null)]))
            })),
            ("stored_events", .array(engine.events.map { .string($0.id) })),
            ("openadr", openADR?.statusJSON(nowMono: time.monoMs(), nowWall: nowWall) ?? .null),
            ("loop", .object([("turns", .number(Double(loopTurns.count))),
                              ("max_turn_ms", .number(Double(loopTurns.maxUs) / 1000)),
                              ("turns_over_10ms", .number(Double(loopTurns.over10ms)))])),
        ]).serialized
    }
}
