import GridletCore
import GridletMQTT

/// MQTT session events and commands: parsed by `CommandParser`, decided by the `ControlEngine`,
/// answered on `root/reply` (and the MQTT 5 response topic).
extension Agent {
    func handleMQTT(_ event: MQTTEvent, nowWall: Int64) {
        switch event {
        case let .connected(rc, sessionPresent):
            guard rc == 0 else {
                log.error("broker refused the connection: \(MQTTError.connackMessage(rc)) (code \(rc)); check mqtt.username, password_file and tls")
                return
            }
            pipeline.sessionUp()
            lastMQTTError = nil
            engine.sessionConnected(nowMs: nowWall)
            saveComm(nowWall: nowWall, durable: true)
            log.notice("connected to \(config.mqtt.host):\(config.mqtt.port) (session \(sessionPresent ? "resumed" : "new"))")
            do throws(MQTTError) {
                try mqtt?.subscribe("\(root)/cmd/+", qos: 1)
                try mqtt?.publish(topic: "\(root)/status", payload: Array(statusPayload(online: true, sinceMs: nowWall).utf8),
                                  qos: 1, retain: true, responseCorrelation: nil, messageExpiryS: nil)
            } catch {
                log.error("after connect: \(error)")
            }
            stateGate.forget()
            homeAssistantConnected()
        case let .disconnected(rc):
            if pipeline.connected { log.warning("disconnected from broker (\(rc == 0 ? "clean" : MQTTError.message(rc)))") }
            pipeline.sessionDown()
            engine.sessionDisconnected(nowMs: nowWall)
            saveComm(nowWall: nowWall, durable: true)
        case let .published(mid, reason):
            if let seq = pipeline.acknowledged(mid: mid) {
                if reason >= 0x80 { log.error("broker rejected record seq \(seq) (reason \(reason)); dropping it") }
                do { try queue.ack(seq: seq) } catch { log.error("queue ack failed: \(error)") }
            }
        case let .message(msg):
            handleCommand(msg, nowWall: nowWall)
        case let .connectFailed(text):
            if text != lastMQTTError { log.error("MQTT: \(text)") }
            lastMQTTError = text
        case .protocolDowngraded:
            log.notice("broker does not support MQTT 5; using MQTT 3.1.1 (no response topics, no message expiry)")
        }
    }

    func handleCommand(_ msg: MQTTMessage, nowWall: Int64) {
        let prefix = "\(root)/cmd/"
        guard msg.topic.hasPrefix(prefix) else { return handleHomeAssistantMessage(msg, nowWall: nowWall) }
        let name = String(msg.topic.dropFirst(prefix.count))
        let parsed = CommandParser.parse(name: name, payload: msg.payload, nowMs: nowWall)
        var reply: [(String, JSONValue)] = [("cmd", .string(name))]
        if let id = parsed.id { reply.append(("id", .string(id))) }
        switch parsed.result {
        case let .failure(err):
            log.warning("rejected cmd/\(name)\(parsed.id.map { " id \($0)" } ?? ""): \(err.message)\(err.path.isEmpty ? "" : " (\(err.path))")")
            reply.append(("ok", .bool(false)))
            reply.append(("error", Reports.error(err)))
            var rejected = parsed.rejectedIDs
            if let id = parsed.id, name == "event" || name == "cancel" || name == "optout" { rejected.append(id) }
            for id in rejected {
                enqueue(.response, Records.response(EventResponse(event: id, status: .rejectedInvalid, atMs: nowWall)), wallMs: nowWall)
            }
        case let .success(command):
            let outcome = engine.handle(command, nowMs: nowWall, payloadDigest: payloadDigest(msg.payload))
            var stored = true
            if outcome.changed {
                // Drive the chargers first: the fsync that must precede the reply does not
                // delay the register write.
                applyLimits(nowWall: nowWall, nowMono: time.monoMs())
                stored = persist()
            }
            if !stored {
                // The reply is the real acknowledgement (libmosquitto sent the PUBACK already):
                // a command not on disk is not acknowledged, and the sender sends it again.
                reply.append(("ok", .bool(false)))
                reply.append(("error", Reports.error(CommandError(
                    code: "storage", message: "the command could not be stored in state_dir (\(lastPersistError ?? "I/O error")); "
                                + "it is in effect until a restart but not acknowledged: send it again"))))
            } else if let err = outcome.error {
                reply.append(("ok", .bool(false)))
                reply.append(("error", Reports.error(err)))
            } else {
                reply.append(("ok", .bool(true)))
            }
            for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
            log.info("cmd/\(name)\(parsed.id.map { " id \($0)" } ?? ""): \(outcome.error.map { "refused: \($0.message)" } ?? "ok")")
        }
        let body = Array(JSONValue.object(reply).serialized.utf8)
        do throws(MQTTError) {
            try mqtt?.publish(topic: "\(root)/reply", payload: body, qos: 1, retain: false, responseCorrelation: nil, messageExpiryS: nil)
            if let rt = msg.responseTopic {
                try mqtt?.publish(topic: rt, payload: body, qos: 1, retain: false, responseCorrelation: msg.correlationData,
                                  messageExpiryS: nil)
            }
        } catch {
            log.error("reply: \(error)")
        }
    }

    /// `gridlet events`, `gridlet optout ID`, `gridlet schedule [N]` through the local socket.
    func answerLocal(_ text: String, nowWall: Int64) -> String {
        let words = text.split(separator: " ").map(String.init)
        switch words.first {
        case "events":
            return Reports.events(engine.events, active: decision?.activeEvents ?? [], source: decision?.source ?? "default")
        case "optout":
            guard words.count == 2 else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("usage: optout ID"))]).serialized
            }
            let outcome = engine.handle(.optOut(id: words[1]), nowMs: nowWall)
            if outcome.changed { persist() }
            for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
            if let e = outcome.error {
                log.warning("local opt-out of \(words[1]) refused: \(e.message)")
                return JSONValue.object([("ok", .bool(false)), ("error", Reports.error(e))]).serialized
            }
            log.notice("local opt-out of \(words[1])")
            return JSONValue.object([("ok", .bool(true)), ("id", .string(words[1])),
                                     ("responses", .array(outcome.responses.map { .object($0.jsonFields) }))]).serialized
        case "version-reset":
            guard words.count == 2, let set = ControlEngine.VersionedSet(rawValue: words[1]) else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("usage: version-reset events|schedules"))]).serialized
            }
            let was = engine.resetVersion(set)
            guard persist() else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("the reset could not be stored: \(lastPersistError ?? "I/O error"); check state_dir"))]).serialized
            }
            log.notice("local reset of the \(set.rawValue) version (was \(was)): the next cmd/\(set.rawValue) is accepted whatever its version")
            return JSONValue.object([("ok", .bool(true)), ("set", .string(set.rawValue)), ("previous_version", .number(Double(was)))]).serialized
        case "schedule":
            let n = words.count > 1 ? Int(words[1]) ?? 10 : 10
            let defaultW = config.control.defaultLimitW ?? hardwareMaxNominalW
            let transitions = engine.plannedTransitions(fromMs: nowWall, limit: max(1, min(n, 1000)), defaultW: defaultW)
            return Reports.schedule(transitions, timezone: config.site.timezone, active: activeScheduleIDs)
        default:
            return JSONValue.object([("ok", .bool(false)), ("error", .string("unknown request"))]).serialized
        }
    }

    /// Ids of the schedules with a window active now (the engine names them `schedule:<id>`).
    var activeScheduleIDs: [String] {
        (decision?.activeSchedules ?? []).map { $0.hasPrefix("schedule:") ? String($0.dropFirst(9)) : $0 }
    }

    var hardwareMaxNominalW: Double {
        readings.chargerIndices.reduce(0) { sum, i in
            let d = devices[i].config
            return sum + d.maxCurrent * Double(d.phases) * config.site.nominalVoltage
        }
    }
}
