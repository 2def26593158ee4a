import Dispatch
import Glibc
import GridletCore
import GridletModbus
import GridletSys
import Synchronization

/// The local CLI socket (`site.socket`, mode 0660). One request line per connection:
/// `status` returns the latest snapshot, `read DEVICE` reads the device through the daemon's
/// own bus (so there is one master per bus), `modbus ...` and `scan ...` run diagnostics on a
/// configured bus (see DiagnosticsRequests; a write to a register the daemon drives is refused),
/// `queue-stats` the queue stats the control loop published last, `queue-peek N` the oldest N
/// records (the control loop reads them on its next turn; this thread never touches the queue),
/// `events`, `optout ID`, `schedule N` and `version-reset events|schedules` are answered by the
/// control loop. The answer is one JSON document.
final class StatusServer: Sendable {
    let path: String
    private let fd: Int32
    private let snapshot = Mutex("{}")
    private let queueStats = Mutex("{\"ok\":false,\"error\":\"no queue stats yet\"}")
    /// A pending `queue-peek` (count) and the control loop's answer.
    private let peek = Mutex<(requested: Int?, answer: String?)>((nil, nil))
    private let links: [DeviceLink]
    /// Charger control registers `modbus ... write` may not touch while the daemon runs.
    private let driven: DrivenRegisters
    private let log: Logger
    private let running = Atomic<Bool>(false)
    private let thread = Mutex<PosixThread?>(nil)
    /// Set by the agent: requests that the control loop must answer.
    let controlLoop = Mutex<ControlLoopChannel?>(nil)

    init(path: String, links: [DeviceLink], logger: Logger) throws(StateFile.IOError) {
        self.path = path
        self.links = links
        self.driven = DrivenRegisters(links: links)
        self.log = logger
        try StateFile.makeDirectories(StateFile.directory(of: path), mode: 0o755)
        unlink(path)
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw StateFile.IOError(path: path, operation: "create socket", errno: errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(s)
            throw StateFile.IOError(path: path, operation: "bind (path too long)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { let e = errno; close(s); throw StateFile.IOError(path: path, operation: "bind", errno: e) }
        chmod(path, 0o660)
        guard listen(s, 8) == 0 else { let e = errno; close(s); throw StateFile.IOError(path: path, operation: "listen", errno: e) }
        fd = s
    }

    func update(snapshot json: String) { snapshot.withLock { $0 = json } }

    func update(queueStats json: String) { queueStats.withLock { $0 = json } }

    /// Control loop: the count of a pending peek request, if any (clears it).
    func takePeekRequest() -> Int? {
        peek.withLock { p -> Int? in defer { p.requested = nil }; return p.requested }
    }

    /// Control loop: the answer to the request taken with `takePeekRequest`.
    func answerPeek(_ json: String) { peek.withLock { $0.answer = json } }

    /// Socket thread: ask the control loop for the oldest `count` records, wait up to 3 s.
    private func requestPeek(_ count: Int) -> String {
        peek.withLock { $0 = (count, nil) }
        for _ in 0..<300 {
            if let a = peek.withLock({ p -> String? in defer { p.answer = nil }; return p.answer }) { return a }
            usleep(10_000)
        }
        peek.withLock { $0 = (nil, nil) }
        return JSONValue.object([("ok", .bool(false)), ("error", .string("the control loop did not answer within 3 s"))]).serialized
    }

    func start() {
        running.store(true, ordering: .relaxed)
        let t = try? PosixThread.start(name: "gridlet-socket") { [self] in serve() }
        thread.withLock { $0 = t }
    }

    func stop() {
        running.store(false, ordering: .relaxed)
        shutdown(fd, Int32(SHUT_RDWR))
        if let t = thread.withLock({ v -> PosixThread? in defer { v = nil }; return v }) { t.join() }
        close(fd)
        unlink(path)
    }

    private func serve() {
        while running.load(ordering: .relaxed) {
            // No timeout: the thread sleeps until a client connects; stop() shuts the listening
            // socket down, which wakes the poll (POLLHUP) and fails the accept (EINVAL). A timeout
            // here was 5 idle wake-ups a second (200 ms).
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, -1)
            if n <= 0 { continue }
            let c = accept(fd, nil, nil)
            if c < 0 {
                // Out of descriptors or memory leaves the connection pending and the socket
                // readable: wait a little instead of spinning on it.
                if running.load(ordering: .relaxed), errno != EINTR, errno != ECONNABORTED { usleep(100_000) }
                continue
            }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let request = readLine(c)
            let answer = respond(to: request) + "\n"
            var out = Array(answer.utf8)[...]
            while !out.isEmpty {
                let w = out.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { break }
                out = out.dropFirst(w)
            }
            close(c)
        }
    }

    private func readLine(_ c: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 1024)
        var got: [UInt8] = []
        while got.count < 1024, !got.contains(UInt8(ascii: "\n")) {
            let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            got += buf[0..<n]
        }
        return String(decoding: got, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
    }

    private func respond(to request: String) -> String {
        let words = request.split(separator: " ").map(String.init)
        switch words.first {
        case "status":
            return snapshot.withLock { $0 }
        case "events", "optout", "schedule", "version-reset":
            // These need the control engine, which only the control loop may touch.
            guard let loop = controlLoop.withLock({ $0 }) else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("the control loop is not running"))]).serialized
            }
            return loop.ask(request)
        case "queue-stats":
            return queueStats.withLock { $0 }
        case "queue-peek":
            let n = words.count >= 2 ? Int(words[1]) ?? 10 : 10
            return requestPeek(max(0, min(n, 1000)))
        case "read":
            guard words.count >= 2, let link = links.first(where: { $0.config.name == words[1] }) else {
                return JSONValue.object([("ok", .bool(false)), ("error", .string("unknown device; configured: \(links.map(\.config.name).joined(separator: ", "))"))]).serialized
            }
            return DeviceRead.json(profile: link.profile, device: link.config.name, result: link.reader.read(on: link.bus),
                                   only: Array(words.dropFirst(2)))
        case "modbus", "scan":
            var buses: [ModbusBus] = []
            for l in links where !buses.contains(where: { $0 === l.bus }) { buses.append(l.bus) }
            return DiagnosticsRequests.respond(words, buses: buses, driven: driven)
        default:
            return JSONValue.object([("ok", .bool(false)), ("error", .string("unknown request '\(request)'; use status, read DEVICE, modbus, scan, events, optout ID, schedule N, version-reset events|schedules, queue-stats or queue-peek N"))]).serialized
        }
    }
}

/// The JSON answer to `gridlet read DEVICE`: every point with its unit. Used by the daemon's
/// socket and by the CLI when it reads a device directly.
public enum DeviceRead {
    public static func json(profile: DeviceProfile, device: String, result: Result<[String: Double?], ModbusError>,
                            only: [String]) -> String {
        switch result {
        case let .failure(e):
            return JSONValue.object([("ok", .bool(false)), ("device", .string(device)), ("error", .string(e.description))]).serialized
        case let .success(values):
            var points: [(String, JSONValue)] = []
            for p in profile.points where only.isEmpty || only.contains(p.name) {
                let v: JSONValue = (values[p.name] ?? nil).map { .number($0) } ?? .null
                points.append((p.name, .object([("value", v), ("unit", .string(p.unit))])))
            }
            return JSONValue.object([("ok", .bool(true)), ("device", .string(device)),
                                     ("profile", .string(profile.name)), ("points", .object(points))]).serialized
        }
    }
}

/// A request from the socket thread to the control loop, answered within a bounded time.
final class LocalRequest: Sendable {
    let text: String
    private let answer = Mutex<String?>(nil)
    private let done = DispatchSemaphore(value: 0)
    init(_ text: String) { self.text = text }
    func reply(_ json: String) { answer.withLock { $0 = json }; done.signal() }
    func wait(timeoutMs: Int) -> String? {
        _ = done.wait(timeout: .now() + .milliseconds(timeoutMs))
        return answer.withLock { $0 }
    }
}

/// How the socket thread reaches the control loop: posts to its mailbox and waits.
struct ControlLoopChannel: Sendable {
    let post: @Sendable (LocalRequest) -> Void
    func ask(_ text: String) -> String {
        let r = LocalRequest(text)
        post(r)
        return r.wait(timeoutMs: 3000)
            ?? JSONValue.object([("ok", .bool(false)), ("error", .string("the control loop did not answer within 3 s"))]).serialized
    }
}
