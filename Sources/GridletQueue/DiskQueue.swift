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
/// The header block (checkpoint slots) and the record layout are described with their codec
/// in QueueFormat.swift, recovery at open with `RingReader` (Recovery.swift), the migration of
/// an older file in QueueMigration.swift.
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
/// every later mutating call throws that error until `recoverAfterIOError(nowMs:)` reopens the
/// file, gives up what was written since the last successful sync and reports it with an
/// `io_error` gap record (QueueIORecovery.swift).
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
    /// fdatasync errors since this instance opened, and the last one (for status and metrics).
    var ioErrors = 0
    var lastIOError: QueueError?
    /// `nextSeq` at the last successful sync: every record below it is on stable storage, the
    /// ones from it on are what an fdatasync error leaves in an unknown state.
    var syncedSeq: UInt64 = 1

    /// `[priority, telemetry]` (a read-only view of a version-1 file has one ring).
    var rings: [Ring]
    var nextSeq: UInt64 = 1
    var highWater: UInt64 = 1
    var generation: UInt64 = 0
    var droppedTelemetry = 0
    var droppedPriority = 0
    var skipped = 0
    /// Oldest record timestamp written since the last sync (or background sync) started.
    var dirtySinceMs: Int64?
    /// Writes (records and checkpoints) so far, and how many of them the last applied sync covers.
    var writes = 0
    var syncedWrites = 0
    /// `highWater` as of the last applied sync: a seq at or above it must not be written.
    var syncedHighWater: UInt64 = 0
    /// Background sync (QueueBackgroundSync.swift): where requests go, the one in flight,
    /// snapshot ids, and the generation of the file descriptor (a reopen makes older requests stale).
    var submitSync: ((QueueSyncRequest) -> Void)?
    var inFlight: SyncSnapshot?
    var syncWanted = false
    /// An early drop's gap record is written; the drop itself (ring, last seq it drops) waits
    /// for the sync with this snapshot id (or a later one) to be applied.
    var earlyDropAfter: UInt64?
    var earlyDrop: (ring: Int, through: UInt64)?
    var snapshotIds: UInt64 = 0
    var appliedSnapshot: UInt64 = 0
    var fileEpoch = 0
    /// Anything written that the last applied sync does not cover.
    var dirty: Bool { writes != syncedWrites }
    /// Seqs acked while an older record of some ring still waits (sorted, disjoint; a range
    /// only joins consecutive acked seqs). Written with every checkpoint so that a restart
    /// does not send them again.
    var ackedBeyond: [ClosedRange<UInt64>] = []

    /// Largest telemetry payload `append` accepts.
    public var maxPayloadBytes: Int { Self.maxPayload(ring: rings[rings.count - 1].size) }

    /// Largest payload `append` accepts for `kind`.
    public func maxPayloadBytes(for kind: RecordKind) -> Int {
        Self.maxPayload(ring: rings[rings.count == 1 ? 0 : Self.ringIndex(kind)].size)
    }

    /// Size of the reserved priority ring (responses, ledger, gap records).
    public var priorityRingSize: Int { rings.count == 2 ? rings[Self.P].size : 0 }

    static func maxPayload(ring: Int) -> Int { ring / 4 - recordHeaderSize }

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
            let maxSeq = try recoverRings(from: ck, scanWithoutCheckpoint: true)
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
        let maxSeq = try recoverRings(from: ck, scanWithoutCheckpoint: fileSize > Self.headerSize)
        nextSeq = max(highWater, maxSeq &+ 1, 1)
        // The first seq block is reserved by the opening checkpoint, so the first append does not sync.
        highWater = nextSeq + Self.seqReserveBlock
        if let ck { applyAcked(ck.acked) }
        try writeCheckpoint()
        try syncData()
    }

    /// Rebuilds every ring from the file (see `RingReader`): from the checkpoint's heads, or
    /// without a checkpoint (when `scanWithoutCheckpoint`) from the oldest valid record of the
    /// ring. Returns the highest seq found.
    func recoverRings(from ck: Checkpoint?, scanWithoutCheckpoint: Bool) throws(QueueError) -> UInt64 {
        var maxSeq: UInt64 = 0
        for i in rings.indices {
            var reader = RingReader(fh: fh, base: rings[i].base, ring: rings[i].size)
            var start: (offset: Int, seq: UInt64) = (0, 1)
            if let ck {
                start = (Int(ck.heads[i].offset), ck.heads[i].seq)
            } else if scanWithoutCheckpoint, let oldest = try reader.findOldest() {
                start = oldest
            }
            let rec = try reader.recover(headOffset: start.offset, headSeq: start.seq)
            rings[i].install(rec)
            skipped += rec.skipped
            maxSeq = max(maxSeq, rec.maxSeq)
        }
        return maxSeq
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
        // Seqs for a gap record and this one, before anything is dropped: a checkpoint that
        // reserves a block must not move a head past drops whose gap record is not written yet.
        try reserveSeqs(3, early: true)   // a gap record of a drop, this record, a gap of an early drop
        if !fits(x, size) { try makeRoom(x, size, timestampMs: timestampMs) }
        let seq = try writeRecord(ring: x, seq: nil, kind: kind, payload: payload, timestampMs: timestampMs)
        if submitSync != nil { try dropEarlyIfLow(x, timestampMs: timestampMs) }
        try syncAfterWrite(nowMs: timestampMs)
        return seq
    }

    /// Unacknowledged records with seq > `seq`, oldest first (both rings merged by seq), at most `limit`.
    /// After a failed fdatasync, only records synced before it: the others are about to be
    /// given up by `recoverAfterIOError` and must not be sent as if they were kept.
    public func records(after seq: UInt64, limit: Int) -> [QueuedRecord] {
        guard !closed, limit > 0 else { return [] }
        // `always` with background syncs: a record is handed out only once it is synced.
        let below = failure == nil && !(submitSync != nil && syncMode == .always) ? UInt64.max : syncedSeq
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
            if pick < 0 || rings[pick].entries[idx[pick]].seq >= below { break }
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

    /// Mark `seq` as delivered. Unknown or already-acked seqs are ignored. After a failed
    /// fdatasync the ack is still taken in memory (no checkpoint is written into a file in an
    /// unknown state): `recoverAfterIOError` then neither sends the record again nor reports it lost.
    public func ack(seq: UInt64) throws(QueueError) {
        try ack(seqs: CollectionOfOne(seq))
    }

    /// Acknowledges several records with one checkpoint write (a drain gets its PUBACKs in bursts:
    /// one checkpoint per burst, not per record). A crash before the checkpoint only sends those
    /// records again (at least once), as with single acks.
    public func ack<S: Sequence<UInt64>>(seqs: S) throws(QueueError) {
        if failure == nil || closed { try checkWritable() }
        var changed = false
        for seq in seqs where markAcked(seq) { changed = true }
        if changed, failure == nil { try writeCheckpoint() }
    }

    /// Marks one record acknowledged in memory; false when unknown or acked already.
    private func markAcked(_ seq: UInt64) -> Bool {
        for r in rings.indices {
            guard let i = rings[r].index(of: seq) else { continue }
            guard !rings[r].entries[i].acked else { return false }
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
            return true
        }
        return false
    }

    /// Wall time (record timestamp) of the oldest write not yet synced in `.batch` mode, so the
    /// caller can wake for `flushIfDue` when it is due; nil when there is nothing to sync.
    public var unsyncedSinceMs: Int64? {
        // While a background sync runs, its completion wakes the owner; nothing else is due.
        if case .batch = syncMode, inFlight == nil { return dirtySinceMs }
        return nil
    }

    /// In `.batch` mode, sync if unsynced data is at least the interval old.
    public func flushIfDue(nowMs: Int64) throws(QueueError) {
        try checkUsable()
        if readOnly { return }
        if submitSync != nil {
            try requestSyncIfDue(nowMs: nowMs)
        } else if case .batch(let iv) = syncMode, let since = dirtySinceMs, nowMs - since >= iv || nowMs < since {
            try syncData()
        }
    }

    /// `fdatasync` now if anything was written since the last sync.
    public func sync() throws(QueueError) {
        try checkUsable()
        if dirty && !readOnly { try syncData() }
        if dirty && !readOnly { try syncData() }   // the checkpoint of an early drop that waited for the first
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
        s.ok = failure == nil
        s.ioErrors = ioErrors
        s.lastIOError = lastIOError
        return s
    }

    /// Sync (unless `.none`) and close. Further calls throw EBADF.
    public func close() {
        guard !closed else { return }
        if !readOnly && syncMode != .none && dirty && failure == nil { try? syncData() }
        if !readOnly && syncMode != .none && dirty && failure == nil { try? syncData() }   // an early drop's checkpoint
        if !readOnly { flock(fh.fd, LOCK_UN) }   // a background sync may still hold a duplicate
        Glibc.close(fh.fd)
        closed = true
    }

    // MARK: - Internals

    func checkUsable() throws(QueueError) {
        // The failure first: after a reopen that failed the queue is also closed, and the cause says more.
        if let failure { throw failure }
        if closed { throw QueueError(errno: EBADF, operation: "use", path: path, detail: "queue is closed") }
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

    /// Write one record at the tail of ring `x`. `seq == nil` assigns the next seq.
    /// The caller guarantees there is room.
    @discardableResult
    func writeRecord(ring x: Int, seq explicitSeq: UInt64?, kind: RecordKind, payload: [UInt8],
                     timestampMs: Int64) throws(QueueError) -> UInt64 {
        let seq: UInt64
        if let explicitSeq {
            seq = explicitSeq
        } else {
            try reserveSeqs(1, early: false)
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
            try syncData()   // also writes the checkpoint of an early drop that waited for a sync
            if rings[x].durableSpan + waste + size > r.size { try syncData() }   // and makes it durable
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
        rings[x].written += waste + size
        if dirtySinceMs == nil { dirtySinceMs = timestampMs }
        writes += 1
        return seq
    }

    /// Makes sure seqs `nextSeq ..< nextSeq + n` are below the *synced* high-water mark: a seq
    /// at or above it could be handed out again after a power cut. Background syncs extend the
    /// block half-way through, so the sync that makes it durable normally finished long before
    /// the block runs out; the inline sync is the fallback. `early` only where no drop is half
    /// done (the checkpoint it writes carries the heads).
    func reserveSeqs(_ n: UInt64, early allowEarly: Bool) throws(QueueError) {
        let early = allowEarly && submitSync != nil && nextSeq + Self.seqReserveBlock / 2 >= highWater
        if nextSeq + n > highWater || early {
            highWater = nextSeq + n + Self.seqReserveBlock
            try writeCheckpoint()
            if !early { try syncData() }
        }
        if nextSeq + n > syncedHighWater { try syncData() }
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
        writes += 1
    }

    /// fdatasync on this thread (a background sync in flight may finish later; it is then stale).
    func syncData() throws(QueueError) {
        let snap = snapshot()
        do {
            try fh.datasync()
        } catch {
            markFailed(error)
            throw error
        }
        try apply(snap)
    }

    func markFailed(_ error: QueueError) {
        failure = error
        ioErrors += 1
        lastIOError = error
    }

    func syncAfterWrite(nowMs: Int64) throws(QueueError) {
        if submitSync != nil {
            try requestSyncIfDue(nowMs: nowMs)
            return
        }
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
