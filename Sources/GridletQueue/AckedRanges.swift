/// Out-of-order acks: seqs acked beyond a ring's head are kept as ranges (`ackedBeyond`) and
/// written with every checkpoint, so that a restart does not deliver them again.
extension DiskQueue {
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
}
