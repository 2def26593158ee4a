import CGridletSys
import Glibc
import GridletSys
import Synchronization

/// Modbus RTU frames over a raw TCP connection (serial-to-Ethernet adapters in "transparent"
/// mode), which libmodbus 3.1.6 cannot speak: the bridge owns a pseudo-terminal pair and a
/// thread that copies bytes between its master side and the TCP connection, and libmodbus
/// talks RTU on the slave side as on any serial port. So RTU framing, CRC, timeouts and
/// exception handling are libmodbus's own.
///
/// The thread connects (and reconnects with backoff up to 5 s) by itself; while there is no
/// connection, bytes libmodbus sends are discarded and `waitConnected` tells the caller why.
/// The bridge keeps its own descriptor on the slave open (raw, no echo) so the pty survives
/// libmodbus closing and reopening it.
final class RTUOverTCPBridge: Sendable {
    let host: String
    let port: Int
    /// Server side (for `gridlet simulate --rtu-over-tcp`): accept one client at a time on
    /// host:port instead of connecting to it.
    let listening: Int32?
    /// The pty slave libmodbus opens (e.g. /dev/pts/7).
    let devicePath: String

    private struct State: Sendable {
        var connected = false
        var lastErrno: Int32 = 0
        var attempts = 0
    }
    private let state = LockedCondition(State())
    private let master: Int32
    private let heldSlave: Int32
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<PosixThread?>(nil)

    /// Creates the pty pair; the thread starts with `start()`. Returns nil with errno set when
    /// no pty can be allocated.
    init?(host: String, port: Int, listen: Bool = false) {
        self.host = host
        self.port = port
        if listen {
            let l = gridlet_tcp_listen(host, Int32(port))
            guard l >= 0 else { return nil }
            listening = l
        } else {
            listening = nil
        }
        var name = [CChar](repeating: 0, count: 128)
        let m = gridlet_open_pty(&name, UInt(name.count))
        guard m >= 0 else {
            if let listening { let e = errno; close(listening); errno = e }
            return nil
        }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard s >= 0 else {
            let e = errno
            close(m)
            if let listening { close(listening) }
            errno = e
            return nil
        }
        var tio = termios()
        tcgetattr(s, &tio)
        cfmakeraw(&tio)
        tcsetattr(s, TCSANOW, &tio)
        // Non-blocking: bytes from the adapter that nobody reads (it talks while libmodbus does
        // not listen) must not stall the thread once the pty buffer is full; they are dropped.
        _ = fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK)
        master = m
        heldSlave = s
        devicePath = path
    }

    deinit {
        stop()
        close(master)
        close(heldSlave)
        if let listening { close(listening) }
    }

    func start() {
        thread.withLock { t in
            guard t == nil else { return }
            t = try? PosixThread.start(name: "gridlet-rtutcp") { [self] in run() }
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        if let t = thread.withLock({ t -> PosixThread? in defer { t = nil }; return t }) { t.join() }
    }

    /// Waits up to `timeoutMs` for the TCP connection (at least one attempt); nil when
    /// connected, else the errno of the last failed attempt.
    func waitConnected(timeoutMs: Int64) -> Int32? {
        let start = state.withLock { $0.attempts }
        let ok = state.wait(timeoutMs: timeoutMs) { s -> Bool? in
            if s.connected { return true }
            return s.attempts > start && s.lastErrno != 0 ? false : nil
        }
        if ok == true { return nil }
        return state.withLock { $0.connected ? nil : ($0.lastErrno != 0 ? $0.lastErrno : ETIMEDOUT) }
    }

    private func run() {
        var sock: Int32 = -1
        var backoffMs: Int64 = 100
        var nextAttemptMs: Int64 = 0
        var buf = [UInt8](repeating: 0, count: 4096)
        func disconnect(_ code: Int32) {
            if sock >= 0 { close(sock) }
            sock = -1
            nextAttemptMs = SystemClock.monoMs() + backoffMs
            backoffMs = min(backoffMs * 2, 5000)
            state.withLock { $0.connected = false; $0.lastErrno = code }
        }
        while !stopping.load(ordering: .relaxed) {
            if sock < 0, let listening {
                var lp = [pollfd(fd: listening, events: Int16(POLLIN), revents: 0),
                          pollfd(fd: master, events: Int16(POLLIN), revents: 0)]
                guard poll(&lp, 2, 100) > 0 else { continue }
                if lp[1].revents & Int16(POLLIN) != 0 { _ = read(master, &buf, buf.count) }   // nobody to send it to
                if lp[0].revents & Int16(POLLIN) != 0 {
                    let c = accept(listening, nil, nil)
                    if c >= 0 {
                        sock = c
                        tcflush(master, TCIOFLUSH)
                        state.withLock { $0.connected = true; $0.lastErrno = 0; $0.attempts += 1 }
                    }
                }
                continue
            }
            if sock < 0 && SystemClock.monoMs() >= nextAttemptMs {
                let fd = gridlet_tcp_connect(host, Int32(port), 2000)
                if fd >= 0 {
                    sock = fd
                    backoffMs = 100
                    // Whatever libmodbus sent while there was no connection is void.
                    tcflush(master, TCIOFLUSH)
                    state.withLock { $0.connected = true; $0.lastErrno = 0; $0.attempts += 1 }
                } else {
                    let e = errno
                    state.withLock { $0.attempts += 1 }
                    disconnect(e)
                }
            }
            var fds = [pollfd(fd: master, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: sock, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, sock >= 0 ? 2 : 1, 100)
            if n <= 0 { continue }
            if fds[0].revents & Int16(POLLIN) != 0 {
                let got = read(master, &buf, buf.count)
                if got > 0, sock >= 0 {
                    var off = 0
                    while off < got {
                        let w = buf.withUnsafeBytes { send(sock, $0.baseAddress! + off, got - off, Int32(MSG_NOSIGNAL)) }
                        if w <= 0 { disconnect(errno); break }
                        off += w
                    }
                }
            }
            if sock >= 0, fds[1].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let got = recv(sock, &buf, buf.count, 0)
                if got > 0 {
                    var off = 0
                    while off < got {
                        let w = buf.withUnsafeBytes { write(master, $0.baseAddress! + off, got - off) }
                        if w <= 0 { break }   // EAGAIN: nobody reads the pty; drop the rest
                        off += w
                    }
                } else {
                    disconnect(got == 0 ? ECONNRESET : errno)
                }
            }
        }
        if sock >= 0 { close(sock) }
        state.withLock { $0.connected = false }
    }
}

/// The server side of RTU over TCP, for `gridlet simulate --rtu-over-tcp`: accepts one TCP
/// client at a time on host:port and carries its bytes to and from a pseudo-terminal on which
/// an RTU server (the simulator) listens — what a transparent serial-to-Ethernet adapter does.
public final class RTUOverTCPListener: Sendable {
    private let bridge: RTUOverTCPBridge
    /// The pty the RTU server opens.
    public var devicePath: String { bridge.devicePath }

    /// nil with errno set when host:port cannot be bound or no pty can be allocated.
    public init?(host: String, port: Int) {
        guard let b = RTUOverTCPBridge(host: host, port: port, listen: true) else { return nil }
        bridge = b
    }

    public func start() { bridge.start() }
    public func stop() { bridge.stop() }
}
