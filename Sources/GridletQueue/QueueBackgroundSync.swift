import Dispatch
import Glibc
import GridletSys
import Synchronization

/// Background syncs: the queue's owner (the agent's control loop) never waits for `fdatasync`
/// in the steady state (issue "Fault-proof", item 10).
///
/// With `enableBackgroundSync` the queue no longer syncs inside `append` and `flushIfDue` when a
/// sync is due (`always`: after every append; `batch`: when the oldest unsynced record is
/// `sync_interval` old). It takes a *snapshot* instead (next seq, high-water mark, per ring the
/// span from the last written checkpoint's head to the tail and the bytes written so far), hands
/// a duplicate of its descriptor to an executor (`QueueSyncer`: a thread that runs `fdatasync`)
/// and goes on. The owner passes the result back with `completeSync` on its own thread, and only
/// then does the queue count what the snapshot covered as synced: `syncedSeq`, the synced
/// high-water mark and each ring's durable span (the bytes the tail must not overwrite before a
/// sync) move forward as if the sync had run at the moment of the snapshot. An `fdatasync`
/// started after a write covers it, so nothing is counted synced that was written after the
/// snapshot. At most one background sync is in flight.
///
/// What stays ordered on the owner's thread (it is rare and needs a sync *before* the next
/// write, so it cannot wait for a thread): the gap record of a ring-full drop before its
/// checkpoint, a tail that would overwrite bytes the last *synced* checkpoint still holds live
/// (the queue asks for a background sync early, when a ring's durable span passes half the ring,
/// so this waits only when the disk is slower than a whole half ring of writes), a new seq block
/// (reserved half a block early by a background sync; waits only when that has not finished
/// after 500 records), explicit `sync()`, `close()` and recovery. Such a sync also finishes the
/// in-flight one's work: the in-flight result is then stale and ignored (snapshot ids).
///
/// `always` with background syncs: a record is handed out by `records(after:limit:)` only once a
/// sync that covers it has finished, so the broker never has a record a power cut can still
/// take. A failed background `fdatasync` puts the queue into the failed state exactly like an
/// inline one (`recoverAfterIOError`); a result for a descriptor the queue has since reopened
/// is ignored.
public struct QueueSyncRequest: Sendable {
    public let id: UInt64
    /// A duplicate of the queue's descriptor, owned by the request: whoever runs it closes it.
    public let fd: Int32
}

/// What a sync covers, taken when it starts.
struct SyncSnapshot {
    var id: UInt64
    var epoch: Int
    var seq: UInt64
    var highWater: UInt64
    var spans: [Int]
    var written: [Int]
    var writes: Int
    var dirtySinceMs: Int64?
}

extension DiskQueue {
    /// From now on, due syncs go to `submit` (which must run `fdatasync(request.fd)`, close the
    /// descriptor and report the result through `completeSync` on the queue's thread).
    public func enableBackgroundSync(_ submit: @escaping (QueueSyncRequest) -> Void) {
        guard !readOnly else { return }
        submitSync = submit
    }

    /// A background sync has been handed out and not yet completed.
    public var syncInFlight: Bool { inFlight != nil }

    /// Background syncs are on.
    public var syncsInBackground: Bool { submitSync != nil }

    /// Asks for a background sync of everything written so far, due or not (e.g. before a state
    /// file that counts on these records is saved); watch `durableBelowSeq`. Without background
    /// syncs it syncs here.
    public func requestSync(nowMs: Int64) throws(QueueError) {
        try checkUsable()
        guard !readOnly else { return }
        guard submitSync != nil else { return try sync() }
        syncWanted = true
        try requestSyncIfDue(nowMs: nowMs)
    }

    /// Every record with a seq below this is on stable storage (as far as `fdatasync` said).
    public var durableBelowSeq: UInt64 { syncedSeq }

    /// The result of a background sync (`errno` 0 = success). A failure puts the queue into the
    /// failed state and throws, as an inline sync would; a stale result is ignored. Then asks
    /// for the next sync if one is due already.
    public func completeSync(id: UInt64, errno e: Int32, nowMs: Int64) throws(QueueError) {
        guard let snap = inFlight, snap.id == id else { return }
        inFlight = nil
        guard !closed, failure == nil, snap.epoch == fileEpoch else { return }
        if e != 0 {
            let error = QueueError(errno: e, operation: "fdatasync", path: path)
            markFailed(error)
            throw error
        }
        try apply(snap)
        try requestSyncIfDue(nowMs: nowMs)
    }

    /// Takes a snapshot of what a sync starting now covers.
    func snapshot() -> SyncSnapshot {
        snapshotIds += 1
        let s = SyncSnapshot(id: snapshotIds, epoch: fileEpoch, seq: nextSeq, highWater: highWater,
                             spans: rings.map(\.checkpointSpan), written: rings.map(\.written), writes: writes,
                             dirtySinceMs: dirtySinceMs)
        dirtySinceMs = nil
        return s
    }

    /// Counts what `snap` covered as synced (unless a later sync was applied already); then
    /// writes the checkpoint of an early drop whose gap record that sync made durable.
    func apply(_ snap: SyncSnapshot) throws(QueueError) {
        guard snap.id > appliedSnapshot, snap.epoch == fileEpoch else { return }
        appliedSnapshot = snap.id
        syncedSeq = snap.seq
        syncedHighWater = snap.highWater
        syncedWrites = snap.writes
        if !dirty { syncWanted = false }
        for i in rings.indices where i < snap.spans.count {
            // From the snapshot's checkpoint head to the tail now: the tail moved on after it.
            let span = snap.spans[i] + (rings[i].written - snap.written[i])
            rings[i].durableSpan = min(rings[i].durableSpan, span)
        }
        if let after = earlyDropAfter, appliedSnapshot >= after { try performEarlyDrop() }
    }

    /// The gap record of the early drop is synced: drop what it reports (in memory) and write
    /// the checkpoint that moves the head past it.
    func performEarlyDrop() throws(QueueError) {
        earlyDropAfter = nil
        guard let (x, through) = earlyDrop else { return }
        earlyDrop = nil
        var gap = GapRange(cls: x == Self.T ? "telemetry" : "priority")   // reported already
        while rings[x].first < rings[x].entries.count && rings[x].entries[rings[x].first].seq <= through {
            dropOldest(x, into: &gap)
        }
        try writeCheckpoint()
        syncWanted = true   // and soon durable, so the tail may use what was dropped
    }

    /// A ring-full drop without an inline sync (background syncs only): when a ring has less
    /// than 1/16 of its size (and two gap records) free after an append, the gap record for its
    /// oldest records (down to 1/8 free) is written now, into space that was free, and nothing
    /// is dropped yet. Only once a sync that covers the gap record has been applied are those
    /// records dropped in memory and the checkpoint moving the head past them written
    /// (`performEarlyDrop`); the dropped bytes are overwritten only once that checkpoint is synced
    /// too (the durable span). Dropping in memory first would let any checkpoint written meanwhile
    /// (an ack's) carry the head past them before the gap record is on disk: the power-cut loop
    /// found that. Until the drop the records stay and may still be delivered (a gap record says
    /// "may be missing"). Appends meanwhile use the space that was free; if it runs out first,
    /// `makeRoom` and the tail check finish it inline (`finishEarlyDrop`).
    func dropEarlyIfLow(_ x: Int, timestampMs: Int64) throws(QueueError) {
        guard syncMode != .none, earlyDropAfter == nil, failure == nil else { return }
        let r = rings[x]
        guard r.free < r.size / 16 + 2 * Self.gapReserve, r.spaceNeeded([Self.gapReserve]) <= r.free,
              r.first < r.entries.count else { return }
        // Plan on a copy of the state: which records go, and the gap record that reports them.
        let saved = (ring: rings[x], acked: ackedBeyond, t: droppedTelemetry, p: droppedPriority)
        var gap = GapRange(cls: x == Self.T ? "telemetry" : "priority")
        var through: UInt64 = 0
        let target = r.size / 8
        while rings[x].first < rings[x].entries.count && rings[x].free < target {
            through = rings[x].entries[rings[x].first].seq
            dropOldest(x, into: &gap)
        }
        rings[x] = saved.ring
        ackedBeyond = saved.acked
        droppedTelemetry = saved.t
        droppedPriority = saved.p
        guard let json = gap.json() else { return }   // only acknowledged records: nothing to do early
        try writeRecord(ring: x, seq: nil, kind: .gap, payload: json, timestampMs: timestampMs)
        earlyDrop = (x, through)
        earlyDropAfter = snapshotIds + 1   // the next sync taken covers the gap record
        syncWanted = true
    }

    /// Finishes an early drop inline, in order: its gap record synced, then the drop and its checkpoint.
    func finishEarlyDrop() throws(QueueError) {
        guard let after = earlyDropAfter else { return }
        if appliedSnapshot < after { try syncData() }   // apply performs the drop
        if earlyDropAfter != nil { try performEarlyDrop() }
    }

    /// Hands out a background sync when one is due and none is in flight.
    func requestSyncIfDue(nowMs: Int64) throws(QueueError) {
        guard let submit = submitSync, inFlight == nil, failure == nil, !closed, dirty else { return }
        var due = syncWanted || highWater != syncedHighWater
            || rings.contains { $0.durableSpan > $0.size / 2 && $0.checkpointSpan < $0.durableSpan }
        switch syncMode {
        case .always:
            due = true
        case .batch(let iv):
            if let since = dirtySinceMs, nowMs - since >= iv || nowMs < since { due = true }
        case .none:
            break
        }
        guard due else { return }
        let fd = fcntl(fh.fd, F_DUPFD_CLOEXEC, 0)
        if fd < 0 {
            try syncData()   // no descriptor to spare: sync here rather than not at all
            return
        }
        let snap = snapshot()
        inFlight = snap
        syncWanted = false
        submit(QueueSyncRequest(id: snap.id, fd: fd))
    }
}

/// Runs background syncs on a thread of its own: `fdatasync(fd)`, `close(fd)`, then `done(id,
/// errno)` (from that thread; the owner passes it to `DiskQueue.completeSync` on its own).
public final class QueueSyncer: Sendable {
    private let pending = Mutex<(jobs: [QueueSyncRequest], stopping: Bool)>(([], false))
    private let wake = DispatchSemaphore(value: 0)
    private let done: @Sendable (UInt64, Int32) -> Void
    private let thread = Mutex<PosixThread?>(nil)

    public init(done: @escaping @Sendable (UInt64, Int32) -> Void) throws(Errno) {
        self.done = done
        let t = try PosixThread.start(name: "gridlet-qsync") { [self] in self.run() }
        thread.withLock { $0 = t }
    }

    public func submit(_ request: QueueSyncRequest) {
        pending.withLock { $0.jobs.append(request) }
        wake.signal()
    }

    /// Runs what was submitted, then ends the thread.
    public func stop() {
        pending.withLock { $0.stopping = true }
        wake.signal()
        if let t = thread.withLock({ v -> PosixThread? in defer { v = nil }; return v }) { t.join() }
    }

    private func run() {
        while true {
            wake.wait()
            while let job = pending.withLock({ $0.jobs.isEmpty ? nil : $0.jobs.removeFirst() }) {
                let rc = fdatasync(job.fd)
                let e: Int32 = rc == 0 ? 0 : (errno == 0 ? EIO : errno)
                Glibc.close(job.fd)
                done(job.id, e)
            }
            if pending.withLock({ $0.stopping && $0.jobs.isEmpty }) { return }
        }
    }
}
