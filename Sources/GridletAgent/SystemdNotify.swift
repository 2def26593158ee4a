import Glibc

/// sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET per message.
public struct SystemdNotify: Sendable {
    public let socketPath: String?
    /// Half of WATCHDOG_USEC in ms, when systemd asked for keep-alives.
    public let watchdogIntervalMs: Int64?

    public init() {
        socketPath = getenv("NOTIFY_SOCKET").map { String(cString: $0) }
        if let w = getenv("WATCHDOG_USEC"), let usec = Int64(String(cString: w)), usec > 0 {
            let pidOK = getenv("WATCHDOG_PID").map { Int32(String(cString: $0)) == getpid() } ?? true
            watchdogIntervalMs = pidOK ? max(1, usec / 2000) : nil
        } else {
            watchdogIntervalMs = nil
        }
    }

    public var enabled: Bool { socketPath != nil }

    public func send(_ message: String) {
        guard let path = socketPath, !path.isEmpty else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }   // abstract namespace
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let payload = Array(message.utf8)
        _ = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                payload.withUnsafeBytes { b in sendto(fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL), sa, len) }
            }
        }
    }
}
