import Glibc

/// A bounded, crash-safe, on-disk FIFO of outbound records.
///
/// ## File format (`<directory>/queue.dat`, all integers little-endian)
///
/// The file is exactly `4096 + ring` bytes, fully preallocated at open
/// (`fallocate`, falling back to writing zeros), where
/// `ring = maxBytes` rounded down to a multiple of 4096. Disk use therefore
/// never exceeds `maxBytes + 4096` and writes never hit ENOSPC later.
///
/// **Header block** (bytes 0..<4096): two checkpoint slots at offsets 0 and 2048,
/// written alternately (slot = generation % 2). Each slot is 52 bytes:
///
///     0  u32 magic "GQCP" (0x50435147)   4  u32 version (1)
///     8  u64 generation                  16 u64 ring size
///     24 u64 head offset (in ring)       32 u64 head seq (seq of the first live
///                                                record, or next seq if empty)
///     40 u64 seq high-water mark (every seq < this may have been handed out)
///     48 u32 crc32c of bytes 0..<48
///
/// On open the valid slot (magic, version, crc, sane fields) with the highest
/// generation wins. A checkpoint is written whenever the head moves (ack/drop),
/// at open, and when a new block of 1000 seqs is reserved (that one is also
/// `fdatasync`ed, so seqs never go backwards, even after power loss).
///
/// **Ring** (bytes 4096..<4096+ring): records written contiguously, 8-byte aligned.
/// Record = 32-byte header + payload + zero padding to a multiple of 8:
///
///     0  u32 magic "GDR1" (0x31524447)   4  u32 payload length
///     8  u64 seq                         16 i64 timestamp (ms)
///     24 u8  kind  25..<28 zero          28 u32 crc32c over bytes 0..<28 + payload
///
/// When a record does not fit before the end of the ring, a 32-byte wrap marker
/// (magic "GDRW", length 0, seq = seq of the record that follows at offset 0,
/// crc like a record) is written if at least 32 bytes remain, and the record goes
/// to offset 0. Fewer than 32 remaining bytes are an implicit wrap.
///
/// ## Recovery
///
/// Starting at the checkpoint head, records are read forward while they are
/// valid (magic, sane length, crc, known kind) and their seq is greater than the
/// previous one (initially greater than `headSeq - 1`). A valid record or wrap
/// marker with a seq not above the previous one is stale data from an earlier
/// lap and ends the log. If the bytes at the expected position are not a valid
/// record, the reader scans forward in 8-byte steps (around the ring, at most one
/// lap) for the next valid record with a higher seq: if one is found the log
/// continues there (a damaged record in the middle), if a stale valid record or
/// the end of the lap is reached first the log ends (torn tail).
///
/// `skippedOnRecovery` counts "damaged headers": positions with record magic, a
/// sane length, a seq above the previous accepted seq, but a crc mismatch.
/// A damaged region in the middle of the log counts at least 1 even if no such
/// header was recognisable. So one corrupted byte anywhere in the first
/// `32 + payloadLength` bytes of a middle record loses exactly that record and
/// counts exactly 1; a torn last record counts 1 if its magic, length and seq
/// survived (only payload/crc/timestamp bytes damaged), else 0. Records are never refused: open always succeeds on bad data.
/// If no checkpoint slot is valid, the whole ring is scanned and the log starts
/// at the valid record with the lowest seq (acked records may be re-delivered).
///
/// ## Acks, drops, durability
///
/// `ack(seq:)` marks a record; the head advances over the contiguous acked
/// prefix and the checkpoint is rewritten (record bytes are never rewritten).
/// Out-of-order acks beyond the head are kept in memory only: after a restart
/// those records are delivered again (at-least-once).
///
/// When an append does not fit, the oldest records are dropped until the new
/// record, a gap record and 1/16 of the ring of slack fit (the slack amortises
/// checkpoint syncs), then a `.gap` record with payload
/// `{"from_seq":A,"to_seq":B,"count":N,"reason":"queue_full"}` is appended just
/// before the new record. `count` counts dropped non-gap records; a dropped gap
/// record's range and count are merged into the new one.
///
/// In `.always`/`.batch` modes the tail never overwrites bytes that the last
/// *synced* checkpoint still considers live (a sync is forced first), so a
/// power loss cannot make the checkpoint point at newer data.
/// An `fdatasync` error is never retried: the queue enters a failed state and
/// every later mutating call throws that error (reopen to recover).
///
/// The file is locked with `flock(LOCK_EX)`; a second instance on the same
/// directory fails with EWOULDBLOCK. If the file was created with a different
/// ring size it is migrated at open (newest records that fit are kept, others
/// counted in `droppedRecords`) via a temp file + `rename`.
///
/// Single owner: not thread-safe; the agent's control loop owns it.
public final class DiskQueue {
    static let headerSize = 4096
    static let recordHeaderSize = 32
    static let recordMagic: UInt32 = 0x3152_4447  // "GDR1"
    static let wrapMagic: UInt32 = 0x5752_4447  // "GDRW"
    static let checkpointMagic: UInt32 = 0x5043_5147  // "GQCP"
    static let checkpointVersion: UInt32 = 1
    static let checkpointSize = 52
    static let slotOffsets = [0, 2048]
    static let seqReserveBlock: UInt64 = 1000
    static let gapReserve = 32 + 128

    struct Entry {
        var seq: UInt64
        var offset: Int
        var length: Int
        var kind: RecordKind
        var timestampMs: Int64
        var acked: Bool
    }

    struct Checkpoint: Equatable {
        var generation: UInt64
        var ringSize: UInt64
        var headOffset: UInt64
        var headSeq: UInt64
        var highWater: UInt64
    }

    public let directory: String
    public let path: String
    /// Size of the ring data area in bytes (`maxBytes` rounded down to 4096).
    public let ringSize: Int
    public let syncMode: QueueSyncMode

    var fh: FileHandle
    var closed = false
    var failure: QueueError?

    var entries: [Entry] = []
    var first = 0
    var head = 0
    var tail = 0
    var used = 0
    var durableSpan = 0
    var unacked = 0
    var nextSeq: UInt64 = 1
    var highWater: UInt64 = 1
    var generation: UInt64 = 0
    var dropped = 0
    var skipped = 0
    var dirty = false
    var dirtySinceMs: Int64?

    /// Largest payload `append` accepts.
    public var maxPayloadBytes: Int { Self.maxPayload(ring: ringSize) }

    static func maxPayload(ring: Int) -> Int { ring / 4 - recordHeaderSize }

    @inline(__always) static func recordSize(_ len: Int) -> Int {
        recordHeaderSize + ((len + 7) & ~7)
    }

    // MARK: - Open

    public init(directory: String, maxBytes: Int, sync: QueueSyncMode) throws(QueueError) {
        let dir = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.directory = dir
        self.path = dir + "/queue.dat"
        self.syncMode = sync
        self.ringSize = maxBytes & ~4095
        guard maxBytes >= 65536 else {
            throw QueueError(errno: EINVAL, operation: "open", path: path, detail: "maxBytes \(maxBytes) < 65536")
        }
        if case .batch(let iv) = sync, iv < 0 {
            throw QueueError(errno: EINVAL, operation: "open", path: path, detail: "negative batch interval")
        }
        try makeDirectories(dir)
        fh = try Self.openLocked(path, truncate: false)
        do throws(QueueError) {
            try openExisting()
        } catch {
            Glibc.close(fh.fd)
            closed = true
            throw error
        }
    }

    deinit {
        if !closed { Glibc.close(fh.fd) }
    }

    static func openLocked(_ path: String, truncate: Bool) throws(QueueError) -> FileHandle {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0o644)
        if fd < 0 { throw QueueError(errno: errno, operation: "open", path: path) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            Glibc.close(fd)
            throw QueueError(errno: e, operation: "flock", path: path, detail: "queue is in use by another instance")
        }
        return FileHandle(fd: fd, path: path)
    }

    private func openExisting() throws(QueueError) {
        let fileSize = try fh.size()
        let ck = try Self.readCheckpoint(fh, fileSize: fileSize)
        if let ck, Int(ck.ringSize) != ringSize {
            try migrate(from: ck, fileSize: fileSize)
            return
        }
        try fh.preallocate(total: Self.headerSize + ringSize)
        var start: (offset: Int, seq: UInt64) = (0, 1)
        if let ck {
            start = (Int(ck.headOffset), ck.headSeq)
            generation = ck.generation
            highWater = ck.highWater
        } else if fileSize > Self.headerSize {
            var reader = RingReader(fh: fh, ring: ringSize)
            if let oldest = try reader.findOldest() { start = oldest }
        }
        var reader = RingReader(fh: fh, ring: ringSize)
        let rec = try reader.recover(headOffset: start.offset, headSeq: start.seq)
        install(rec)
        nextSeq = max(highWater, rec.maxSeq &+ 1, 1)
        highWater = nextSeq
        try writeCheckpoint()
        try syncData()
    }

    private func install(_ rec: Recovered) {
        entries = rec.entries
        first = 0
        unacked = entries.count
        tail = rec.tail
        skipped = rec.skipped
        if entries.isEmpty {
            head = tail
            used = 0
        } else {
            head = rec.head
            used = rec.used
        }
        durableSpan = used
    }

    /// Rebuild the file for a new ring size, keeping the newest records that fit.
    private func migrate(from ck: Checkpoint, fileSize: Int) throws(QueueError) {
        let oldRing = Int(ck.ringSize)
        var old: [QueuedRecord] = []
        var maxSeq: UInt64 = 0
        // A short file reads as zeros past its end, so a torn tail is handled as usual.
        var reader = RingReader(fh: fh, ring: oldRing)
        let rec = try reader.recover(headOffset: Int(ck.headOffset), headSeq: ck.headSeq)
        maxSeq = rec.maxSeq
        skipped = rec.skipped
        for e in rec.entries {
            var buf = [UInt8](repeating: 0, count: e.length)
            _ = try fh.preadFully(&buf, count: e.length, offset: Self.headerSize + e.offset + Self.recordHeaderSize)
            old.append(QueuedRecord(seq: e.seq, kind: e.kind, timestampMs: e.timestampMs, payload: buf))
        }
        // Keep the newest records that fit in 3/4 of the new ring.
        var keepFrom = old.count
        var total = 0
        while keepFrom > 0 {
            let r = old[keepFrom - 1]
            let s = Self.recordSize(r.payload.count)
            if r.payload.count > Self.maxPayload(ring: ringSize) || total + s > ringSize - ringSize / 4 { break }
            total += s
            keepFrom -= 1
        }
        dropped = old[0..<keepFrom].filter { $0.kind != .gap }.count

        let tmpPath = path + ".resize"
        let newFH = try Self.openLocked(tmpPath, truncate: true)
        let oldFH = fh
        fh = newFH
        do throws(QueueError) {
            try fh.preallocate(total: Self.headerSize + ringSize)
            generation = ck.generation
            nextSeq = max(ck.highWater, maxSeq &+ 1, 1)
            highWater = nextSeq
            head = 0; tail = 0; used = 0; durableSpan = 0
            entries = []; first = 0; unacked = 0
            for r in old[keepFrom...] {
                try writeRecord(seq: r.seq, kind: r.kind, payload: r.payload, timestampMs: r.timestampMs)
            }
            try writeCheckpoint()
            try fh.datasync()
            if rename(tmpPath, path) != 0 {
                throw QueueError(errno: errno, operation: "rename", path: tmpPath)
            }
        } catch {
            Glibc.close(newFH.fd)
            unlink(tmpPath)
            fh = oldFH
            throw error
        }
        syncDirectory(directory)
        Glibc.close(oldFH.fd)
        durableSpan = used
        dirty = false
    }

    static func readCheckpoint(_ fh: FileHandle, fileSize: Int) throws(QueueError) -> Checkpoint? {
        guard fileSize >= checkpointSize else { return nil }
        var buf = [UInt8](repeating: 0, count: headerSize)
        _ = try fh.preadFully(&buf, count: min(fileSize, headerSize), offset: 0)
        var best: Checkpoint?
        for o in slotOffsets {
            guard let c = decodeCheckpoint(buf, at: o) else { continue }
            if best == nil || c.generation > best!.generation { best = c }
        }
        return best
    }

    static func decodeCheckpoint(_ b: [UInt8], at o: Int) -> Checkpoint? {
        guard getU32(b, o) == checkpointMagic, getU32(b, o + 4) == checkpointVersion else { return nil }
        guard CRC32C.checksum(b, range: o..<(o + 48)) == getU32(b, o + 48) else { return nil }
        let c = Checkpoint(generation: getU64(b, o + 8), ringSize: getU64(b, o + 16),
                           headOffset: getU64(b, o + 24), headSeq: getU64(b, o + 32),
                           highWater: getU64(b, o + 40))
        guard c.ringSize >= 65536, c.ringSize % 4096 == 0, c.ringSize <= UInt64(Int.max / 2),
              c.headOffset < c.ringSize, c.headOffset % 8 == 0 else { return nil }
        return c
    }

    static func encodeCheckpoint(_ c: Checkpoint) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: checkpointSize)
        putU32(&b, 0, checkpointMagic)
        putU32(&b, 4, checkpointVersion)
        putU64(&b, 8, c.generation)
        putU64(&b, 16, c.ringSize)
        putU64(&b, 24, c.headOffset)
        putU64(&b, 32, c.headSeq)
        putU64(&b, 40, c.highWater)
        putU32(&b, 48, CRC32C.checksum(b, range: 0..<48))
        return b
    }

    static func encodeRecord(magic: UInt32, seq: UInt64, kind: UInt8, timestampMs: Int64, payload: [UInt8]) -> [UInt8] {
        let len = payload.count
        var b = [UInt8](repeating: 0, count: recordSize(len))
        putU32(&b, 0, magic)
        putU32(&b, 4, UInt32(len))
        putU64(&b, 8, seq)
        putU64(&b, 16, UInt64(bitPattern: timestampMs))
        b[24] = kind
        if len > 0 { b.replaceSubrange(32..<(32 + len), with: payload) }
        let crc = b.withUnsafeBytes { p in
            var s = CRC32C.update(0xFFFF_FFFF, UnsafeRawBufferPointer(rebasing: p[0..<28]))
            s = CRC32C.update(s, UnsafeRawBufferPointer(rebasing: p[32..<(32 + len)]))
            return ~s
        }
        putU32(&b, 28, crc)
        return b
    }

    // MARK: - Public API

    /// Append a record; returns its seq. May drop the oldest records (and append
    /// a gap record first) when the queue is full.
    @discardableResult
    public func append(kind: RecordKind, payload: [UInt8], timestampMs: Int64) throws(QueueError) -> UInt64 {
        try checkUsable()
        guard payload.count <= maxPayloadBytes else {
            throw QueueError(errno: EMSGSIZE, operation: "append", path: path,
                             detail: "payload of \(payload.count) bytes exceeds \(maxPayloadBytes)")
        }
        let size = Self.recordSize(payload.count)
        if ringSize - used < spaceNeeded([size]) {
            var gap = GapRange()
            let target = min(ringSize, spaceNeeded([Self.gapReserve, size]) + ringSize / 16)
            while first < entries.count && ringSize - used < target {
                try dropOldest(into: &gap)
            }
            try writeCheckpoint()
            if let json = gap.json() {
                try writeRecord(seq: nil, kind: .gap, payload: json, timestampMs: timestampMs)
            }
        }
        let seq = try writeRecord(seq: nil, kind: kind, payload: payload, timestampMs: timestampMs)
        try syncAfterWrite(nowMs: timestampMs)
        return seq
    }

    /// Unacknowledged records with seq > `seq`, oldest first, at most `limit`.
    public func records(after seq: UInt64, limit: Int) -> [QueuedRecord] {
        guard !closed, limit > 0 else { return [] }
        var lo = first, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].seq <= seq { lo = mid + 1 } else { hi = mid }
        }
        var out: [QueuedRecord] = []
        var i = lo
        while i < entries.count && out.count < limit {
            let e = entries[i]
            i += 1
            if e.acked { continue }
            var buf = [UInt8](repeating: 0, count: e.length)
            do {
                let n = try fh.preadFully(&buf, count: e.length, offset: Self.headerSize + e.offset + Self.recordHeaderSize)
                if n != e.length { break }
            } catch {
                break
            }
            out.append(QueuedRecord(seq: e.seq, kind: e.kind, timestampMs: e.timestampMs, payload: buf))
        }
        return out
    }

    /// Mark `seq` as delivered. Unknown or already-acked seqs are ignored.
    public func ack(seq: UInt64) throws(QueueError) {
        try checkUsable()
        guard let i = index(of: seq), !entries[i].acked else { return }
        entries[i].acked = true
        unacked -= 1
        if i == first {
            while first < entries.count && entries[first].acked { first += 1 }
            updateHead()
            try writeCheckpoint()
        }
    }

    /// In `.batch` mode, sync if unsynced data is at least the interval old.
    public func flushIfDue(nowMs: Int64) throws(QueueError) {
        try checkUsable()
        if case .batch(let iv) = syncMode, let since = dirtySinceMs, nowMs - since >= iv || nowMs < since {
            try syncData()
        }
    }

    /// `fdatasync` now if anything was written since the last sync.
    public func sync() throws(QueueError) {
        try checkUsable()
        if dirty { try syncData() }
    }

    public var stats: QueueStats {
        QueueStats(records: unacked, bytes: used,
                   oldestTimestampMs: first < entries.count ? entries[first].timestampMs : nil,
                   droppedRecords: dropped, skippedOnRecovery: skipped, nextSeq: nextSeq)
    }

    /// Sync (unless `.none`) and close. Further calls throw EBADF.
    public func close() {
        guard !closed else { return }
        if syncMode != .none && dirty && failure == nil { try? syncData() }
        Glibc.close(fh.fd)
        closed = true
    }

    // MARK: - Internals

    func checkUsable() throws(QueueError) {
        if closed { throw QueueError(errno: EBADF, operation: "use", path: path, detail: "queue is closed") }
        if let failure { throw failure }
    }

    func index(of seq: UInt64) -> Int? {
        var lo = first, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].seq < seq { lo = mid + 1 } else { hi = mid }
        }
        return lo < entries.count && entries[lo].seq == seq ? lo : nil
    }

    /// Bytes needed to write records of `sizes` one after another from the tail (incl. wrap waste).
    func spaceNeeded(_ sizes: [Int]) -> Int {
        var t = tail, total = 0
        for s in sizes {
            if t + s > ringSize { total += ringSize - t; t = 0 }
            total += s
            t += s
            if t == ringSize { t = 0 }
        }
        return total
    }

    func updateHead() {
        if first < entries.count {
            head = entries[first].offset
            used = tail > head ? tail - head : ringSize - head + tail
        } else {
            head = tail
            used = 0
        }
        if first > 1024 && first * 2 > entries.count {
            entries.removeFirst(first)
            first = 0
        }
    }

    func dropOldest(into gap: inout GapRange) throws(QueueError) {
        let e = entries[first]
        first += 1
        if !e.acked { unacked -= 1 }
        if e.kind == .gap {
            var buf = [UInt8](repeating: 0, count: e.length)
            if (try? fh.preadFully(&buf, count: e.length, offset: Self.headerSize + e.offset + Self.recordHeaderSize)) == e.length,
               let g = GapRange.parse(buf) {
                gap.merge(g)
            }
        } else if !e.acked {
            gap.add(e.seq)
            dropped += 1
        }
        while first < entries.count && entries[first].acked { first += 1 }
        updateHead()
    }

    /// Write one record at the tail. `seq == nil` assigns the next seq.
    /// The caller guarantees there is room.
    @discardableResult
    func writeRecord(seq explicitSeq: UInt64?, kind: RecordKind, payload: [UInt8], timestampMs: Int64) throws(QueueError) -> UInt64 {
        let seq: UInt64
        if let explicitSeq {
            seq = explicitSeq
        } else {
            if nextSeq >= highWater {
                highWater = nextSeq + Self.seqReserveBlock
                try writeCheckpoint()
                try syncData()
            }
            seq = nextSeq
        }
        let size = Self.recordSize(payload.count)
        var pos = tail
        var waste = 0
        if pos + size > ringSize {
            waste = ringSize - pos
            pos = 0
        }
        precondition(used + waste + size <= ringSize, "DiskQueue: no room for record")
        if syncMode != .none && durableSpan + waste + size > ringSize {
            try syncData()
        }
        if waste >= Self.recordHeaderSize {
            let marker = Self.encodeRecord(magic: Self.wrapMagic, seq: seq, kind: 0, timestampMs: 0, payload: [])
            try fh.pwriteFully(marker, offset: Self.headerSize + tail)
        }
        let bytes = Self.encodeRecord(magic: Self.recordMagic, seq: seq, kind: kind.rawValue,
                                      timestampMs: timestampMs, payload: payload)
        try fh.pwriteFully(bytes, offset: Self.headerSize + pos)
        if explicitSeq == nil { nextSeq = seq + 1 }
        entries.append(Entry(seq: seq, offset: pos, length: payload.count, kind: kind,
                             timestampMs: timestampMs, acked: false))
        unacked += 1
        tail = pos + size
        if tail == ringSize { tail = 0 }
        used += waste + size
        durableSpan += waste + size
        if !dirty || dirtySinceMs == nil { dirtySinceMs = timestampMs }
        dirty = true
        return seq
    }

    func writeCheckpoint() throws(QueueError) {
        generation += 1
        let c = Checkpoint(generation: generation, ringSize: UInt64(ringSize), headOffset: UInt64(head),
                           headSeq: first < entries.count ? entries[first].seq : nextSeq, highWater: highWater)
        try fh.pwriteFully(Self.encodeCheckpoint(c), offset: Self.slotOffsets[Int(generation % 2)])
        dirty = true
    }

    func syncData() throws(QueueError) {
        do {
            try fh.datasync()
        } catch {
            failure = error
            throw error
        }
        dirty = false
        dirtySinceMs = nil
        durableSpan = used
    }

    func syncAfterWrite(nowMs: Int64) throws(QueueError) {
        switch syncMode {
        case .always:
            try syncData()
        case .batch(let iv):
            if let since = dirtySinceMs, nowMs - since >= iv || nowMs < since { try syncData() }
        case .none:
            break
        }
    }
}

/// Range of dropped seqs described by a gap record.
struct GapRange: Equatable {
    var from: UInt64?
    var to: UInt64 = 0
    var count: UInt64 = 0

    mutating func add(_ seq: UInt64) {
        from = min(from ?? seq, seq)
        to = max(to, seq)
        count += 1
    }

    mutating func merge(_ g: GapRange) {
        guard let gf = g.from else { return }
        from = min(from ?? gf, gf)
        to = max(to, g.to)
        count += g.count
    }

    func json() -> [UInt8]? {
        guard let from else { return nil }
        return Array("{\"from_seq\":\(from),\"to_seq\":\(to),\"count\":\(count),\"reason\":\"queue_full\"}".utf8)
    }

    /// Parse the numbers out of a gap payload written by `json()`.
    static func parse(_ payload: [UInt8]) -> GapRange? {
        func number(after key: String) -> UInt64? {
            let k = Array(key.utf8)
            guard payload.count >= k.count else { return nil }
            var i = 0
            while i + k.count <= payload.count {
                if payload[i..<(i + k.count)].elementsEqual(k) {
                    var j = i + k.count
                    var v: UInt64 = 0
                    var any = false
                    while j < payload.count, payload[j] >= 48, payload[j] <= 57 {
                        let (m, o1) = v.multipliedReportingOverflow(by: 10)
                        let (a, o2) = m.addingReportingOverflow(UInt64(payload[j] - 48))
                        if o1 || o2 { return nil }
                        v = a
                        any = true
                        j += 1
                    }
                    return any ? v : nil
                }
                i += 1
            }
            return nil
        }
        guard let f = number(after: "\"from_seq\":"), let t = number(after: "\"to_seq\":"),
              let c = number(after: "\"count\":"), f <= t else { return nil }
        return GapRange(from: f, to: t, count: c)
    }
}
