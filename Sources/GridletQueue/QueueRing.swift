extension DiskQueue {
    struct Entry {
        var seq: UInt64
        var offset: Int
        var length: Int
        var kind: RecordKind
        var timestampMs: Int64
        var acked: Bool
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
        /// Bytes written at the tail since the queue opened (waste included): what a sync
        /// snapshot compares to know how far the tail moved after it.
        var written = 0
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
}
