import CMosquitto
import Dispatch
import Glibc
import GridletSys
import Synchronization

/// What the libmosquitto network thread reports. Topic and payload are copied before the
/// callback returns (libmosquitto frees them afterwards).
public enum MQTTEvent: Sendable, Equatable {
    case connected(returnCode: Int32, sessionPresent: Bool)
    case disconnected(returnCode: Int32)
    /// The broker acknowledged the QoS 1 message with this mid (PUBACK), with the v5 reason code.
    case published(mid: Int32, reasonCode: Int32)
    case message(MQTTMessage)
    /// A connection attempt or an established connection failed; the text says why (including
    /// libmosquitto's and OpenSSL's own error lines, e.g. "certificate verify failed").
    case connectFailed(String)
    /// The broker refused MQTT 5; the client switched to 3.1.1 and reconnects.
    case protocolDowngraded
}

public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var retained: Bool
    /// MQTT 5 request/response properties, when the sender set them.
    public var responseTopic: String?
    public var correlationData: [UInt8]?
}

public enum MQTTProtocol: Sendable, Equatable { case v311, v5 }

/// Connection settings for one client.
public struct MQTTClientOptions: Sendable {
    public var clientID: String
    public var host: String
    public var port: Int
    public var keepaliveS: Int
    public var username: String?
    public var password: String?
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var tlsInsecure: Bool
    /// TLS on (`mqtt.tls` present, even `tls: {}`); without `caFile` the system CA store is used.
    public var useTLS = false
    public var protocolVersion: MQTTProtocol
    /// Persistent session: the broker keeps subscriptions and queued QoS 1 messages while we are away.
    public var cleanSession: Bool
    public var will: (topic: String, payload: [UInt8], retain: Bool)?
    public var reconnectDelayMinS: Int
    public var reconnectDelayMaxS: Int
    public var maxInflight: Int
    /// MQTT 5 Session Expiry Interval: how long the broker keeps our session (subscriptions and
    /// queued commands) while we are away.
    public var sessionExpiryS: UInt32 = 7 * 86_400
    /// MQTT 5 Maximum Packet Size announced at connect: the broker does not send anything larger
    /// (a command is at most 64 KiB, SPEC §3; the rest is room for topic and properties).
    public var maximumPacketSize: UInt32 = 64 * 1024 + 1024
    /// Set: the caller's thread runs the socket I/O while a connection is up (`pollRequest` and
    /// `service`), and the client's own thread only connects, reconnects and backs off; this is
    /// called (on that thread) when the caller should start polling the socket. nil: the client's
    /// thread runs everything (`mosquitto_loop`), and events arrive on it.
    public var externalIO: (@Sendable () -> Void)? = nil

    public init(clientID: String, host: String, port: Int, keepaliveS: Int = 30, username: String? = nil, password: String? = nil,
                caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, tlsInsecure: Bool = false,
                protocolVersion: MQTTProtocol = .v5, cleanSession: Bool = false,
                will: (topic: String, payload: [UInt8], retain: Bool)? = nil,
                reconnectDelayMinS: Int = 1, reconnectDelayMaxS: Int = 30, maxInflight: Int = 16) {
        self.clientID = clientID; self.host = host; self.port = port; self.keepaliveS = keepaliveS
        self.username = username; self.password = password; self.caFile = caFile; self.certFile = certFile
        self.keyFile = keyFile; self.tlsInsecure = tlsInsecure; self.protocolVersion = protocolVersion
        self.cleanSession = cleanSession; self.will = will; self.reconnectDelayMinS = reconnectDelayMinS
        self.reconnectDelayMaxS = reconnectDelayMaxS; self.maxInflight = maxInflight
    }
}

/// Receives events on libmosquitto's thread; handed to C as an unretained pointer and kept
/// alive by the client.
final class EventSink: Sendable {
    let handler: @Sendable (MQTTEvent) -> Void
    let connected = Atomic<Bool>(false)
    /// Set by every accepted CONNACK, cleared by the network thread when it resets its backoff
    /// (with `externalIO` it only looks after the session ended, when `connected` is false again).
    let connackSeen = Atomic<Bool>(false)
    /// Set by the CONNACK callback when the broker refuses MQTT 5.
    let downgradeRequested = Atomic<Bool>(false)
    let usingV5: Atomic<Bool>
    /// The most recent error or warning libmosquitto logged (OpenSSL reasons arrive this way).
    let lastLibraryError = Mutex<String?>(nil)
    init(handler: @escaping @Sendable (MQTTEvent) -> Void, v5: Bool) {
        self.handler = handler
        self.usingV5 = Atomic(v5)
    }
}

private let libraryInit: Void = { _ = mosquitto_lib_init() }()

/// A thin wrapper over one `struct mosquitto` run by a network thread of its own (a PosixThread
/// calling `mosquitto_loop`, so it can quick-ack and stop cleanly), with automatic reconnect and
/// PUBACK reporting.
///
/// Sendable: `mosq` is only used through libmosquitto calls that the library documents as
/// callable from any thread while its threaded loop runs (publish, subscribe, disconnect
/// take its internal mutexes); `destroyed` guards teardown.
public final class MQTTClient: @unchecked Sendable {
    private let mosq: OpaquePointer
    private let sink: EventSink
    private let options: MQTTClientOptions
    private let stopped = Mutex(false)
    private let thread = Mutex<PosixThread?>(nil)
    /// With `externalIO`: who runs libmosquitto's I/O now (the connector thread or the caller's),
    /// and the result of the caller's last `mosquitto_loop` when it handed the I/O back.
    private let io = Mutex<(driver: Bool, rc: Int32)>((false, 0))
    private let handedBack = DispatchSemaphore(value: 0)

    public init(options: MQTTClientOptions, handler: @escaping @Sendable (MQTTEvent) -> Void) throws(MQTTError) {
        _ = libraryInit
        self.options = options
        self.sink = EventSink(handler: handler, v5: options.protocolVersion == .v5)
        guard let m = mosquitto_new(options.clientID, options.cleanSession, Unmanaged.passUnretained(sink).toOpaque()) else {
            throw MQTTError(code: Int32(MOSQ_ERR_NOMEM.rawValue), operation: "create MQTT client", errno: Glibc.errno)
        }
        self.mosq = m
        // On failure all stored properties are set, so Swift runs deinit, which destroys `mosq`:
        // destroying it here as well was a double free (seen as an abort in the tests).
        try configure()
    }

    /// Debian's hashed CA directory (ca-certificates).
    static let systemCAPath = "/etc/ssl/certs"

    private func configure() throws(MQTTError) {
        let version = sink.usingV5.load(ordering: .relaxed) ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        try check(mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, Int32(version)), "set MQTT protocol version")
        try check(mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, Int32(options.maxInflight)), "set in-flight limit")
        // Replies and PUBACKs are small: without TCP_NODELAY, Nagle holds them behind the peer's
        // delayed ACK (~40 ms on Linux), which showed up as dispatch latency.
        try check(mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1), "set TCP_NODELAY")
        mosquitto_max_inflight_messages_set(mosq, UInt32(options.maxInflight))
        if let u = options.username {
            try check(mosquitto_username_pw_set(mosq, u, options.password), "set MQTT username")
        }
        if options.useTLS || options.caFile != nil || options.certFile != nil {
            // No ca_file: verify the broker against the system CA store (never plain TCP).
            // libmosquitto 2.0.11 wants a file or a directory even with TLS_USE_OS_CERTS, so the
            // store's directory is named too; OpenSSL's defaults (SSL_CERT_FILE/DIR) still apply.
            var caPath: String? = nil
            if options.caFile == nil {
                guard access(Self.systemCAPath, R_OK) == 0 else {
                    throw MQTTError(code: MOSQ_ERR_TLS.rawValue,
                                    operation: "TLS without ca_file: no system CA store at \(Self.systemCAPath) (install ca-certificates or set mqtt.tls.ca_file)")
                }
                caPath = Self.systemCAPath
                try check(mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1), "use the system CA store")
            }
            try check(mosquitto_tls_set(mosq, options.caFile, caPath, options.certFile, options.keyFile, nil),
                      "configure TLS (ca_file \(options.caFile ?? "system store"), cert_file \(options.certFile ?? "-"))")
            if options.tlsInsecure { try check(mosquitto_tls_insecure_set(mosq, true), "disable TLS hostname check") }
        }
        if let w = options.will {
            try check(w.payload.withUnsafeBytes { p in
                mosquitto_will_set(mosq, w.topic, Int32(p.count), p.baseAddress, 1, w.retain)
            }, "set will on \(w.topic)")
        }
        try check(mosquitto_reconnect_delay_set(mosq, UInt32(options.reconnectDelayMinS), UInt32(options.reconnectDelayMaxS), true),
                  "set reconnect delay")
        mosquitto_connect_v5_callback_set(mosq, onConnect)
        mosquitto_disconnect_v5_callback_set(mosq, onDisconnect)
        mosquitto_publish_v5_callback_set(mosq, onPublish)
        mosquitto_message_v5_callback_set(mosq, onMessage)
        mosquitto_log_callback_set(mosq, onLog)
    }

    /// Starts the network thread. It connects in the background and reconnects after any
    /// failure (refused, unreachable, DNS, TLS) with exponential backoff and jitter, also when
    /// the broker cannot be reached at first. libmosquitto's own `loop_forever` gives up on
    /// some of these (a DNS failure at boot would end it), so the thread here drives
    /// `mosquitto_loop` itself.
    public func start() throws(MQTTError) {
        try check(mosquitto_threaded_set(mosq, true), "enable threaded mode")
        let t: PosixThread
        do {
            t = try PosixThread.start { [self] in runNetworkLoop() }
        } catch {
            throw MQTTError(code: Int32(MOSQ_ERR_ERRNO.rawValue), operation: "start the MQTT network thread", errno: error.rawValue)
        }
        thread.withLock { $0 = t }
    }

    /// The first connect, on the network thread (it may block for the TCP and TLS handshakes).
    /// With MQTT 5 it carries a Session Expiry Interval: without one a v5 broker ends the session
    /// at disconnect, and commands sent while the agent is away would be lost. libmosquitto keeps
    /// these CONNECT properties for every reconnect.
    private func firstConnect() -> Int32 {
        if sink.usingV5.load(ordering: .relaxed) {
            var props: OpaquePointer? = nil
            defer { mosquitto_property_free_all(&props) }
            _ = mosquitto_property_add_int32(&props, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), options.sessionExpiryS)
            _ = mosquitto_property_add_int32(&props, Int32(MQTT_PROP_MAXIMUM_PACKET_SIZE.rawValue), options.maximumPacketSize)
            return mosquitto_connect_bind_v5(mosq, options.host, Int32(options.port), Int32(options.keepaliveS), nil, props)
        }
        return mosquitto_connect(mosq, options.host, Int32(options.port), Int32(options.keepaliveS))
    }

    /// Delay before the next reconnect attempt, in ms; doubles up to the maximum, with
    /// ±25 % jitter so a fleet does not reconnect in lockstep after a broker restart.
    private func nextDelayMs(_ attempt: Int) -> Int {
        let base = min(options.reconnectDelayMaxS * 1000, options.reconnectDelayMinS * 1000 << min(attempt, 16))
        let jitter = Int.random(in: -(base / 4)...(base / 4))
        return max(100, base + jitter)
    }

    private func reportFailure(_ rc: Int32, _ what: String) {
        var text = MQTTError(code: rc, operation: what, errno: Glibc.errno).description
        if let detail = sink.lastLibraryError.withLock({ v -> String? in defer { v = nil }; return v }) {
            text += ": " + detail
        }
        sink.handler(.connectFailed(text))
    }

    fileprivate func runNetworkLoop() {
        var needConnect = false
        var droppedBeforeConnack = 0
        var attempt = 0
        func pause(_ ms: Int) {
            var left = ms
            while left > 0, !stopped.withLock({ $0 }) { usleep(UInt32(min(left, 100)) * 1000); left -= 100 }
        }
        var firstDone = false
        while !stopped.withLock({ $0 }) {
            if !firstDone {
                let rc = firstConnect()
                if rc == Int32(MOSQ_ERR_INVAL.rawValue) || rc == Int32(MOSQ_ERR_NOMEM.rawValue) {
                    reportFailure(rc, "connect to \(options.host):\(options.port)")
                    return
                }
                firstDone = true
                if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
                    reportFailure(rc, "connect to \(options.host):\(options.port)")
                    needConnect = true
                    pause(nextDelayMs(attempt)); attempt += 1
                    continue
                }
            }
            if sink.downgradeRequested.exchange(false, ordering: .relaxed) {
                // Start over as a 3.1.1 client: the MQTT 5 CONNECT properties libmosquitto keeps
                // for reconnects are not allowed in 3.1.1 (MOSQ_ERR_NOT_SUPPORTED otherwise).
                sink.usingV5.store(false, ordering: .relaxed)
                _ = mosquitto_disconnect(mosq)
                _ = mosquitto_reinitialise(mosq, options.clientID, options.cleanSession, Unmanaged.passUnretained(sink).toOpaque())
                do throws(MQTTError) {
                    try configure()
                    try check(mosquitto_threaded_set(mosq, true), "enable threaded mode")
                } catch {
                    sink.handler(.connectFailed("reconfiguring for MQTT 3.1.1: \(error)"))
                }
                sink.handler(.protocolDowngraded)
                attempt = 0
                firstDone = false
                needConnect = false
                continue
            }
            if needConnect {
                let rc = mosquitto_reconnect_async(mosq)
                if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
                    reportFailure(rc, "connect to \(options.host):\(options.port)")
                    pause(nextDelayMs(attempt)); attempt += 1
                    continue
                }
                needConnect = false
            }
            // With `externalIO` the caller's thread runs the I/O from here until it fails (the
            // agent's control loop: no thread hand-off per PUBACK or publish). Without it this
            // thread does: `mosquitto_loop` sleeps until the socket has something or another
            // thread queues a packet (publish, subscribe and disconnect write a byte to
            // libmosquitto's socket pair in threaded mode, which wakes the select). The timeout
            // only paces keepalive pings: 1 s instead of the former 100 ms saves 9 idle wake-ups a second.
            let rc: Int32
            if let wake = options.externalIO {
                rc = handOver(wake)
            } else {
                rc = mosquitto_loop(mosq, 1000, 1)
                // Acknowledge what was just read at once. Otherwise Linux delays the ACK of a small
                // packet (a PUBACK for our telemetry) by up to 40 ms, and a broker with Nagle on (the
                // mosquitto default, set_tcp_nodelay false) holds the next packet to us — a command —
                // until that ACK arrives: measured p99 command -> register write 37 ms, 1.3 ms with
                // the broker's Nagle off. TCP_QUICKACK is not sticky, so it is set after every read.
                Self.quickAck(mosquitto_socket(mosq))
            }
            if sink.connackSeen.exchange(false, ordering: .relaxed) || sink.connected.load(ordering: .relaxed) {
                attempt = 0; droppedBeforeConnack = 0
            }
            if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
                if stopped.withLock({ $0 }) { break }
                // Some MQTT 3.1.1-only brokers (amqtt, measured) do not answer an MQTT 5 CONNECT
                // with a refusal but drop the connection. Twice in a row without any CONNACK on
                // an established TCP connection: try 3.1.1 (sticky for this process).
                let transportLevel = [MOSQ_ERR_ERRNO, MOSQ_ERR_TLS, MOSQ_ERR_EAI, MOSQ_ERR_NO_CONN, MOSQ_ERR_TLS_HANDSHAKE]
                    .contains { rc == Int32($0.rawValue) }
                if !sink.connected.load(ordering: .relaxed), sink.usingV5.load(ordering: .relaxed), !transportLevel {
                    // No CONNACK within the keepalive (amqtt waits for the rest of what it takes
                    // for a 3.1.1 packet) or a protocol error is enough; a plain drop twice.
                    droppedBeforeConnack += rc == Int32(MOSQ_ERR_CONN_LOST.rawValue) ? 1 : 2
                    if droppedBeforeConnack >= 2 { sink.downgradeRequested.store(true, ordering: .relaxed) }
                }
                if !sink.connected.load(ordering: .relaxed) || rc != Int32(MOSQ_ERR_CONN_LOST.rawValue) {
                    reportFailure(rc, "connection to \(options.host):\(options.port)")
                }
                sink.connected.store(false, ordering: .relaxed)
                needConnect = true
                pause(sink.downgradeRequested.load(ordering: .relaxed) ? 100 : nextDelayMs(attempt)); attempt += 1
            }
        }
    }

    /// With `externalIO`, once connected (or connecting): the caller's thread runs the I/O until
    /// `mosquitto_loop` fails there (`service`) or `stop`; returns that failure for the reconnect
    /// logic above. Nothing on this thread touches `mosq` meanwhile.
    private func handOver(_ wake: @Sendable () -> Void) -> Int32 {
        let handed = io.withLock { s -> Bool in
            // Under `io`, so `stop` either sees the caller driving or this sees `stopped`.
            guard !stopped.withLock({ $0 }) else { return false }
            s = (true, 0)
            return true
        }
        guard handed else { return Int32(MOSQ_ERR_NO_CONN.rawValue) }
        wake()
        handedBack.wait()
        return io.withLock { $0.rc }
    }

    /// With `externalIO`: the socket and events to poll while the caller runs the I/O (POLLOUT
    /// while libmosquitto has something to write); nil while the client's thread is connecting or
    /// backing off.
    public var pollRequest: (fd: Int32, events: Int16)? {
        guard options.externalIO != nil, io.withLock({ $0.driver }) else { return nil }
        let fd = mosquitto_socket(mosq)
        guard fd >= 0 else { return nil }
        return (fd, Int16(POLLIN) | (mosquitto_want_write(mosq) ? Int16(POLLOUT) : 0))
    }

    /// With `externalIO`, on the caller's thread: one pass of libmosquitto's I/O without waiting
    /// (read what arrived, with the event callbacks running here; write what is queued; the
    /// keepalive ping and its timeout). Call it when `pollRequest`'s socket is ready, after
    /// publishing, and at least every second. A failure hands the I/O back to the client's
    /// thread, which reports it and reconnects with backoff.
    public func service() {
        guard options.externalIO != nil, io.withLock({ $0.driver }) else { return }
        let rc = mosquitto_loop(mosq, 0, 1)
        Self.quickAck(mosquitto_socket(mosq))
        if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
            io.withLock { $0 = (false, rc) }
            handedBack.signal()
        }
    }

    /// With `externalIO`, after publishing a batch: writes everything queued in as few TCP
    /// segments as fit (TCP_CORK around the writes, released at once, so nothing waits). With
    /// TCP_NODELAY each publish was a segment of its own, and every segment costs both ends a
    /// trip through the network stack and the broker a wake-up.
    public func flush() {
        guard let w = pollRequest, w.events & Int16(POLLOUT) != 0 else { return }
        Self.cork(w.fd, true)
        service()
        Self.cork(w.fd, false)
    }

    static func cork(_ fd: Int32, _ on: Bool) {
        var v: Int32 = on ? 1 : 0
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    static func quickAck(_ fd: Int32) {
        guard fd >= 0 else { return }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Publishes and returns the message id that a later `.published` event acknowledges.
    @discardableResult
    public func publish(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = false,
                        responseCorrelation: [UInt8]? = nil, messageExpiryS: UInt32? = nil) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        var props: OpaquePointer? = nil
        defer { if props != nil { mosquitto_property_free_all(&props) } }
        if sink.usingV5.load(ordering: .relaxed) {
            if let c = responseCorrelation {
                _ = c.withUnsafeBytes { p in
                    mosquitto_property_add_binary(&props, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), p.baseAddress, UInt16(p.count))
                }
            }
            if let e = messageExpiryS {
                _ = mosquitto_property_add_int32(&props, Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue), e)
            }
        }
        let rc = payload.withUnsafeBytes { p in
            mosquitto_publish_v5(mosq, &mid, topic, Int32(p.count), p.baseAddress, qos, retain, props)
        }
        try check(rc, "publish to \(topic)")
        return mid
    }

    public func subscribe(_ pattern: String, qos: Int32 = 1) throws(MQTTError) {
        try check(mosquitto_subscribe_v5(mosq, nil, pattern, qos, 0, nil), "subscribe to \(pattern)")
    }

    /// Disconnects cleanly (no will) and stops the network thread; safe to call twice. With
    /// `externalIO`, call it on the thread that runs the I/O: it sends the DISCONNECT from there
    /// (up to a second) before it hands the I/O back.
    public func stop() {
        let already = stopped.withLock { s -> Bool in defer { s = true }; return s }
        if already { return }
        _ = mosquitto_disconnect(mosq)
        if options.externalIO != nil, io.withLock({ $0.driver }) {
            var waitedMs = 0
            while io.withLock({ $0.driver }), waitedMs < 1000 {
                var fds = [pollfd(fd: mosquitto_socket(mosq), events: Int16(POLLOUT), revents: 0)]
                if fds[0].fd >= 0 { _ = pollDescriptors(&fds, timeoutMs: 100) }
                service()
                waitedMs += 100
            }
            let stillDriving = io.withLock { s -> Bool in
                guard s.driver else { return false }
                s = (false, Int32(MOSQ_ERR_NO_CONN.rawValue))
                return true
            }
            if stillDriving { handedBack.signal() }
        }
        // Let the loop send the DISCONNECT (queuing it wakes the loop), then end the thread (it checks
        // `stopped` after every loop, and every 100 ms while it waits to reconnect).
        if let t = thread.withLock({ v -> PosixThread? in defer { v = nil }; return v }) { t.join() }
    }

    /// True between a successful CONNACK and the next disconnect.
    public var isConnected: Bool { sink.connected.load(ordering: .relaxed) }

    deinit {
        stop()
        mosquitto_destroy(mosq)
    }
}

// C callbacks: nonisolated, capture nothing, copy everything before returning.

private func sink(_ obj: UnsafeMutableRawPointer?) -> EventSink? {
    obj.map { Unmanaged<EventSink>.fromOpaque($0).takeUnretainedValue() }
}

private let onConnect: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, Int32, OpaquePointer?) -> Void = {
    _, obj, rc, flags, _ in
    guard let s = sink(obj) else { return }
    s.connected.store(rc == 0, ordering: .relaxed)
    if rc == 0 { s.connackSeen.store(true, ordering: .relaxed) }
    if s.usingV5.load(ordering: .relaxed),
       rc == Int32(MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION.rawValue) || rc == Int32(CONNACK_REFUSED_PROTOCOL_VERSION.rawValue) {
        s.downgradeRequested.store(true, ordering: .relaxed)
    }
    s.handler(.connected(returnCode: rc, sessionPresent: flags & 1 == 1))
}

private let onDisconnect: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, OpaquePointer?) -> Void = {
    _, obj, rc, _ in
    guard let s = sink(obj) else { return }
    s.connected.store(false, ordering: .relaxed)
    s.handler(.disconnected(returnCode: rc))
}

private let onPublish: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, Int32, OpaquePointer?) -> Void = {
    _, obj, mid, reason, _ in
    sink(obj)?.handler(.published(mid: mid, reasonCode: reason))
}

private let onMessage: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafePointer<mosquitto_message>?, OpaquePointer?) -> Void = {
    _, obj, msgPtr, props in
    guard let s = sink(obj), let m = msgPtr?.pointee, let t = m.topic else { return }
    let topic = String(cString: t)
    var payload: [UInt8] = []
    if let p = m.payload, m.payloadlen > 0 {
        payload = Array(UnsafeRawBufferPointer(start: p, count: Int(m.payloadlen)))
    }
    var responseTopic: String? = nil
    var correlation: [UInt8]? = nil
    var value: UnsafeMutablePointer<CChar>? = nil
    if mosquitto_property_read_string(props, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), &value, false) != nil, let v = value {
        responseTopic = String(cString: v)
        free(v)
    }
    var bin: UnsafeMutableRawPointer? = nil
    var len: UInt16 = 0
    if mosquitto_property_read_binary(props, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), &bin, &len, false) != nil, let b = bin {
        correlation = Array(UnsafeRawBufferPointer(start: b, count: Int(len)))
        free(b)
    }
    s.handler(.message(MQTTMessage(topic: topic, payload: payload, retained: m.retain, responseTopic: responseTopic,
                                   correlationData: correlation)))
}

private let onLog: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void = {
    _, obj, level, text in
    guard let s = sink(obj), let text, level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING) != 0 else { return }
    let line = String(cString: text)
    s.lastLibraryError.withLock { current in
        // Keep the first line of a burst (OpenSSL's reason comes first).
        if current == nil { current = line }
    }
}
