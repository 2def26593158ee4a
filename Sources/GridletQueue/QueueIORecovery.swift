import Glibc

/// What `DiskQueue.recoverAfterIOError(nowMs:)` did: the fdatasync error it recovered from and,
/// per class of records, what it gave up and the gap record that reports it.
public struct QueueIORecovery: Sendable, Equatable, CustomStringConvertible {
    public struct Loss: Sendable, Equatable {
        /// "telemetry" or "priority" (responses, ledger), as in the gap record.
        public var recordClass: String
        public var fromSeq: UInt64
        public var toSeq: UInt64
        /// Records given up in `fromSeq...toSeq` (gap records given up are not counted: their
        /// ranges and counts are merged in, so what they reported stays reported).
        public var count: UInt64
        /// The `io_error` gap record that reports the loss.
        public var gapSeq: UInt64
    }

    /// The failure the queue recovered from.
    public var error: QueueError
    /// Empty when every unacknowledged record had been synced before the failure.
    public var losses: [Loss]

    /// One line for the log: what was given up and where it is reported.
    public var description: String {
        guard !losses.isEmpty else { return "no record was lost (everything unacknowledged had been synced)" }
        return losses.map { l in
            "\(l.count) \(l.recordClass) record(s) in seq \(l.fromSeq)-\(l.toSeq) given up, reported by gap record seq \(l.gapSeq)"
        }.joined(separator: "; ")
    }
}

/// Recovery from a failed `fdatasync` (SPEC §4).
///
/// After an fdatasync error the kernel may have dropped the dirty pages or marked them clean
/// without writing them: what the page cache shows is no longer what the disk holds, and a
/// second fdatasync on the same data may report success for pages it never wrote (the
/// PostgreSQL "fsyncgate" lesson). So nothing written since the last *successful* sync is
/// trusted or synced again. Instead:
///
/// 1. the file is closed and opened again (a new open file description: the next fdatasync
///    reports only errors that happen from now on, for data written from now on);
/// 2. the rings are rebuilt from the file with the recovery that runs at open (`RingReader`);
/// 3. a record is kept only when recovery found it intact, it was synced before the failure
///    (seq below `syncedSeq`) and it was still unacknowledged in memory (in-memory acks and
///    drops win over an older checkpoint); the tail of each ring goes back to the end of its
///    last synced record, so the next writes replace the unsynced bytes and their pages are
///    written (and synced) again as a whole. Keeping an unsynced record that merely reads back
///    well would not be safe: if its page was never written, a later eviction shows the
///    previous lap's bytes there, and recovery after a restart would end the log at them,
///    losing the synced records written behind it;
/// 4. a checkpoint is written and synced (so the synced head is the head in memory), then one
///    gap record per class that lost records (`"reason":"io_error"`, the seq range and count
///    of what was given up, merged with the ranges of gap records given up), then a sync.
///
/// Seqs are never reused: the records after recovery continue above every seq given up. A
/// record in a reported range may still reach the broker if it was already handed over before
/// the failure (at least once, and the gap then says "may be missing").
extension DiskQueue {
    /// Recovers from a failed fdatasync (see above); nil when the queue has not failed. Throws
    /// when the file cannot be reopened or the new writes cannot be synced either: the queue
    /// then stays failed for good (every call throws that error, this one returns nil) and the
    /// caller should stop (the agent exits non-zero, so that systemd restarts it and the
    /// ordinary open recovers the file).
    public func recoverAfterIOError(nowMs: Int64) throws(QueueError) -> QueueIORecovery? {
        guard let error = failure, !closed, !readOnly else { return nil }
        do throws(QueueError) {
            let losses = try reopenKeepingSyncedRecords(nowMs: nowMs)
            failure = nil
            return QueueIORecovery(error: error, losses: losses)
        } catch let e {
            // Half recovered is not a state to go on from: closed, failed for good.
            if !closed { Glibc.close(fh.fd); closed = true }
            failure = e
            throw e
        }
    }

    private func reopenKeepingSyncedRecords(nowMs: Int64) throws(QueueError) -> [QueueIORecovery.Loss] {
        let before = rings
        let pending = Set(before.flatMap { r in r.entries[r.first...].lazy.filter { !$0.acked }.map(\.seq) })
        let keptSkipped = skipped, keptAcked = ackedBeyond, keptNextSeq = nextSeq

        // Unlock first: a background sync may still hold a duplicate of this descriptor (the
        // same open file description, so the same lock) until its fdatasync returns.
        flock(fh.fd, LOCK_UN)
        Glibc.close(fh.fd)
        closed = true
        fileEpoch += 1   // a background sync of the old descriptor is stale from here on
        inFlight = nil
        earlyDropAfter = nil   // the rings are rebuilt from the file
        earlyDrop = nil
        fh = try Self.openLocked(path, truncate: false)
        closed = false

        let found = try Self.readCheckpoint(fh, fileSize: try fh.size())
        let ck = found.flatMap { c in
            c.version == Self.checkpointVersion && Int(c.ringSize) == ringSize && Int(c.prioritySize) == rings[Self.P].size ? c : nil
        }
        rings = Self.layout(ringSize: ringSize)
        let maxSeq = try recoverRings(from: ck, scanWithoutCheckpoint: true)
        skipped = keptSkipped
        for x in rings.indices { rings[x].keepSynced(below: syncedSeq, stillPending: pending) }
        ackedBeyond = keptAcked
        pruneAcked()
        // Seqs continue above everything handed out; the next write reserves a new block
        // (checkpoint + sync) before it uses one.
        nextSeq = max(keptNextSeq, maxSeq &+ 1)
        highWater = nextSeq

        // What was pending and is not kept, per ring (a gap record reports its own class).
        var gaps = [GapRange(cls: "priority", reason: "io_error"), GapRange(cls: "telemetry", reason: "io_error")]
        let kept = Set(rings.flatMap { r in r.entries[r.first...].lazy.filter { !$0.acked }.map(\.seq) })
        for x in before.indices {
            for e in before[x].entries[before[x].first...] where !e.acked && !kept.contains(e.seq) {
                _ = gaps[x].cover(seq: e.seq, kind: e.kind, storedGap: { storedGap(ring: x, e) })
            }
        }

        try writeCheckpoint()
        try syncData()
        var losses: [QueueIORecovery.Loss] = []
        for x in [Self.T, Self.P] {
            guard let json = gaps[x].json(), let from = gaps[x].from else { continue }
            let size = Self.recordSize(json.count)
            if !fits(x, size) { try makeRoom(x, size, timestampMs: nowMs) }
            let seq = try writeRecord(ring: x, seq: nil, kind: .gap, payload: json, timestampMs: nowMs)
            losses.append(.init(recordClass: gaps[x].cls, fromSeq: from, toSeq: gaps[x].to, count: gaps[x].count, gapSeq: seq))
        }
        if !losses.isEmpty { try syncData() }
        return losses
    }
}

extension DiskQueue.Ring {
    /// After an fdatasync error, on a freshly recovered ring: cuts the log before its first
    /// record at or above `syncedSeq` (the tail goes back to the end of the last record kept,
    /// or to the head) and marks acked every record that is not in `stillPending` (acked or
    /// dropped in memory before the failure).
    mutating func keepSynced(below syncedSeq: UInt64, stillPending: Set<UInt64>) {
        if let k = entries.firstIndex(where: { $0.seq >= syncedSeq }) {
            if k > 0 {
                let last = entries[k - 1]
                tail = (last.offset + DiskQueue.recordSize(last.length)) % size
            } else {
                tail = head
            }
            entries.removeSubrange(k...)
        }
        unacked = 0
        for i in entries.indices {
            if stillPending.contains(entries[i].seq) { unacked += 1 } else { entries[i].acked = true }
        }
        first = 0
        while first < entries.count && entries[first].acked { first += 1 }
        updateHead()
        durableSpan = used
        checkpointSpan = used
    }
}
