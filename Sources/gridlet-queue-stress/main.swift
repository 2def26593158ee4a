// gridlet-queue-stress: appends, drains and acks on a DiskQueue in a loop so that a test can
// kill -9 it at random moments and check what survives (tests/e2e/test_queue_crash.py,
// bench/queue-crash.sh). Protocol on stdout, one line per event, written with write(2)
// (unbuffered, so a line is out before the next queue call):
//
//   R seq kind hexpayload   every record found at open, oldest first (kind: t l r g)
//   OPEN next=N records=N skipped=N dropped=N
//   W id                    about to append the record with payload id `id`
//   D seq id kind           that record is durable against kill -9: after append returns
//                           with `always` (fdatasync) and `none` (written to the page cache),
//                           after the next explicit sync() with `batch`; with `always-bg` and
//                           `batch-bg` (syncs on a QueueSyncer thread, results applied by this
//                           loop) once the queue's durableBelowSeq has passed it
//   G hexpayload            a gap record read while draining (printed before it is acked)
//   K seq                   about to ack seq
//
// Payload of record `id`: 8 bytes little-endian id, then `len` bytes where byte i is
// (id * 131 + i * 7) & 0xff, len = 8 + id % 240. So every record is checkable on its own.
//
// Usage: gridlet-queue-stress --dir D --max-bytes N --sync always|batch|none|always-bg|batch-bg --run R
//        [--seed S] [--ops N]   (ops 0 = until killed)
import Glibc
import GridletQueue
import GridletSys
import Synchronization

func out(_ s: String) {
    do { try FileDescriptor.standardOutput.writeAll((s + "\n").utf8) } catch { exit(3) }
}

func fail(_ s: String) -> Never {
    try? FileDescriptor.standardError.writeAll(("gridlet-queue-stress: " + s + "\n").utf8)
    exit(2)
}

func hex(_ b: [UInt8]) -> String {
    let d = Array("0123456789abcdef".utf8)
    var o = [UInt8](); o.reserveCapacity(b.count * 2)
    for x in b { o.append(d[Int(x >> 4)]); o.append(d[Int(x & 15)]) }
    return String(decoding: o, as: UTF8.self)
}

func payload(id: UInt64) -> [UInt8] {
    let len = 8 + Int(id % 240)
    var p = [UInt8](repeating: 0, count: 8 + len)
    for i in 0..<8 { p[i] = UInt8(truncatingIfNeeded: id >> (8 * UInt64(i))) }
    for i in 0..<len { p[8 + i] = UInt8(truncatingIfNeeded: id &* 131 &+ UInt64(i) &* 7) }
    return p
}

func letter(_ k: RecordKind) -> String {
    switch k { case .telemetry: "t"; case .ledger: "l"; case .response: "r"; case .gap: "g"; case .report: "p" }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}

var args = Array(CommandLine.arguments.dropFirst())
var opts: [String: String] = [:]
while args.count >= 2, args[0].hasPrefix("--") { opts[String(args[0].dropFirst(2))] = args[1]; args.removeFirst(2) }
guard args.isEmpty, let dir = opts["dir"], let maxBytes = opts["max-bytes"].flatMap({ Int($0) }),
      let run = opts["run"].flatMap({ UInt64($0) }) else {
    fail("usage: --dir D --max-bytes N --sync always|batch|none --run R [--seed S] [--ops N]")
}
let sync: QueueSyncMode
let background = (opts["sync"] ?? "").hasSuffix("-bg")
switch opts["sync"] ?? "always" {
case "always", "always-bg": sync = .always
case "batch", "batch-bg": sync = .batch(intervalMs: 1_000_000)  // syncs come from the explicit sync()/requestSync calls
case "none": sync = .none
default: fail("unknown sync mode")
}
let syncName = String((opts["sync"] ?? "always").split(separator: "-")[0])

func monoNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// Bench modes (bench/queue.sh): `--bench append --count N` appends N telemetry records of
// 200 bytes (batch: sync_interval 1 s on the real clock); `--bench recovery` fills the queue
// until it drops, then times a reopen.
if let mode = opts["bench"] {
    let body = [UInt8](repeating: 0x61, count: 200)
    do {
        if mode == "fill" {
            // A backlog for bench/drain.sh: N telemetry-shaped JSON records, none acknowledged.
            let n = opts["count"].flatMap { Int($0) } ?? 10000
            let json = Array(("{\"ts\":\"2027-06-01T17:00:00.000Z\",\"devices\":{\"meter\":{\"power_w\":4318.25,"
                + "\"import_wh\":12345500,\"export_wh\":67250,\"voltage_v\":[229.5,230.25,231],\"current_a\":[5.5,6.25,7],"
                + "\"frequency_hz\":50.0625,\"ok\":true}},\"control\":{\"limit_w\":11040,\"applied_a\":16,\"source\":\"default\"}}").utf8)
            let q = try DiskQueue(directory: dir, maxBytes: maxBytes, sync: .none)
            for i in 0..<n { try q.append(kind: .telemetry, payload: json, timestampMs: Int64(i)) }
            try q.sync()
            out("fill records=\(q.stats.records) bytes=\(q.stats.bytes) payload=\(json.count)")
            q.close()
        } else if mode == "append" {
            let n = opts["count"].flatMap { Int($0) } ?? 10000
            let q = try DiskQueue(directory: dir, maxBytes: maxBytes,
                                  sync: syncName == "batch" ? .batch(intervalMs: 1000) : sync)
            let t0 = monoNs()
            for _ in 0..<n {
                let seq = try q.append(kind: .telemetry, payload: body, timestampMs: Int64(monoNs() / 1_000_000))
                if q.stats.records > 1000 { try q.ack(seq: seq - 1000) }
            }
            try q.sync()
            let s = Double(monoNs() - t0) / 1e9
            out("append sync=\(syncName) records=\(n) seconds=\(s) rate=\(Int(Double(n) / s))/s")
            q.close()
        } else {
            var q = try DiskQueue(directory: dir, maxBytes: maxBytes, sync: .none)
            var n = 0
            while q.stats.droppedRecords == 0 {
                try q.append(kind: n % 50 == 0 ? .ledger : .telemetry, payload: body, timestampMs: Int64(n))
                n += 1
            }
            let live = q.stats.records
            try q.sync()
            q.close()
            let t0 = monoNs()
            q = try DiskQueue(directory: dir, maxBytes: maxBytes, sync: .none)
            let s = Double(monoNs() - t0) / 1e9
            out("recovery max_bytes=\(maxBytes) records=\(q.stats.records) (of \(live)) bytes=\(q.stats.bytes) seconds=\(s)")
            q.close()
        }
    } catch {
        fail("\(error)")
    }
    exit(0)
}
var rng = SplitMix(state: (opts["seed"].flatMap { UInt64($0) } ?? 1) ^ (run &* 0x2545_F491_4F6C_DD1D))
let ops = opts["ops"].flatMap { Int($0) } ?? 0

let q: DiskQueue
do { q = try DiskQueue(directory: dir, maxBytes: maxBytes, sync: sync) } catch { fail("open: \(error)") }
for r in q.records(after: 0, limit: Int.max) { out("R \(r.seq) \(letter(r.kind)) \(hex(r.payload))") }
let st = q.stats
out("OPEN next=\(st.nextSeq) records=\(st.records) skipped=\(st.skippedOnRecovery) dropped=\(st.droppedRecords)")

var counter: UInt64 = 0
var pending: [(UInt64, UInt64, RecordKind)] = []
// Background syncs: results arrive from the syncer thread and are applied here, between ops.
let completions = Mutex<[(UInt64, Int32)]>([])
if background {
    do {
        let syncer = try QueueSyncer { id, e in completions.withLock { $0.append((id, e)) } }
        q.enableBackgroundSync { syncer.submit($0) }
    } catch {
        fail("syncer: \(error)")
    }
}
@MainActor func applyCompletions(nowMs: Int64) throws(QueueError) {
    let done = completions.withLock { c in defer { c.removeAll() }; return c }
    for (id, e) in done { try q.completeSync(id: id, errno: e, nowMs: nowMs) }
    let durable = q.durableBelowSeq
    var n = 0
    while n < pending.count && pending[n].0 < durable {
        out("D \(pending[n].0) \(pending[n].1) \(letter(pending[n].2))")
        n += 1
    }
    if n > 0 { pending.removeFirst(n) }
}
// Phases: mostly balanced, sometimes append-only (fills the rings and makes them drop).
var fillPhase = rng.below(3) == 0
var done = 0
var now: Int64 = 1_000
while ops == 0 || done < ops {
    done += 1
    now += 1
    if rng.below(300) == 0 { fillPhase.toggle() }
    let roll = rng.below(100)
    do {
        if background { try applyCompletions(nowMs: now) }
        if roll < (fillPhase ? 95 : 60) {
            counter += 1
            let id = run << 32 | counter
            let k = rng.below(10)
            let kind: RecordKind = k < 8 ? .telemetry : (k == 8 ? .ledger : .response)
            out("W \(id)")
            let seq = try q.append(kind: kind, payload: payload(id: id), timestampMs: now)
            // `none`: kill -9 loses nothing that was written (page cache), so written = durable here.
            if background {
                pending.append((seq, id, kind))
                if syncName == "batch" && rng.below(20) == 0 { try q.requestSync(nowMs: now) }
            } else if syncName != "batch" {
                out("D \(seq) \(id) \(letter(kind))")
            } else {
                pending.append((seq, id, kind))
                if rng.below(20) == 0 {
                    try q.sync()
                    for (s, i, k) in pending { out("D \(s) \(i) \(letter(k))") }
                    pending.removeAll()
                }
            }
        } else {
            // Drain: ack a few of the oldest (sometimes the second before the first).
            let recs = q.records(after: 0, limit: 1 + Int(rng.below(8)))
            var batch = recs
            if batch.count >= 2 && rng.below(4) == 0 { batch.swapAt(0, 1) }
            for r in batch {
                if r.kind == .gap { out("G \(hex(r.payload))") }
                out("K \(r.seq)")
                try q.ack(seq: r.seq)
            }
        }
    } catch {
        fail("\(error)")
    }
}
try? q.sync()
for (s, i, k) in pending { out("D \(s) \(i) \(letter(k))") }
q.close()
out("DONE")
