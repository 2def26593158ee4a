import Glibc
import GridletSys

/// Small files written atomically: write a temporary file, fsync it, rename over the old
/// one, fsync the directory. A power cut leaves either the old or the new content.
/// `durable: false` skips the fsyncs: the rename still makes a kill -9 leave old or new, and
/// after a power cut the file may be older (used where older is the safe direction).
public enum StateFile {
    public struct IOError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var operation: String
        public var errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// fdatasync an existing file through a descriptor of its own (nothing when it cannot be opened).
    public static func syncExisting(_ path: String) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fdatasync(fd)
        close(fd)
    }

    public static func write(_ bytes: [UInt8], to path: String, durable: Bool = true) throws(IOError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw IOError(path: tmp, operation: "create", errno: errno) }
        do {
            try FileDescriptor(rawValue: fd).writeAll(bytes)
        } catch {
            close(fd)
            throw IOError(path: tmp, operation: "write", errno: error.rawValue)
        }
        if durable, fsync(fd) != 0 { let e = errno; close(fd); throw IOError(path: tmp, operation: "fsync", errno: e) }
        close(fd)
        if rename(tmp, path) != 0 { throw IOError(path: path, operation: "rename", errno: errno) }
        guard durable else { return }
        let dir = directory(of: path)
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    public static func read(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    /// mkdir -p with the given mode for created directories.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o750) throws(IOError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0, errno != EEXIST {
                throw IOError(path: current, operation: "create directory", errno: errno)
            }
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
