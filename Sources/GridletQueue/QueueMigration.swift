import Glibc

extension DiskQueue {
    /// Rebuild the file for a new ring size or from format version 1, keeping for each
    /// class the newest records that fit in 3/4 of its new ring.
    func migrate(from ck: Checkpoint) throws(QueueError) {
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
            if gaps[ringOf[j]].cover(seq: r.seq, kind: r.kind, storedGap: { GapRange.parse(r.payload) }) {
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
        syncedSeq = nextSeq
        syncedHighWater = highWater
        syncedWrites = writes
        dirtySinceMs = nil
    }
}
