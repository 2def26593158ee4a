import Glibc

/// A bounded, crash-safe, on-disk FIFO of outbound records with a reserved share for
/// responses, ledger and gap records.
///
/// ## File format (`<directory>/queue.dat`, all integers little-endian)
///
/// The file is exactly `4096 + ring` bytes, fully preallocated at open
/// (`fallocate`, falling back to writing zeros), where
/// `ring = maxBytes` rounded down to a multiple of 4096. Disk use therefore
/// never exceeds `maxBytes + 4096` and writes never hit ENOSPC later.
///
/// The ring area is split into two rings (format version 2):
///
/// - the **priority ring** (file bytes `4096 ..< 4096 + P`) holds `.response` and `.ledger`
///   records and the gap records that report lost ones; `P = max(16 KiB, ring / 8)`
///   rounded down to 4096 (so 1/8 of `max_bytes` from 128 KiB up);
/// - the **telemetry ring** (the remaining `T = ring - P` bytes) holds `.telemetry` and the
///   gap records that report lost telemetry.
///
/// Telemetry can therefore never push out a response or a ledger record: when the
/// telemetry ring is full the oldest telemetry is dropped; the priority ring only drops
/// (its own oldest records) when it is itself full. A gap record lives in the ring of the
/// class it reports on, so reporting a telemetry loss never costs priority space; when a
/// gap record is itself dropped its range and count are merged into the next gap record,
/// so what was lost is never forgotten. One seq counter is shared;
/// `records(after:limit:)` merges both rings by seq.
///
/// **Header block** (bytes 0..<4096): two checkpoint slots at offsets 0 and 2048,
/// written alternately (slot = generation % 2). A version-2 slot is 76 bytes:
///
///     0  u32 magic "GQCP" (0x50435147)   4  u32 version (2)
///     8  u64 generation                  16 u64 ring size (P + T)
///     24 u64 priority ring size P        32 u64 priority head offset
///     40 u64 priority head seq           48 u64 telemetry head offset
///     56 u64 telemetry head seq          64 u64 seq high-water mark
///     72 u32 crc32c of bytes 0..<72
///
/// A head seq is the seq of the first live record of that ring, or the next seq if the ring
/// is empty. Version 1 (one ring, 52-byte slot: generation, ring size, head offset, head
/// seq, high-water, crc at 48) is still read: such a file is migrated at open.
///
/// On open the valid slot (magic, version, crc, sane fields) with the highest
/// generation wins. A checkpoint is written whenever a head moves (ack/drop),
/// at open, and when a new block of 1000 seqs is reserved (that one is also
/// `fdatasync`ed, so seqs never go backwards, even after power loss).
///
/// **Rings**: records written contiguously, 8-byte aligned.
/// Record = 32-byte header + payload + zero padding to a multiple of 8:
///
///     0  u32 magic "GDR1" (0x31524447)   4  u32 payload length
///     8  u64 seq                         16 i64 timestamp (ms)
///     24 u8  kind  25..<28 zero          28 u32 crc32c over bytes 0..<28 + payload
///
/// When a record does not fit before the end of its ring, a 32-byte wrap marker
/// (magic "GDRW", length 0, seq = seq of the record that follows at offset 0,
/// crc like a record) is written if at least 32 bytes remain, and the record goes
/// to offset 0. Fewer than 32 remaining bytes are an implicit wrap.
///
/// ## Recovery
///
/// Each ring is recovered on its own, starting at its checkpoint head: records are read
/// forward while they are valid (magic, sane length, crc, known kind) and their seq is
/// greater than the previous one (initially greater than `headSeq - 1`). A valid record or
/// wrap marker with a seq not above the previous one is stale data from an earlier
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
/// survived (only payload/crc/timestamp bytes damaged), else 0. Records are never
/// refused: open always succeeds on bad data.
/// If no checkpoint slot is valid, each whole ring is scanned and its log starts
/// at the valid record with the lowest seq (acked records may be re-delivered).
///
/// ## Acks, drops, durability
///
/// `ack(seq:)` marks a record; the head of its ring advances over the contiguous acked
/// prefix and the checkpoint is rewritten (record bytes are never rewritten).
/// Out-of-order acks beyond a head (live records acknowledged while an older backlog is still
/// replayed) are kept as ranges of consecutive seqs and written with every checkpoint, in an
/// extension after the version-2 slot (offset 80: u32 magic "GQAK", u32 count <= 64, u64
/// generation of the slot, count x (u64 first seq, u64 last seq), u32 crc32c over the
/// extension); recovery marks those records acked, so a restart does not send them again.
/// Beyond 64 ranges, or after a kill between an ack and its checkpoint write, a record may
/// be delivered again (at-least-once). An older gridlet ignores the extension.
///
/// When an append does not fit its ring, the oldest records of that ring are dropped until
/// the record, a gap record, the reserve and 1/16 of the ring of slack fit, then a `.gap`
/// record with payload
/// `{"from_seq":A,"to_seq":B,"count":N,"reason":"queue_full","class":"telemetry"|"priority"}`
/// is appended to that ring just before the new record. `count` counts dropped non-gap
/// records of that class (records of the other class inside A...B are not missing); a
/// dropped gap record's range and count are merged into the new one.
///
/// Crash order: every ring keeps room for one gap record free (an append needs its own
/// size plus that reserve). The gap record is written into that free space *before* the
/// checkpoint that moves the head past the dropped records, so a kill at any moment leaves
/// either the old records, or the new head together with the gap record that describes
/// what it dropped.
///
/// In `.always`/`.batch` modes the tail never overwrites bytes that the last
/// *synced* checkpoint still considers live (a sync is forced first), so a
/// power loss cannot make the checkpoint point at newer data.
/// An `fdatasync` error is never retried: the queue enters a failed state and
/// every later mutating call throws that error (reopen to recover).
///
/// The file is locked with `flock(LOCK_EX)`; a second instance on the same
/// directory fails with EWOULDBLOCK. A file of another ring size or of format version 1
/// is migrated at open (for each class the newest records that fit in 3/4 of its new
/// ring are kept, the others counted in `droppedRecords` and reported by gap records)
/// via a temp file + `rename`. `DiskQueue(readOnlyDirectory:)` opens an existing file
/// without writing anything (shared lock), for `gridlet queue stats|peek`.
///
/// Single owner: not thread-safe; the agent's control loop owns it.
public final class DiskQueue {
    static let headerSize = 4096
    static let recordHeaderSize = 32
    static let recordMagic: UInt32 = 0x3152_4447  // "GDR1"
    static let wrapMagic: UInt32 = 0x5752_4447  // "GDRW"
    static let checkpointMagic: UInt32 = 0x5043_5147  // "GQCP"
    static let checkpointVersion: UInt32 = 2
    static let slotOffsets = [0, 2048]
    static let seqReserveBlock: UInt64 = 1000
    static let gapReserve = 32 + 128
    static let minPriorityRing = 16384
    /// Ring indices.
    static let P = 0, T = 1

    /// Size of the priority ring for a total ring area of `total` bytes.
    public static func priorityRingSize(total: Int) -> Int { max(minPriorityRing, (total / 8) & ~4095) }

    static func ringIndex(_ kind: RecordKind) -> Int { kind == .telemetry ? T : P }

    /// Ring of a stored record: gap records go with the class they report on.
    static func ringIndex(_ r: QueuedRecord) -> Int {
        r.kind == .gap ? (GapRange.parse(r.payload)?.cls == "telemetry" ? T : P) : ringIndex(r.kind)
    }

    struct Entry {
        var seq: UInt64
        var offset: Int
        var length: Int
        var kind: RecordKind
        var timestampMs: Int64
        var acked: Bool
    }

    struct Head: Equatable {
        var offset: UInt64
        var seq: UInt64
    }

    struct Checkpoint: Equatable {
        var version: UInt32
        var generation: UInt64
        var ringSize: UInt64
        /// 0 in version 1 (one ring).
        var prioritySize: UInt64
        /// Version 1: one head; version 2: priority, telemetry.
        var heads: [Head]
        var highWater: UInt64
        /// Seqs acked beyond a head (version-2 extension; empty when absent).
        var acked: [ClosedRange<UInt64>] = []

        /// (file offset, size) of each ring, in the order of `heads`.
        var layout: [(base: Int, size: Int)] {
            version == 1 ? [(DiskQueue.headerSize, Int(ringSize))]
                : [(DiskQueue.headerSize, Int(prioritySize)),
                   (DiskQueue.headerSize + Int(prioritySize), Int(ringSize - prioritySize))]
        }
    }

    /// One ring's in-memory state.
    struct Ring {
        let base: Int
        let size: Int
        var entries: [Entry] = []
        var first = 0
        var head = 0
        var tail = 0
        var used = 0
        /// Bytes from the head of the last *synced* checkpoint to the tail: the tail must not
        /// overwrite them before a sync (see the crash-order note).
        var durableSpan = 0
        /// Bytes from the head of the last *written* checkpoint to the tail: what `durableSpan`
        /// becomes at the next sync. (The in-memory head may already be further on: a drop
        /// moves it before its checkpoint is written.)
        var checkpointSpan = 0
        var unacked = 0

        init(base: Int, size: Int) {
            self.base = base
            self.size = size
        }

        var free: Int { size - used }

        func headSeq(next: UInt64) -> UInt64 { first < entries.count ? entries[first].seq : next }

        var oldestTimestampMs: Int64? { first < entries.count ? entries[first].timestampMs : nil }

        /// Bytes needed to write records of `sizes` one after another from the tail (incl. wrap waste).
        func spaceNeeded(_ sizes: [Int]) -> Int {
            var t = tail, total = 0
            for s in sizes {
                if t + s > size { total += size - t; t = 0 }
                total += s
                t += s
                if t == size { t = 0 }
            }
            return total
        }

        /// First index at or after `first` whose seq is > `seq`.
        func lowerIndex(after seq: UInt64) -> Int {
            var lo = first, hi = entries.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if entries[mid].seq <= seq { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        func index(of seq: UInt64) -> Int? {
            var lo = first, hi = entries.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if entries[mid].seq < seq { lo = mid + 1 } else { hi = mid }
            }
            return lo < entries.count && entries[lo].seq == seq ? lo : nil
        }

        mutating func updateHead() {
            if first < entries.count {
                head = entries[first].offset
                used = tail > head ? tail - head : size - head + tail
            } else {
                head = tail
                used = 0
            }
            if first > 1024 && first * 2 > entries.count {
                entries.removeFirst(first)
                first = 0
            }
        }

        mutating func install(_ rec: Recovered) {
            entries = rec.entries
            first = 0
            unacked = entries.count
            tail = rec.tail
            if entries.isEmpty {
                head = tail
                used = 0
            } else {
                head = rec.head
                used = rec.used
            }
            durableSpan = used
            checkpointSpan = used
        }
    }

    public let directory: String
    public let path: String
    /// Size of the ring data area in bytes (`maxBytes` rounded down to 4096), both rings.
    public let ringSize: Int
    public let syncMode: QueueSyncMode
    /// Opened with `init(readOnlyDirectory:)`: every mutating call throws EROFS.
    public let readOnly: Bool

    var fh: FileHandle
    var closed = false
    var failure: QueueError?

    /// `[priority, telemetry]` (a read-only view of a version-1 file has one ring).
    var rings: [Ring]
    var nextSeq: UInt64 = 1
    var highWater: UInt64 = 1
    var generation: UInt64 = 0
    var droppedTelemetry = 0
    var droppedPriority = 0
    var skipped = 0
    var dirty = false
    var dirtySinceMs: Int64?
    /// Seqs acked while an older record of some ring still waits (sorted, disjoint; a range
    /// only joins consecutive acked seqs). Written with every checkpoint so that a restart
    /// does not send them again.
    var ackedBeyond: [ClosedRange<UInt64>] = []
    static let maxAckedRanges = 64
    static let ackedMagic: UInt32 = 0x4B41_5147  // "GQAK"

    /// Largest telemetry payload `append` accepts.
    public var maxPayloadBytes: Int { Self.maxPayload(ring: rings[rings.count - 1].size) }

    /// Largest payload `append` accepts for `kind`.
    public func maxPayloadBytes(for kind: RecordKind) -> Int {
        Self.maxPayload(ring: rings[rings.count == 1 ? 0 : Self.ringIndex(kind)].size)
    }

    /// Size of the reserved priority ring (responses, ledger, gap records).
    public var priorityRingSize: Int { rings.count == 2 ? rings[Self.P].size : 0 }

    static func maxPayload(ring: Int) -> Int { ring / 4 - recordHeaderSize }

    @inline(__always) static func recordSize(_ len: Int) -> Int {
        recordHeaderSize + ((len + 7) & ~7)
    }

    static func layout(ringSize: Int) -> [Ring] {
        let p = priorityRingSize(total: ringSize)
        return [Ring(base: headerSize, size: p), Ring(base: headerSize + p, size: ringSize - p)]
    }

    // MARK: - Open

    public init(directory: String, maxBytes: Int, sync: QueueSyncMode) throws(QueueError) {
        let dir = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.directory = dir
        self.path = dir + "/queue.dat"
        self.syncMode = sync
        self.readOnly = false
        self.ringSize = maxBytes & ~4095
        guard maxBytes >= 65536 else {
            throw QueueError(errno: EINVAL, operation: "open", path: path, detail: "maxBytes \(maxBytes) < 65536")
        }
        if case .batch(let iv) = sync, iv < 0 {
            throw QueueError(errno: EINVAL, operation: "open", path: path, detail: "negative batch interval")
        }
        rings = Self.layout(ringSize: ringSize)
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

    /// Open an existing queue without modifying it (shared `flock`, fails with
    /// EWOULDBLOCK while a writer holds it, ENOENT if there is no queue file). The ring
    /// layout comes from the file's checkpoint (or its size). Mutating calls throw EROFS.
    public init(readOnlyDirectory directory: String) throws(QueueError) {
        let dir = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.directory = dir
        self.path = dir + "/queue.dat"
        self.syncMode = .none
        self.readOnly = true
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw QueueError(errno: errno, operation: "open", path: path) }
        if flock(fd, LOCK_SH | LOCK_NB) != 0 {
            let e = errno
            Glibc.close(fd)
            throw QueueError(errno: e, operation: "flock", path: path, detail: "queue is in use by another instance")
        }
        let handle = FileHandle(fd: fd, path: path)
        var ck: Checkpoint?
        var size = 0
        do throws(QueueError) {
            size = try handle.size()
            ck = try Self.readCheckpoint(handle, fileSize: size)
        } catch {
            Glibc.close(fd)
            throw error
        }
        fh = handle
        if let ck {
            ringSize = Int(ck.ringSize)
            rings = ck.layout.map { Ring(base: $0.base, size: $0.size) }
        } else {
            ringSize = max(65536, size - Self.headerSize) & ~4095
            rings = Self.layout(ringSize: ringSize)
        }
        do throws(QueueError) {
            var maxSeq: UInt64 = 0
            for i in rings.indices {
                var start: (offset: Int, seq: UInt64) = (0, 1)
                var reader = RingReader(fh: fh, base: rings[i].base, ring: rings[i].size)
                if let ck {
                    start = (Int(ck.heads[i].offset), ck.heads[i].seq)
                } else if let oldest = try reader.findOldest() {
                    start = oldest
                }
                let rec = try reader.recover(headOffset: start.offset, headSeq: start.seq)
                rings[i].install(rec)
                skipped += rec.skipped
                maxSeq = max(maxSeq, rec.maxSeq)
            }
            generation = ck?.generation ?? 0
            nextSeq = max(ck?.highWater ?? 1, maxSeq &+ 1, 1)
            highWater = nextSeq
            if let ck { applyAcked(ck.acked) }
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit {
        if !closed { Glibc.close(fh.fd) }
    }

    static func openLocked(_ path: String, truncate: Bool) throws(QueueError) -> FileHandle {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0o644)
        if fd < 0 { throw QueueError(errno: errno, operation: "open", path: path) }
        // Wait up to 1 s for the lock: a previous instance may be exiting (a restart), or a child
        // process forked elsewhere in this process may briefly share the file description before
        // its exec closes it (O_CLOEXEC); seen as a rare EWOULDBLOCK in parallel tests.
        var attempts = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            attempts += 1
            if e != EWOULDBLOCK || attempts >= 20 {
                Glibc.close(fd)
                throw QueueError(errno: e, operation: "flock", path: path, detail: "queue is in use by another instance")
            }
            usleep(50_000)
        }
        return FileHandle(fd: fd, path: path)
    }

    private func openExisting() throws(QueueError) {
        let fileSize = try fh.size()
        let ck = try Self.readCheckpoint(fh, fileSize: fileSize)
        if let ck, ck.version != Self.checkpointVersion || Int(ck.ringSize) != ringSize
            || Int(ck.prioritySize) != rings[Self.P].size {
            try migrate(from: ck)
            return
        }
        try fh.preallocate(total: Self.headerSize + ringSize)
        if let ck {
            generation = ck.generation
            highWater = ck.highWater
        }
        var maxSeq: UInt64 = 0
        for i in rings.indices {
            var reader = RingReader(fh: fh, base: rings[i].base, ring: rings[i].size)
            var start: (offset: Int, seq: UInt64) = (0, 1)
            if let ck {
                start = (Int(ck.heads[i].offset), ck.heads[i].seq)
            } else if fileSize > Self.headerSize, let oldest = try reader.findOldest() {
                start = oldest
            }
            let rec = try reader.recover(headOffset: start.offset, headSeq: start.seq)
            rings[i].install(rec)
            skipped += rec.skipped
            maxSeq = max(maxSeq, rec.maxSeq)
        }
        nextSeq = max(highWater, maxSeq &+ 1, 1)
        highWater = nextSeq
        if let ck { applyAcked(ck.acked) }
        try writeCheckpoint()
        try syncData()
    }

    /// Rebuild the file for a new ring size or from format version 1, keeping for each
    /// class the newest records that fit in 3/4 of its new ring.
    private func migrate(from ck: Checkpoint) throws(QueueError) {
        var old: [QueuedRecord] = []
        var maxSeq: UInt64 = 0
        // A short file reads as zeros past its end, so a torn tail is handled as usual.
        for (i, l) in ck.layout.enumerated() {
            var reader = RingReader(fh: fh, base: l.base, ring: l.size)
            let rec = try reader.recover(headOffset: Int(ck.heads[i].offset), headSeq: ck.heads[i].seq)
            maxSeq = max(maxSeq, rec.maxSeq)
            skipped += rec.skipped
            for e in rec.entries where !ck.acked.contains(where: { $0.contains(e.seq) }) {
                var buf = [UInt8](repeating: 0, count: e.length)
                _ = try fh.preadFully(&buf, count: e.length, offset: l.base + e.offset + Self.recordHeaderSize)
                old.append(QueuedRecord(seq: e.seq, kind: e.kind, timestampMs: e.timestampMs, payload: buf))
            }
        }
        old.sort { $0.seq < $1.seq }
        // Newest first per class: keep what fits in 3/4 of its ring.
        var total = [0, 0]
        var keep = [Bool](repeating: false, count: old.count)
        var gaps = [GapRange(cls: "priority"), GapRange(cls: "telemetry")]
        let ringOf = old.map { Self.ringIndex($0) }
        for j in old.indices.reversed() {
            let r = old[j]
            let x = ringOf[j]
            let s = Self.recordSize(r.payload.count)
            let cap = rings[x].size - rings[x].size / 4
            if r.payload.count <= Self.maxPayload(ring: rings[x].size) && total[x] + s <= cap {
                total[x] += s
                keep[j] = true
            }
        }
        for (j, r) in old.enumerated() where !keep[j] {
            if r.kind == .gap {
                if let g = GapRange.parse(r.payload) { gaps[ringOf[j]].merge(g) }
            } else {
                gaps[ringOf[j]].add(r.seq)
                if r.kind == .telemetry { droppedTelemetry += 1 } else { droppedPriority += 1 }
            }
        }

        let tmpPath = path + ".resize"
        let newFH = try Self.openLocked(tmpPath, truncate: true)
        let oldFH = fh
        fh = newFH
        do throws(QueueError) {
            try fh.preallocate(total: Self.headerSize + ringSize)
            generation = ck.generation
            nextSeq = max(ck.highWater, maxSeq &+ 1, 1)
            highWater = nextSeq
            rings = Self.layout(ringSize: ringSize)
            for (j, r) in old.enumerated() where keep[j] {
                try writeRecord(ring: ringOf[j], seq: r.seq, kind: r.kind, payload: r.payload,
                                timestampMs: r.timestampMs)
            }
            for x in [Self.T, Self.P] {
                if let p = gaps[x].json() {
                    try writeRecord(ring: x, seq: nil, kind: .gap, payload: p, timestampMs: old.last?.timestampMs ?? 0)
                }
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
        for i in rings.indices { rings[i].durableSpan = rings[i].used }
        dirty = false
        dirtySinceMs = nil
    }

    static func readCheckpoint(_ fh: FileHandle, fileSize: Int) throws(QueueError) -> Checkpoint? {
        guard fileSize >= 52 else { return nil }
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
        guard getU32(b, o) == checkpointMagic else { return nil }
        let version = getU32(b, o + 4)
        let c: Checkpoint
        switch version {
        case 1:
            guard CRC32C.checksum(b, range: o..<(o + 48)) == getU32(b, o + 48) else { return nil }
            c = Checkpoint(version: 1, generation: getU64(b, o + 8), ringSize: getU64(b, o + 16), prioritySize: 0,
                           heads: [Head(offset: getU64(b, o + 24), seq: getU64(b, o + 32))], highWater: getU64(b, o + 40))
        case 2:
            guard CRC32C.checksum(b, range: o..<(o + 72)) == getU32(b, o + 72) else { return nil }
            c = Checkpoint(version: 2, generation: getU64(b, o + 8), ringSize: getU64(b, o + 16),
                           prioritySize: getU64(b, o + 24),
                           heads: [Head(offset: getU64(b, o + 32), seq: getU64(b, o + 40)),
                                   Head(offset: getU64(b, o + 48), seq: getU64(b, o + 56))],
                           highWater: getU64(b, o + 64),
                           acked: decodeAcked(b, at: o, generation: getU64(b, o + 8)))
            guard c.prioritySize >= 4096, c.prioritySize % 4096 == 0, c.prioritySize < c.ringSize else { return nil }
        default:
            return nil
        }
        guard c.ringSize >= 65536, c.ringSize % 4096 == 0, c.ringSize <= UInt64(Int.max / 2) else { return nil }
        for (h, l) in zip(c.heads, c.layout) where h.offset >= UInt64(l.size) || h.offset % 8 != 0 { return nil }
        return c
    }

    static func encodeCheckpoint(_ c: Checkpoint) -> [UInt8] {
        // Extension at 80: magic "GQAK", u32 count, u64 generation (binds it to this
        // checkpoint), count x (u64 first, u64 last), u32 crc32c over the extension.
        // One buffer: this runs on every ack.
        let n = min(c.acked.count, maxAckedRanges)
        let x = 80
        var b = [UInt8](repeating: 0, count: x + 16 + 16 * n + 4)
        putU32(&b, 0, checkpointMagic)
        putU32(&b, 4, checkpointVersion)
        putU64(&b, 8, c.generation)
        putU64(&b, 16, c.ringSize)
        putU64(&b, 24, c.prioritySize)
        putU64(&b, 32, c.heads[0].offset)
        putU64(&b, 40, c.heads[0].seq)
        putU64(&b, 48, c.heads[1].offset)
        putU64(&b, 56, c.heads[1].seq)
        putU64(&b, 64, c.highWater)
        putU32(&b, 72, CRC32C.checksum(b, range: 0..<72))
        putU32(&b, x, ackedMagic)
        putU32(&b, x + 4, UInt32(n))
        putU64(&b, x + 8, c.generation)
        for (k, r) in c.acked.prefix(n).enumerated() {
            putU64(&b, x + 16 + 16 * k, r.lowerBound)
            putU64(&b, x + 24 + 16 * k, r.upperBound)
        }
        putU32(&b, x + 16 + 16 * n, CRC32C.checksum(b, range: x..<(x + 16 + 16 * n)))
        return b
    }

    /// The acked-beyond-head ranges stored after a version-2 slot at `o`; empty when absent,
    /// damaged or written for another generation.
    static func decodeAcked(_ b: [UInt8], at o: Int, generation: UInt64) -> [ClosedRange<UInt64>] {
        let x = o + 80
        guard x + 20 <= b.count, getU32(b, x) == ackedMagic else { return [] }
        let n = Int(getU32(b, x + 4))
        guard n <= maxAckedRanges, x + 16 + 16 * n + 4 <= b.count, getU64(b, x + 8) == generation,
              CRC32C.checksum(b, range: x..<(x + 16 + 16 * n)) == getU32(b, x + 16 + 16 * n) else { return [] }
        var out: [ClosedRange<UInt64>] = []
        for k in 0..<n {
            let lo = getU64(b, x + 16 + 16 * k), hi = getU64(b, x + 24 + 16 * k)
            guard lo <= hi, out.last.map({ $0.upperBound < lo }) ?? true else { return [] }
            out.append(lo...hi)
        }
        return out
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

    /// Append a record; returns its seq. May drop the oldest records of the record's class
    /// (and append gap records first) when its ring is full.
    @discardableResult
    public func append(kind: RecordKind, payload: [UInt8], timestampMs: Int64) throws(QueueError) -> UInt64 {
        try checkWritable()
        let x = Self.ringIndex(kind)
        let limit = Self.maxPayload(ring: rings[x].size)
        guard payload.count <= limit else {
            throw QueueError(errno: EMSGSIZE, operation: "append", path: path,
                             detail: "payload of \(payload.count) bytes exceeds \(limit) for \(kind)")
        }
        let size = Self.recordSize(payload.count)
        if !fits(x, size) { try makeRoom(x, size, timestampMs: timestampMs) }
        let seq = try writeRecord(ring: x, seq: nil, kind: kind, payload: payload, timestampMs: timestampMs)
        try syncAfterWrite(nowMs: timestampMs)
        return seq
    }

    /// Unacknowledged records with seq > `seq`, oldest first (both rings merged by seq), at most `limit`.
    public func records(after seq: UInt64, limit: Int) -> [QueuedRecord] {
        guard !closed, limit > 0 else { return [] }
        var idx = rings.map { $0.lowerIndex(after: seq) }
        var out: [QueuedRecord] = []
        while out.count < limit {
            var pick = -1
            for r in rings.indices {
                while idx[r] < rings[r].entries.count && rings[r].entries[idx[r]].acked { idx[r] += 1 }
                if idx[r] < rings[r].entries.count,
                   pick < 0 || rings[r].entries[idx[r]].seq < rings[pick].entries[idx[pick]].seq {
                    pick = r
                }
            }
            if pick < 0 { break }
            let e = rings[pick].entries[idx[pick]]
            idx[pick] += 1
            var buf = [UInt8](repeating: 0, count: e.length)
            do {
                let n = try fh.preadFully(&buf, count: e.length, offset: rings[pick].base + e.offset + Self.recordHeaderSize)
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
        try checkWritable()
        for r in rings.indices {
            guard let i = rings[r].index(of: seq) else { continue }
            guard !rings[r].entries[i].acked else { return }
            rings[r].entries[i].acked = true
            rings[r].unacked -= 1
            if i == rings[r].first {
                while rings[r].first < rings[r].entries.count && rings[r].entries[rings[r].first].acked {
                    rings[r].first += 1
                }
                rings[r].updateHead()
                if !ackedBeyond.isEmpty { pruneAcked() }   // the head passed it: no range needed
            } else {
                noteAcked(seq)
            }
            try writeCheckpoint()
            return
        }
    }

    /// Adds `seq` to `ackedBeyond` and forgets ranges that every head has passed.
    func noteAcked(_ seq: UInt64) {
        var lo = 0, hi = ackedBeyond.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ackedBeyond[mid].upperBound < seq { lo = mid + 1 } else { hi = mid }
        }
        // lo: first range whose upper bound >= seq
        if lo < ackedBeyond.count && ackedBeyond[lo].contains(seq) {
        } else if lo > 0 && ackedBeyond[lo - 1].upperBound &+ 1 == seq {
            ackedBeyond[lo - 1] = ackedBeyond[lo - 1].lowerBound...seq
            if lo < ackedBeyond.count && ackedBeyond[lo].lowerBound == seq &+ 1 {
                ackedBeyond[lo - 1] = ackedBeyond[lo - 1].lowerBound...ackedBeyond[lo].upperBound
                ackedBeyond.remove(at: lo)
            }
        } else if lo < ackedBeyond.count && ackedBeyond[lo].lowerBound == seq &+ 1 {
            ackedBeyond[lo] = seq...ackedBeyond[lo].upperBound
        } else {
            ackedBeyond.insert(seq...seq, at: lo)
        }
        pruneAcked()
    }

    /// Drops the ranges below every ring's head: those records have left the queue.
    func pruneAcked() {
        var floor = nextSeq
        for r in rings { floor = min(floor, r.headSeq(next: nextSeq)) }
        var n = 0
        while n < ackedBeyond.count && ackedBeyond[n].upperBound < floor { n += 1 }
        if n > 0 { ackedBeyond.removeFirst(n) }
    }

    /// Marks the recovered records that a checkpoint lists as acked, and moves heads over them.
    func applyAcked(_ ranges: [ClosedRange<UInt64>]) {
        guard !ranges.isEmpty else { return }
        for r in rings.indices {
            for i in rings[r].first..<rings[r].entries.count where !rings[r].entries[i].acked {
                let seq = rings[r].entries[i].seq
                if ranges.contains(where: { $0.contains(seq) }) {
                    rings[r].entries[i].acked = true
                    rings[r].unacked -= 1
                }
            }
            while rings[r].first < rings[r].entries.count && rings[r].entries[rings[r].first].acked { rings[r].first += 1 }
            rings[r].updateHead()
            rings[r].durableSpan = rings[r].used
        }
        ackedBeyond = ranges
        pruneAcked()
    }

    /// In `.batch` mode, sync if unsynced data is at least the interval old.
    public func flushIfDue(nowMs: Int64) throws(QueueError) {
        try checkUsable()
        if readOnly { return }
        if case .batch(let iv) = syncMode, let since = dirtySinceMs, nowMs - since >= iv || nowMs < since {
            try syncData()
        }
    }

    /// `fdatasync` now if anything was written since the last sync.
    public func sync() throws(QueueError) {
        try checkUsable()
        if dirty && !readOnly { try syncData() }
    }

    public var stats: QueueStats {
        let two = rings.count == 2
        let p = two ? rings[Self.P] : nil
        let t = rings[rings.count - 1]
        let oldest = rings.compactMap(\.oldestTimestampMs).min()
        var s = QueueStats(records: rings.reduce(0) { $0 + $1.unacked }, bytes: rings.reduce(0) { $0 + $1.used },
                           oldestTimestampMs: oldest, droppedRecords: droppedTelemetry + droppedPriority,
                           skippedOnRecovery: skipped, nextSeq: nextSeq)
        s.telemetryRecords = t.unacked
        s.telemetryBytes = t.used
        s.telemetryCapacity = t.size
        s.priorityRecords = p?.unacked ?? 0
        s.priorityBytes = p?.used ?? 0
        s.priorityCapacity = p?.size ?? 0
        s.droppedTelemetry = droppedTelemetry
        s.droppedPriority = droppedPriority
        return s
    }

    /// Sync (unless `.none`) and close. Further calls throw EBADF.
    public func close() {
        guard !closed else { return }
        if !readOnly && syncMode != .none && dirty && failure == nil { try? syncData() }
        Glibc.close(fh.fd)
        closed = true
    }

    // MARK: - Internals

    func checkUsable() throws(QueueError) {
        if closed { throw QueueError(errno: EBADF, operation: "use", path: path, detail: "queue is closed") }
        if let failure { throw failure }
    }

    func checkWritable() throws(QueueError) {
        try checkUsable()
        if readOnly { throw QueueError(errno: EROFS, operation: "write", path: path, detail: "queue opened read-only") }
    }

    /// Whether a record of `size` bytes fits ring `x` without drops, keeping room for one
    /// gap record on top (the reserve that a later drop writes its gap record into).
    func fits(_ x: Int, _ size: Int) -> Bool {
        let r = rings[x]
        return r.free >= r.spaceNeeded([size, Self.gapReserve])
    }

    /// Drop the oldest records of ring `x` until the record, a gap record, the reserve and
    /// 1/16 of the ring of slack fit; write the gap record into space that was free before
    /// the drops, then the checkpoint (see the crash-order note above).
    func makeRoom(_ x: Int, _ size: Int, timestampMs: Int64) throws(QueueError) {
        let g = Self.gapReserve
        var gap = GapRange(cls: x == Self.T ? "telemetry" : "priority")
        let preFree = rings[x].free
        let target = min(rings[x].size, rings[x].spaceNeeded([g, size, g]) + rings[x].size / 16)
        while rings[x].first < rings[x].entries.count && rings[x].free < target { dropOldest(x, into: &gap) }
        guard let json = gap.json() else {
            try writeCheckpoint()
            return
        }
        // Normally the gap goes into space that was free before the drops (the reserve) and
        // the checkpoint follows. Only a file that did not keep the reserve (e.g. just
        // migrated from an older version) takes the other order.
        let intoFree = rings[x].spaceNeeded([Self.recordSize(json.count)]) <= preFree
        if !intoFree { try writeCheckpoint() }
        try writeRecord(ring: x, seq: nil, kind: .gap, payload: json, timestampMs: timestampMs)
        // A power cut keeps unsynced writes in any order: the gap record must be on stable
        // storage before a checkpoint that moves the head past what it reports can be.
        if syncMode != .none && intoFree { try syncData() }
        try writeCheckpoint()
    }

    func dropOldest(_ x: Int, into gap: inout GapRange) {
        let e = rings[x].entries[rings[x].first]
        rings[x].first += 1
        if !e.acked { rings[x].unacked -= 1 }
        if e.kind == .gap {
            if !e.acked {
                var buf = [UInt8](repeating: 0, count: e.length)
                if (try? fh.preadFully(&buf, count: e.length, offset: rings[x].base + e.offset + Self.recordHeaderSize)) == e.length,
                   let g = GapRange.parse(buf) {
                    gap.merge(g)
                }
            }
        } else if !e.acked {
            gap.add(e.seq)
            if x == Self.T { droppedTelemetry += 1 } else { droppedPriority += 1 }
        }
        while rings[x].first < rings[x].entries.count && rings[x].entries[rings[x].first].acked { rings[x].first += 1 }
        rings[x].updateHead()
        pruneAcked()
    }

    /// Write one record at the tail of ring `x`. `seq == nil` assigns the next seq.
    /// The caller guarantees there is room.
    @discardableResult
    func writeRecord(ring x: Int, seq explicitSeq: UInt64?, kind: RecordKind, payload: [UInt8],
                     timestampMs: Int64) throws(QueueError) -> UInt64 {
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
        let r = rings[x]
        var pos = r.tail
        var waste = 0
        if pos + size > r.size {
            waste = r.size - pos
            pos = 0
        }
        precondition(r.used + waste + size <= r.size, "DiskQueue: no room for record")
        if syncMode != .none && r.durableSpan + waste + size > r.size {
            try syncData()
        }
        if waste >= Self.recordHeaderSize {
            let marker = Self.encodeRecord(magic: Self.wrapMagic, seq: seq, kind: 0, timestampMs: 0, payload: [])
            try fh.pwriteFully(marker, offset: r.base + r.tail)
        }
        let bytes = Self.encodeRecord(magic: Self.recordMagic, seq: seq, kind: kind.rawValue,
                                      timestampMs: timestampMs, payload: payload)
        try fh.pwriteFully(bytes, offset: r.base + pos)
        if explicitSeq == nil { nextSeq = seq + 1 }
        rings[x].entries.append(Entry(seq: seq, offset: pos, length: payload.count, kind: kind,
                                      timestampMs: timestampMs, acked: false))
        rings[x].unacked += 1
        var tail = pos + size
        if tail == r.size { tail = 0 }
        rings[x].tail = tail
        rings[x].used += waste + size
        rings[x].durableSpan += waste + size
        rings[x].checkpointSpan += waste + size
        if !dirty || dirtySinceMs == nil { dirtySinceMs = timestampMs }
        dirty = true
        return seq
    }

    func writeCheckpoint() throws(QueueError) {
        generation += 1
        let p = rings[Self.P], t = rings[Self.T]
        let c = Checkpoint(version: Self.checkpointVersion, generation: generation, ringSize: UInt64(ringSize),
                           prioritySize: UInt64(p.size),
                           heads: [Head(offset: UInt64(p.head), seq: p.headSeq(next: nextSeq)),
                                   Head(offset: UInt64(t.head), seq: t.headSeq(next: nextSeq))],
                           highWater: highWater, acked: Array(ackedBeyond.prefix(Self.maxAckedRanges)))
        try fh.pwriteFully(Self.encodeCheckpoint(c), offset: Self.slotOffsets[Int(generation % 2)])
        for i in rings.indices { rings[i].checkpointSpan = rings[i].used }
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
        for i in rings.indices { rings[i].durableSpan = rings[i].checkpointSpan }
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

/// Range of dropped seqs of one class described by a gap record.
struct GapRange: Equatable {
    /// "telemetry" or "priority" (a gap written before classes existed parses as telemetry).
    var cls = "telemetry"
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
        return Array("{\"from_seq\":\(from),\"to_seq\":\(to),\"count\":\(count),\"reason\":\"queue_full\",\"class\":\"\(cls)\"}".utf8)
    }

    /// Parse the numbers out of a gap payload written by `json()`.
    static func parse(_ payload: [UInt8]) -> GapRange? {
        func find(_ key: String) -> Int? {
            let k = Array(key.utf8)
            guard payload.count >= k.count else { return nil }
            var i = 0
            while i + k.count <= payload.count {
                if payload[i..<(i + k.count)].elementsEqual(k) { return i + k.count }
                i += 1
            }
            return nil
        }
        func number(after key: String) -> UInt64? {
            guard var j = find(key) else { return nil }
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
        guard let f = number(after: "\"from_seq\":"), let t = number(after: "\"to_seq\":"),
              let c = number(after: "\"count\":"), f <= t else { return nil }
        let cls = find("\"class\":\"priority\"") != nil ? "priority" : "telemetry"
        return GapRange(cls: cls, from: f, to: t, count: c)
    }
}

