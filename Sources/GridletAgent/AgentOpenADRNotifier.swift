import GridletCore
import GridletMQTT
import GridletOpenADR
import Synchronization

/// The second MQTT connection, to the VTN's notifier broker (OpenADR 3.1): it subscribes to the
/// followed programmes' event topics, and any message there only makes the VEN poll now
/// (`VENPort.pollNow`, from libmosquitto's thread). The poll stays the source of truth: a missed
/// notification is never a missed event, and nothing in a notification is used.
///
/// `@unchecked Sendable`: `client` is written once in `start` before the client starts (so before
/// any callback runs), read by the on-connect callback on libmosquitto's thread (subscribing is
/// safe there: libmosquitto runs in threaded mode with its own locks), and cleared by `stop` only
/// after the client's network thread has ended. `state` is under its mutex.
final class NotifierLink: @unchecked Sendable {
    let notifier: MQTTNotifier
    let state = Mutex<(connected: Bool, refused: Bool, notifications: Int, lastError: String?)>((false, false, 0, nil))
    private var client: (any MQTTPort)?

    init(notifier: MQTTNotifier) { self.notifier = notifier }

    /// Connects with `make` (the agent's MQTT factory); messages wake `ven`.
    func start(config: OpenADRConfig, siteID: String, token: String?, ven: any VENPort, log: Logger,
               make: (MQTTClientOptions, @escaping @Sendable (MQTTEvent) -> Void) throws(MQTTError) -> any MQTTPort) throws(MQTTError) {
        var options = MQTTClientOptions(clientID: "gridlet-ven-\(siteID)", host: notifier.host, port: notifier.port, keepaliveS: 30,
                                        caFile: config.caFile, cleanSession: true)
        options.useTLS = notifier.scheme == "mqtts"
        if case let .bearer(user) = notifier.auth { options.username = user; options.password = token }
        let n = notifier
        let c = try make(options) { [self] event in
            switch event {
            case let .connected(rc, _):
                guard rc == 0 else {
                    state.withLock { $0.refused = true; $0.lastError = "refused: \(MQTTError.connackMessage(rc))" }
                    log.error("OpenADR notifier \(n.uri) refused the connection: \(MQTTError.connackMessage(rc)); polling only until the next poll retries")
                    return
                }
                state.withLock { $0.connected = true; $0.refused = false; $0.lastError = nil }
                for t in n.topics {
                    do throws(MQTTError) { try client?.subscribe(t, qos: 1) } catch {
                        log.error("OpenADR notifier: subscribing to \(t): \(error)")
                    }
                }
                log.notice("OpenADR notifier connected to \(n.uri): \(n.topics.count) topic(s)")
                ven.pollNow()   // anything missed while away
            case .disconnected:
                state.withLock { $0.connected = false }
            case .message:
                state.withLock { $0.notifications += 1 }
                ven.pollNow()
            case let .connectFailed(text):
                let first = state.withLock { s -> Bool in defer { s.lastError = text }; return s.lastError != text }
                if first { log.warning("OpenADR notifier \(n.uri): \(text)") }
            case .published, .protocolDowngraded:
                break
            }
        }
        client = c
        try c.start()
    }

    func stop() {
        client?.stop()
        client = nil
    }

    func statusJSON() -> JSONValue {
        let s = state.withLock { $0 }
        return .object([("uri", .string(notifier.uri)), ("topics", .array(notifier.topics.map { .string($0) })),
                        ("connected", .bool(s.connected)), ("notifications", .number(Double(s.notifications))),
                        ("last_error", s.lastError.map { .string($0) } ?? .null)])
    }
}

extension Agent {
    /// After each successful poll: (re)connects the notifier when the VTN's binding or topics
    /// changed, or the broker refused the last token; disconnects it when the VTN offers none.
    func updateNotifier(_ poll: VTNPoll, side: OpenADRSide) {
        if let problem = poll.notifierProblem, problem != side.notifierProblem { log.notice("OpenADR: \(problem)") }
        side.notifierProblem = poll.notifierProblem
        let current = side.notifier
        if current?.notifier == poll.notifier, current?.state.withLock({ $0.refused }) != true { return }
        current?.stop()
        side.notifier = nil
        guard let n = poll.notifier else { return }
        let link = NotifierLink(notifier: n)
        do throws(MQTTError) {
            try link.start(config: side.config, siteID: config.site.id, token: poll.accessToken, ven: side.port, log: log, make: makeMQTT)
            side.notifier = link
        } catch {
            log.error("OpenADR notifier \(n.uri): \(error); polling only")
        }
    }
}
