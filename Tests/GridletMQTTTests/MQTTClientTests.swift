import Glibc
import GridletMQTT
import Synchronization
import Testing

/// Tests against a real mosquitto on a free loopback port (never a mock of MQTT).
final class Broker {
    let port: Int
    var pid: pid_t = 0
    let dir: String

    init() throws {
        port = Broker.freePort()
        var template = Array("/tmp/gridlet-mqtt-XXXXXX".utf8CString)
        guard let d = mkdtemp(&template) else { throw BrokerError.start("mkdtemp") }
        dir = String(cString: d)
        let conf = "\(dir)/mosquitto.conf"
        let text = "listener \(port) 127.0.0.1\nallow_anonymous true\n"
        let f = fopen(conf, "w")
        fputs(text, f)
        fclose(f)
    }

    enum BrokerError: Error { case start(String) }

    func start() throws {
        var p: pid_t = 0
        let args = ["mosquitto", "-c", "\(dir)/mosquitto.conf"]
        var cargs = args.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Test threads block signals; the child must not inherit that mask or SIGTERM never arrives.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
        guard posix_spawnp(&p, "mosquitto", &actions, &attr, &cargs, environ) == 0 else {
            throw BrokerError.start("mosquitto not installed (apt-get install mosquitto)")
        }
        pid = p
        guard waitUntil(5000, { Broker.accepts(self.port) }) else { throw BrokerError.start("mosquitto did not listen") }
    }

    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    deinit { stop() }

    static func freePort() -> Int {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) == 0 ? getsockname(s, $0, &len) : -1 }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func accepts(_ port: Int) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

func waitUntil(_ ms: Int, _ condition: () -> Bool) -> Bool {
    var waited = 0
    while waited < ms {
        if condition() { return true }
        usleep(20_000)
        waited += 20
    }
    return condition()
}

final class Events: Sendable {
    let list = Mutex<[MQTTEvent]>([])
    func add(_ e: MQTTEvent) { list.withLock { $0.append(e) } }
    var all: [MQTTEvent] { list.withLock { $0 } }
    var connectedCount: Int { all.filter { if case .connected(0, _) = $0 { return true }; return false }.count }
    func acked(_ mid: Int32) -> Bool { all.contains { if case .published(mid, _) = $0 { return true }; return false } }
    var messages: [MQTTMessage] { all.compactMap { if case let .message(m) = $0 { return m }; return nil } }
}

@Suite(.serialized) struct MQTTClientTests {
    @Test func publishIsAcknowledgedAndSubscriptionsReceive() throws {
        let broker = try Broker()
        try broker.start()
        let events = Events()
        let client = try MQTTClient(options: MQTTClientOptions(clientID: "t1", host: "127.0.0.1", port: broker.port)) { events.add($0) }
        try client.start()
        #expect(waitUntil(5000) { events.connectedCount == 1 })
        try client.subscribe("t/#")
        usleep(200_000)
        let mid = try client.publish(topic: "t/a", payload: Array("hello".utf8))
        #expect(waitUntil(5000) { events.acked(mid) }, "no PUBACK for mid \(mid)")
        #expect(waitUntil(5000) { events.messages.contains { $0.topic == "t/a" && $0.payload == Array("hello".utf8) } })
        client.stop()
    }

    @Test func startsWithoutBrokerAndConnectsWhenItAppears() throws {
        let broker = try Broker()
        let events = Events()
        let client = try MQTTClient(options: MQTTClientOptions(clientID: "t2", host: "127.0.0.1", port: broker.port,
                                                               reconnectDelayMinS: 1, reconnectDelayMaxS: 2)) { events.add($0) }
        try client.start()   // broker not running: not an error, the loop keeps trying
        usleep(1_500_000)
        #expect(events.connectedCount == 0)
        try broker.start()
        #expect(waitUntil(8000) { events.connectedCount == 1 }, "did not connect after the broker started: \(events.all)")
        // The broker goes away and comes back: disconnected, then connected again.
        broker.stop()
        #expect(waitUntil(5000) { events.all.contains { if case .disconnected = $0 { return true }; return false } })
        try broker.start()
        #expect(waitUntil(10000) { events.connectedCount == 2 })
        client.stop()
    }

    @Test func wrongPortIsReportedThroughEventsNotACrash() throws {
        let events = Events()
        let client = try MQTTClient(options: MQTTClientOptions(clientID: "t3", host: "127.0.0.1", port: Broker.freePort())) { events.add($0) }
        try client.start()
        usleep(500_000)
        #expect(events.connectedCount == 0)
        #expect(throws: MQTTError.self) { try client.publish(topic: "x/#", payload: []) }   // wildcard in a publish topic
        client.stop()
    }

    @Test func badTLSFileIsAClearError() throws {
        do {
            _ = try MQTTClient(options: MQTTClientOptions(clientID: "t4", host: "127.0.0.1", port: 8883, caFile: "/nonexistent/ca.pem")) { _ in }
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("ca_file /nonexistent/ca.pem"))
        }
    }
}

/// `externalIO`: the caller's thread runs the socket I/O (as the agent's control loop does); the
/// client's own thread only connects and reconnects.
@Suite(.serialized) struct MQTTExternalIOTests {
    /// Polls the client's socket and runs its I/O on this thread until `condition` or `ms`.
    func drive(_ client: MQTTClient, _ ms: Int, until condition: () -> Bool) -> Bool {
        var waited = 0
        while waited < ms {
            if condition() { return true }
            if let w = client.pollRequest {
                var fds = [pollfd(fd: w.fd, events: w.events, revents: 0)]
                _ = poll(&fds, 1, 20)
                client.service()
                client.flush()
            } else {
                usleep(20_000)
            }
            waited += 20
        }
        return condition()
    }

    @Test func theCallersThreadRunsTheIOAndTheClientsThreadReconnects() throws {
        let broker = try Broker()
        try broker.start()
        let events = Events()
        let seen = Seen()
        var options = MQTTClientOptions(clientID: "t-ext", host: "127.0.0.1", port: broker.port,
                                        reconnectDelayMinS: 1, reconnectDelayMaxS: 1)
        options.externalIO = { seen.handoffs.add(1, ordering: .relaxed) }
        let client = try MQTTClient(options: options) { e in
            seen.threads.withLock { $0.append(pthread_self()) }
            events.add(e)
        }
        try client.start()
        #expect(waitUntil(5000) { seen.handoffs.load(ordering: .relaxed) == 1 && client.pollRequest != nil })
        // Handed over: nothing reads the CONNACK until this thread does.
        usleep(300_000)
        #expect(events.connectedCount == 0)
        #expect(drive(client, 5000) { events.connectedCount == 1 })
        let mids = try (0..<40).map { i in try client.publish(topic: "t/ext", payload: Array("m\(i)".utf8)) }
        #expect(drive(client, 5000) { mids.allSatisfy(events.acked) }, "not every PUBACK arrived: \(events.all.count) events")
        let me = pthread_self()
        #expect(seen.threads.withLock { $0.allSatisfy { pthread_equal($0, me) != 0 } }, "an event arrived on another thread")

        // The broker goes away: the failure hands the I/O back, the client's thread reconnects
        // with backoff and hands it over again.
        broker.stop()
        #expect(drive(client, 5000) { client.pollRequest == nil })
        #expect(events.all.contains { if case .disconnected = $0 { return true }; return false })
        try broker.start()
        #expect(waitUntil(10_000) { seen.handoffs.load(ordering: .relaxed) >= 2 && client.pollRequest != nil })
        #expect(drive(client, 5000) { events.connectedCount == 2 })

        // A clean stop from the driving thread sends DISCONNECT (reason 0) and ends the client's thread.
        let t0 = SystemClockish.ms()
        client.stop()
        #expect(SystemClockish.ms() - t0 < 3000)
        #expect(client.pollRequest == nil)
        #expect(events.all.last == .disconnected(returnCode: 0))
    }
}

final class Seen: Sendable {
    let handoffs = Atomic<Int>(0)
    let threads = Mutex<[pthread_t]>([])
}

enum SystemClockish {
    static func ms() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
