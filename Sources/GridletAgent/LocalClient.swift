import Glibc

/// The CLI side of the local socket: sends one request line, returns the JSON answer.
public enum LocalClient {
    public static func request(_ line: String, socketPath: String, timeoutS: Int = 5) -> Result<String, AgentError> {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return .failure(AgentError("socket: \(String(cString: strerror(errno)))")) }
        defer { close(s) }
        var tv = timeval(tv_sec: timeoutS, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return .failure(AgentError("socket path too long: \(socketPath) (at most 107 bytes); use a shorter site.socket or --socket PATH")) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            return .failure(AgentError("cannot reach the daemon at \(socketPath): \(String(cString: strerror(errno))). Is `gridlet run` running (systemctl status gridlet)?"))
        }
        let out = Array((line + "\n").utf8)
        _ = out.withUnsafeBytes { send(s, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            got += buf[0..<n]
        }
        guard !got.isEmpty else { return .failure(AgentError("the daemon at \(socketPath) sent no answer within \(timeoutS) s; it may be stopping or stuck: try again, and check journalctl -u gridlet")) }
        return .success(String(decoding: got, as: UTF8.self).trimmingSuffixNewlines())
    }
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
