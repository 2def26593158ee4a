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
                acksToWrite.append(seq)   // written together after this step's inputs (one checkpoint)
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
        let label = "cmd/\(name)\(parsed.id.map { " id \($0)" } ?? "")"
        switch parsed.result {
        case let .failure(err):
            log.warning("rejected \(label): \(err.message)\(err.path.isEmpty ? "" : " (\(err.path))")")
            var rejected = parsed.rejectedIDs
            if let id = parsed.id, name == "event" || name == "cancel" || name == "optout" { rejected.append(id) }
            emit(rejected.map { EventResponse(event: $0, status: .rejectedInvalid, atMs: nowWall) }, wallMs: nowWall)
            sendReply(reply + [("ok", .bool(false)), ("error", Reports.error(err))], to: msg)
        case let .success(command):
            let outcome = engine.handle(command, nowMs: nowWall, payloadDigest: payloadDigest(msg.payload))
            let answer: [(String, JSONValue)] = outcome.error.map { [("ok", .bool(false)), ("error", Reports.error($0))] }
                ?? [("ok", .bool(true))]
            log.info("\(label): \(outcome.error.map { "refused: \($0.message)" } ?? "ok")")
            // After a failed write memory is ahead of the disk: a re-sent command changes nothing
            // now, and is acknowledged only once the state is written.
            let behindDisk = lastPersistError != nil && command != .ping
            guard outcome.changed || behindDisk else {
                emit(outcome.responses, wallMs: nowWall)
                sendReply(reply + answer, to: msg)
                return
            }
            // Drive the chargers at once; the reply, the real acknowledgement (libmosquitto sent
            // the PUBACK already), waits until the command is on disk, off the loop.
            if outcome.changed { applyLimits(nowWall: nowWall, nowMono: time.monoMs()) }
            persistThen { [self] failure in
                if let failure {
                    log.error("\(label) could not be stored, not acknowledged: \(failure)")
                    sendReply(reply + [("ok", .bool(false)), ("error", Reports.error(CommandError(
                        code: "storage", message: "the command could not be stored in state_dir (\(failure)); "
                            + "it is in effect until a restart but not acknowledged: send it again")))], to: msg)
                } else {
                    sendReply(reply + answer, to: msg)
                }
                for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
                reportOptOuts(outcome.responses, nowWall: nowWall)
            }
        }
    }

    /// `root/reply`, and the MQTT 5 response topic with the correlation data when the request had them.
    func sendReply(_ fields: [(String, JSONValue)], to msg: MQTTMessage) {
        let body = Array(JSONValue.object(fields).serialized.utf8)
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

    /// `gridlet events`, `gridlet optout ID`, `gridlet schedule [N]`, `version-reset SET` through the
    /// local socket. Nil: the answer goes out once the change is on disk.
    func answerLocal(_ request: LocalRequest, nowWall: Int64) -> String? {
        let words = request.text.split(separator: " ").map(String.init)
        switch words.first {
        case "events":
            return Reports.events(engine.events, active: decision?.activeEvents ?? [], source: decision?.source ?? "default")
        case "optout":
            guard words.count == 2 else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("usage: optout ID"))]).serialized
            }
            let outcome = engine.handle(.optOut(id: words[1]), nowMs: nowWall)
            if let e = outcome.error {
                log.warning("local opt-out of \(words[1]) refused: \(e.message)")
                emit(outcome.responses, wallMs: nowWall)
                return JSONValue.object([("ok", .bool(false)), ("error", Reports.error(e))]).serialized
            }
            let ok = JSONValue.object([("ok", .bool(true)), ("id", .string(words[1])),
                                       ("responses", .array(outcome.responses.map { .object($0.jsonFields) }))]).serialized
            guard outcome.changed else { return ok }
            persistThen { [self] failure in
                if let failure {
                    request.reply(JSONValue.object([("ok", .bool(false)), ("error", .string("the opt-out could not be stored: \(failure); check state_dir and try again"))]).serialized)
                    return
                }
                log.notice("local opt-out of \(words[1])")
                for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
                reportOptOuts(outcome.responses, nowWall: nowWall)
                request.reply(ok)
            }
            return nil
        case "version-reset":
            guard words.count == 2, let set = ControlEngine.VersionedSet(rawValue: words[1]) else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("usage: version-reset events|schedules"))]).serialized
            }
            let was = engine.resetVersion(set)
            persistThen { [self] failure in
                if let failure {
                    request.reply(JSONValue.object([("ok", .bool(false)), ("error", .string("the reset could not be stored: \(failure); check state_dir and try again"))]).serialized)
                    return
                }
                log.notice("local reset of the \(set.rawValue) version (was \(was)): the next cmd/\(set.rawValue) is accepted whatever its version")
                request.reply(JSONValue.object([("ok", .bool(true)), ("set", .string(set.rawValue)), ("previous_version", .number(Double(was)))]).serialized)
            }
            return nil
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
