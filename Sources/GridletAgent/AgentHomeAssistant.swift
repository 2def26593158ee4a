import GridletCore
import GridletMQTT

/// What the agent keeps for Home Assistant discovery (docs/home-assistant.md).
struct HomeAssistantLink {
    /// nil when `homeassistant.enabled` is false.
    let discovery: HomeAssistantDiscovery?
    let statusTopic: String
    /// `state_dir/homeassistant.json`: the retained topics published for Home Assistant, so a
    /// device removed from the configuration (or discovery switched off) is removed there too.
    let recordPath: String
    var readingsCadence: Cadence
    /// The record's topics, read at the first session.
    var recorded: [String]?
}

/// Home Assistant discovery: retained configs at every broker session and when Home Assistant
/// announces itself, the `root/ha/...` readings every telemetry interval, the opt-out button.
extension Agent {
    func makeHomeAssistantLink() -> HomeAssistantLink {
        let ha = config.homeAssistant
        let discovery = ha.enabled ? HomeAssistantDiscovery(
            siteID: config.site.id, root: root, prefix: ha.discoveryPrefix, version: gridletVersion,
            devices: devices.map { HomeAssistantDiscovery.Device(name: $0.config.name, manufacturer: $0.profile.vendor,
                                                                 model: $0.profile.model, points: $0.profile.points.map(\.name)) }) : nil
        return HomeAssistantLink(discovery: discovery, statusTopic: ha.statusTopic, recordPath: config.site.stateDir + "/homeassistant.json",
                                 readingsCadence: Cadence(intervalMs: max(1000, config.telemetry.intervalMs)))
    }

    /// A broker session started: subscribe to Home Assistant's status and the button, publish
    /// the configs and readings, and remove what the record lists but this configuration does not.
    func homeAssistantConnected() {
        guard let m = mqtt else { return }
        if let d = homeAssistant.discovery {
            do throws(MQTTError) {
                try m.subscribe(homeAssistant.statusTopic, qos: 1)
                // QoS 0: a press while gridlet is offline is not queued in its session and
                // applied later, to whatever window runs then.
                try m.subscribe(d.optOutTopic, qos: 0)
            } catch {
                log.error("Home Assistant: subscribing failed: \(error); discovery is still published, the opt-out button will not work until the next connection")
            }
            publishDiscovery(d)
        } else {
            reconcileHomeAssistantRecord(current: [])
        }
    }

    func publishDiscovery(_ d: HomeAssistantDiscovery) {
        guard let m = mqtt else { return }
        var failed = 0
        for c in d.configs {
            do throws(MQTTError) {
                try m.publish(topic: c.topic, payload: Array(c.payload.serialized.utf8), qos: 1, retain: true,
                              responseCorrelation: nil, messageExpiryS: nil)
            } catch {
                failed += 1
            }
        }
        if failed > 0 { log.warning("Home Assistant: \(failed) discovery config(s) not published; they are sent again at the next connection or when Home Assistant restarts") }
        publishHomeAssistantReadings()
        reconcileHomeAssistantRecord(current: d.retainedTopics)
        log.info("Home Assistant: discovery published under \(d.prefix)/ (\(d.configs.count) entities)")
    }

    /// Empty retained messages for recorded topics that are no longer published, then the record.
    func reconcileHomeAssistantRecord(current: [String]) {
        guard let m = mqtt else { return }
        if homeAssistant.recorded == nil { homeAssistant.recorded = readHomeAssistantRecord() }
        let previous = homeAssistant.recorded ?? []
        let gone = HomeAssistantDiscovery.removed(previous: previous, current: current)
        for t in gone {
            do throws(MQTTError) {
                try m.publish(topic: t, payload: [], qos: 1, retain: true, responseCorrelation: nil, messageExpiryS: nil)
            } catch {
                log.warning("Home Assistant: could not remove \(t): \(error); retried at the next connection")
                return
            }
        }
        if !gone.isEmpty { log.notice("Home Assistant: removed \(gone.count) retained topic(s) no longer configured") }
        guard Set(previous) != Set(current) else { return }
        let body = JSONValue.object([("topics", .array(current.map { .string($0) }))])
        // Through the state writer (its fsync stays off the loop); a failure is logged there as
        // `cannot persist <path>` (entities of devices removed later may then stay in Home
        // Assistant until deleted there).
        stateStore.submit(path: homeAssistant.recordPath, bytes: Array(body.serialized.utf8), durable: true, token: nil)
        homeAssistant.recorded = current
    }

    func readHomeAssistantRecord() -> [String] {
        guard let bytes = StateFile.read(homeAssistant.recordPath) else { return [] }
        guard let v = try? JSONValue.parse(bytes), let list = v["topics"]?.arrayValue else {
            log.warning("Home Assistant: ignoring unreadable \(homeAssistant.recordPath); it is rewritten now")
            return []
        }
        return list.compactMap(\.stringValue)
    }

    /// `root/ha/site` and `root/ha/device/<name>`, retained, every telemetry interval (at least 1 s).
    func publishHomeAssistantReadings(nowMono: Int64) {
        guard homeAssistant.discovery != nil, pipeline.connected, homeAssistant.readingsCadence.due(nowMs: nowMono) else { return }
        publishHomeAssistantReadings()
    }

    func publishHomeAssistantReadings() {
        guard let d = homeAssistant.discovery, let m = mqtt else { return }
        var messages = [(d.siteTopic, d.sitePayload(queueRecords: queue.stats.records))]
        for (i, dev) in d.devices.enumerated() where i < readings.health.count {
            let h = readings.health[i]
            messages.append((d.deviceTopic(dev.name), d.readingsPayload(dev, ok: h.ok, value: { h.value($0) })))
        }
        for (topic, payload) in messages {
            _ = try? m.publish(topic: topic, payload: Array(payload.serialized.utf8), qos: 0, retain: true,
                               responseCorrelation: nil, messageExpiryS: nil)
        }
    }

    /// Messages outside `root/cmd/`: Home Assistant's status and the opt-out button. Others are ignored.
    func handleHomeAssistantMessage(_ msg: MQTTMessage, nowWall: Int64) {
        guard let d = homeAssistant.discovery else { return }
        if msg.topic == homeAssistant.statusTopic {
            if String(decoding: msg.payload, as: UTF8.self) == "online" {
                log.info("Home Assistant announced itself on \(msg.topic): republishing discovery")
                publishDiscovery(d)
            }
        } else if msg.topic == d.optOutTopic {
            // A retained press would opt out again at every reconnect: only live presses count.
            guard !msg.retained else {
                log.warning("Home Assistant: ignoring a retained message on \(msg.topic); the opt-out button must publish without retain")
                return
            }
            homeAssistantOptOut(nowWall: nowWall)
        }
    }

    /// The button: opt out of the event or schedule window that sets the Target now, by the same
    /// path as `gridlet optout ID` and `cmd/optout`; answered on `root/reply` as `cmd: ha/optout`.
    func homeAssistantOptOut(nowWall: Int64) {
        var reply: [(String, JSONValue)] = [("cmd", .string("ha/optout"))]
        func send(_ fields: [(String, JSONValue)]) {
            _ = try? mqtt?.publish(topic: "\(root)/reply", payload: Array(JSONValue.object(fields).serialized.utf8), qos: 1, retain: false,
                                   responseCorrelation: nil, messageExpiryS: nil)
        }
        guard let id = HomeAssistantDiscovery.optOutTarget(targetSource: decision?.targetSource) else {
            let source = decision?.targetSource ?? "default"
            log.warning("Home Assistant opt-out pressed with nothing to opt out of (source \(source))")
            send(reply + [("ok", .bool(false)), ("error", Reports.error(CommandError(
                code: "not_found", message: "nothing to opt out of: the source is \(source); the button opts out of a running dispatch event or schedule window")))])
            return
        }
        reply.append(("id", .string(id)))
        let outcome = engine.handle(.optOut(id: id), nowMs: nowWall)
        if let e = outcome.error {
            log.warning("Home Assistant opt-out of \(id) refused: \(e.message)")
            emit(outcome.responses, wallMs: nowWall)
            send(reply + [("ok", .bool(false)), ("error", Reports.error(e))])
            return
        }
        guard outcome.changed else {
            emit(outcome.responses, wallMs: nowWall)
            send(reply + [("ok", .bool(true))])
            return
        }
        applyLimits(nowWall: nowWall, nowMono: time.monoMs())
        // Like every command: acknowledged once the opt-out is on disk (the state writer reports back).
        persistThen { [self] failure in
            if let failure {
                send(reply + [("ok", .bool(false)), ("error", Reports.error(CommandError(
                    code: "storage", message: "the opt-out could not be stored in state_dir (\(failure)); it is in effect until a restart: press again, and check state_dir")))])
            } else {
                log.notice("Home Assistant opt-out of \(id)")
                send(reply + [("ok", .bool(true))])
            }
            for r in outcome.responses { enqueue(.response, Records.response(r), wallMs: nowWall) }
            reportOptOuts(outcome.responses, nowWall: nowWall)
        }
    }
}
