import Glibc
import GridletCore

/// The local, append-only copy of the ledger records: `state_dir/ledger.log`, one JSON record per
/// line, as published on `root/ledger` (without `seq`). Ledger records leave the queue once the
/// broker acknowledged them, so this is what `gridlet ledger` reads to split energy by market or
/// source on the site itself.
///
/// Bounded: at `maxBytes` the file is renamed to `ledger.log.1` (the previous one dropped) and a
/// new one started, so it never holds more than twice that. At the default 4 MiB and ~170 bytes a
/// record that is years of 15-minute records. Written by the control loop when records are
/// emitted (a small `write(2)`); made durable with the queue's sync before `ledger.json` is saved,
/// so a crash leaves at most a record that the next start emits again (`LedgerSplit`
/// deduplicates those).
final class LedgerLog {
    let path: String
    let maxBytes: Int
    private var fd: Int32 = -1
    private var size = 0
    private(set) var lastError: String?

    static let fileName = "ledger.log"
    static let defaultMaxBytes = 4 << 20

    init(stateDir: String, maxBytes: Int = LedgerLog.defaultMaxBytes) {
        path = stateDir + "/" + Self.fileName
        self.maxBytes = max(4096, maxBytes)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Appends records; a failure is remembered (and returned) but never stops the agent: the
    /// queue and MQTT remain the record of truth.
    @discardableResult
    func append(_ records: [LedgerRecord]) -> String? {
        guard !records.isEmpty else { return nil }
        var bytes: [UInt8] = []
        for r in records { bytes += Array(JSONValue.object(r.jsonFields).serialized.utf8); bytes.append(0x0A) }
        if fd < 0 || size + bytes.count > maxBytes { reopen(rotate: fd >= 0 || fileSize() + bytes.count > maxBytes) }
        guard fd >= 0 else { return lastError }
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { lastError = "write \(path): \(String(cString: strerror(errno)))"; return lastError }
            done += n
        }
        size += done
        lastError = nil
        return nil
    }

    /// fdatasync (with the queue's sync before `ledger.json` is saved).
    func sync() { if fd >= 0 { _ = fdatasync(fd) } }

    private func fileSize() -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    private func reopen(rotate: Bool) {
        if fd >= 0 { close(fd); fd = -1 }
        if rotate, fileSize() > 0 { _ = rename(path, path + ".1") }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if fd < 0 { lastError = "open \(path): \(String(cString: strerror(errno)))"; return }
        size = fileSize()
    }

    /// Every record in `ledger.log.1` and `ledger.log` under `stateDir`, oldest first; unreadable
    /// lines (a torn last line after a power cut) are skipped and counted.
    static func records(stateDir: String) -> (records: [LedgerRecord], skipped: Int, files: Int) {
        var out: [LedgerRecord] = []
        var skipped = 0, files = 0
        for file in [fileName + ".1", fileName] {
            guard let bytes = StateFile.read(stateDir + "/" + file, limit: 64 << 20) else { continue }
            files += 1
            for line in bytes.split(separator: 0x0A) where !line.isEmpty {
                if let v = try? JSONValue.parse(Array(line)), let r = LedgerRecord.parse(v) { out.append(r) } else { skipped += 1 }
            }
        }
        return (out, skipped, files)
    }
}

/// `gridlet ledger`: the energy in a time range split by market or source, from `ledger.log`.
public enum LedgerReport {
    /// `{"ok":true,"from":..,"to":..,"by":"market","rows":[{"market":..,"import_wh":..,"export_wh":..,
    /// "records":N,"estimated":bool}],"total":{..},"records":N,"skipped_lines":N}`; `rows` sorted by key.
    public static func json(stateDir: String, fromMs: Int64?, toMs: Int64?, by key: LedgerSplit.Key) -> JSONValue {
        let (records, skipped, files) = LedgerLog.records(stateDir: stateDir)
        let rows = LedgerSplit.sum(records, fromMs: fromMs ?? Int64.min, toMs: toMs ?? Int64.max, by: key)
        func row(_ k: String, _ i: Int64, _ e: Int64, _ n: Int, _ est: Bool) -> JSONValue {
            .object([(key.rawValue, .string(k)), ("import_wh", .number(Double(i) / 1000)), ("export_wh", .number(Double(e) / 1000)),
                     ("records", .number(Double(n))), ("estimated", .bool(est))])
        }
        let total = rows.reduce((Int64(0), Int64(0), 0, false)) { ($0.0 + $1.importMWh, $0.1 + $1.exportMWh, $0.2 + $1.records, $0.3 || $1.estimated) }
        return .object([
            ("ok", .bool(true)), ("from", fromMs.map { .string(Timestamp.format(ms: $0)) } ?? .null),
            ("to", toMs.map { .string(Timestamp.format(ms: $0)) } ?? .null), ("by", .string(key.rawValue)),
            ("rows", .array(rows.map { row($0.key, $0.importMWh, $0.exportMWh, $0.records, $0.estimated) })),
            ("total", .object([("import_wh", .number(Double(total.0) / 1000)), ("export_wh", .number(Double(total.1) / 1000)),
                               ("records", .number(Double(total.2))), ("estimated", .bool(total.3))])),
            ("files", .number(Double(files))), ("skipped_lines", .number(Double(skipped))),
        ])
    }
}
