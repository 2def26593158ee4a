import Glibc
import Synchronization

private let tempCounter = Atomic<Int>(0)

/// Small POSIX helpers for the integration tests (no Foundation).
enum TestSupport {
    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        addr.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        return addr
    }

    /// A TCP socket bound to 127.0.0.1:`port` (0 = any free port); returns fd and the port.
    static func boundSocket(port: Int = 0) -> (fd: Int32, port: Int)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = loopback(port: port)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { close(fd); return nil }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, Int(UInt16(bigEndian: bound.sin_port)))
    }

    /// A port that was free a moment ago.
    static func freePort() -> Int {
        guard let (fd, port) = boundSocket() else { return 0 }
        close(fd)
        return port
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    static func portAccepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = loopback(port: port)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Polls `condition` every 20 ms until it holds or `timeoutMs` passes.
    static func waitUntil(timeoutMs: Int64, _ condition: () -> Bool) -> Bool {
        let deadline = monotonicMs() + timeoutMs
        while true {
            if condition() { return true }
            if monotonicMs() >= deadline { return false }
            usleep(20_000)
        }
    }

    static func which(_ program: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let path = "\(dir)/\(program)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// Starts `args` with stdout (and stderr) redirected to `outputPath` (or /dev/null).
    static func spawn(_ args: [String], outputPath: String? = nil) -> pid_t? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let out = outputPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        let rc = posix_spawnp(&pid, args[0], &actions, nil, argv, environ)
        return rc == 0 ? pid : nil
    }

    /// Waits for `pid` to exit for at most `timeoutMs`; kills it when it does not. Returns the exit status.
    @discardableResult
    static func reap(_ pid: pid_t, timeoutMs: Int64) -> Int32? {
        var status: Int32 = 0
        let deadline = monotonicMs() + timeoutMs
        while monotonicMs() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return (status >> 8) & 0xFF }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return nil
    }

    static func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        reap(pid, timeoutMs: 2000)
    }

    /// Runs a program to completion (bounded) and returns its exit status and stdout.
    static func run(_ args: [String], timeoutMs: Int64 = 10_000) -> (status: Int32?, output: String) {
        let path = tempPath("out")
        defer { unlink(path) }
        guard let pid = spawn(args, outputPath: path) else { return (nil, "") }
        let status = reap(pid, timeoutMs: timeoutMs)
        return (status, readFile(path) ?? "")
    }

    static func tempPath(_ suffix: String) -> String {
        let n = tempCounter.add(1, ordering: .relaxed).newValue
        return "/tmp/gridlet-test-\(getpid())-\(monotonicMs())-\(n).\(suffix)"
    }

    static func readFile(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

}
