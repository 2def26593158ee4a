import Glibc

/// A full ring (DiskQueue's crash-order note): dropping the oldest records of a class and the
/// gap record that reports them. The background variant (an early drop) is in
/// QueueBackgroundSync.swift.
extension DiskQueue {
    /// Drop the oldest records of ring `x` until the record, a gap record, the reserve and
    /// 1/16 of the ring of slack fit; write the gap record into space that was free before
    /// the drops, then the checkpoint (see the crash-order note in DiskQueue.swift).
    func makeRoom(_ x: Int, _ size: Int, timestampMs: Int64) throws(QueueError) {
        // An early drop still waiting for its gap record's sync (QueueBackgroundSync.swift) is finished
        // first, in order: its gap record synced, then the drop and the checkpoint past it.
        try finishEarlyDrop()
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
        if !e.acked {
            rings[x].unacked -= 1
            if gap.cover(seq: e.seq, kind: e.kind, storedGap: { storedGap(ring: x, e) }) {
                if x == Self.T { droppedTelemetry += 1 } else { droppedPriority += 1 }
            }
        }
        while rings[x].first < rings[x].entries.count && rings[x].entries[rings[x].first].acked { rings[x].first += 1 }
        rings[x].updateHead()
        pruneAcked()
    }

    /// The range a stored gap record of ring `x` reports; nil when it cannot be read back.
    func storedGap(ring x: Int, _ e: Entry) -> GapRange? {
        var buf = [UInt8](repeating: 0, count: e.length)
        guard (try? fh.preadFully(&buf, count: e.length, offset: rings[x].base + e.offset + Self.recordHeaderSize)) == e.length
        else { return nil }
        return GapRange.parse(buf)
    }
}
