import Glibc
import Testing
@testable import GridletQueue

/// A temp directory made with mkdtemp, removed (recursively) on deinit.
final class TempDir {
    let path: String

    /// `base` "/dev/shm" (when writable) for tests that reopen hundreds of times: there
    /// fdatasync costs nothing, which is not what those tests are about.
    init(base: String = "/tmp") {
        let dir = base == "/tmp" || access(base, W_OK) == 0 ? base : "/tmp"
        var template = Array("\(dir)/gridlet-queue-test.XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }

    deinit { removeTree(path) }

    var queueFile: String { path + "/queue.dat" }
}

func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        if let d = opendir(path) {
            var names: [String] = []
            while let ent = readdir(d) {
                let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(d)
            for n in names { removeTree(path + "/" + n) }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// Deterministic payload for a test record index.
func payload(_ i: Int, size: Int = 40) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0 &* 7 &+ 3) }
}

func readFile(_ path: String, offset: Int, count: Int) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    precondition(fd >= 0)
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: count)
    let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, count, off_t(offset)) }
    precondition(n == count)
    return buf
}

func writeFile(_ path: String, offset: Int, bytes: [UInt8]) {
    let fd = open(path, O_WRONLY)
    precondition(fd >= 0)
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, bytes.count, off_t(offset)) }
    precondition(n == bytes.count)
}

func truncateFile(_ path: String, to size: Int) {
    precondition(truncate(path, off_t(size)) == 0)
}

func fileStat(_ path: String) -> stat {
    var st = stat()
    precondition(stat(path, &st) == 0)
    return st
}

func recordSize(_ payloadLen: Int) -> Int { 32 + ((payloadLen + 7) & ~7) }

/// Every unacked record (up to 1 million).
func allRecords(_ q: DiskQueue) -> [QueuedRecord] { q.records(after: 0, limit: 1_000_000) }

struct GapInfo: Equatable {
    var from: UInt64
    var to: UInt64
    var count: UInt64
}

/// Parse a gap payload with a tiny hand-written JSON scan (independent of the queue's parser).
func parseGap(_ payload: [UInt8]) -> GapInfo? {
    let s = String(decoding: payload, as: UTF8.self)
    guard s.hasPrefix("{"), s.hasSuffix("}"), s.contains("\"reason\":\"queue_full\"") else { return nil }
    var values: [String: UInt64] = [:]
    for part in s.dropFirst().dropLast().split(separator: ",") {
        let kv = part.split(separator: ":", maxSplits: 1)
        guard kv.count == 2 else { return nil }
        let key = kv[0].trimmingCharacters(in: "\"")
        if let v = UInt64(kv[1]) { values[key] = v }
    }
    guard let f = values["from_seq"], let t = values["to_seq"], let c = values["count"] else { return nil }
    return GapInfo(from: f, to: t, count: c)
}

extension Substring {
    func trimmingCharacters(in c: Character) -> String {
        var s = self
        while s.first == c { s.removeFirst() }
        while s.last == c { s.removeLast() }
        return String(s)
    }
}
