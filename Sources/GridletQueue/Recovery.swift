import Glibc

/// Result of scanning the ring at open.
struct Recovered {
    var entries: [DiskQueue.Entry] = []
    var head = 0
    var tail = 0
    var used = 0
    var skipped = 0
    var maxSeq: UInt64 = 0
}

/// Buffered reader over the ring area used during recovery.
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
struct RingReader {
    enum Probe {
        case record(seq: UInt64, length: Int, kind: RecordKind, timestampMs: Int64)
        case wrap(seq: UInt64)
        /// Record magic and sane length, but bad crc or unknown kind.
        case damaged(seq: UInt64)
        case nothing
    }

    let fh: FileHandle
    /// File offset of ring byte 0.
    let base: Int
    let ring: Int
    let maxPayload: Int
    var buf: [UInt8] = []
    var start = 0
    var end = 0

    init(fh: FileHandle, base: Int, ring: Int) {
        self.fh = fh
        self.base = base
        self.ring = ring
        self.maxPayload = DiskQueue.maxPayload(ring: ring)
    }

    /// Make `buf` cover ring bytes `pos..<pos+count` (`pos + count <= ring`).
    mutating func ensure(_ pos: Int, _ count: Int) throws(QueueError) {
        if pos >= start && pos + count <= end { return }
        let want = min(max(count, 256 * 1024), ring - pos)
        if buf.count < want { buf = [UInt8](repeating: 0, count: want) }
        let n = try fh.preadFully(&buf, count: want, offset: base + pos)
        if n < want {
            for i in n..<want { buf[i] = 0 }
        }
        start = pos
        end = pos + want
    }

    /// Inspect the bytes at ring offset `pos` (`pos + 32 <= ring`, 8-aligned).
    mutating func probe(_ pos: Int) throws(QueueError) -> Probe {
        try ensure(pos, DiskQueue.recordHeaderSize)
        var o = pos - start
        let magic = getU32(buf, o)
        if magic == DiskQueue.recordMagic {
            let len = Int(getU32(buf, o + 4))
            guard len <= maxPayload else { return .nothing }
            let size = DiskQueue.recordSize(len)
            guard pos + size <= ring else { return .nothing }
            try ensure(pos, size)
            o = pos - start
            let seq = getU64(buf, o + 8)
            let ts = Int64(bitPattern: getU64(buf, o + 16))
            let kindRaw = buf[o + 24]
            let stored = getU32(buf, o + 28)
            let base = o
            let crc = buf.withUnsafeBytes { p in
                var s = CRC32C.update(0xFFFF_FFFF, UnsafeRawBufferPointer(rebasing: p[base..<(base + 28)]))
                s = CRC32C.update(s, UnsafeRawBufferPointer(rebasing: p[(base + 32)..<(base + 32 + len)]))
                return ~s
            }
            if crc == stored, let kind = RecordKind(rawValue: kindRaw) {
                return .record(seq: seq, length: len, kind: kind, timestampMs: ts)
            }
            return .damaged(seq: seq)
        }
        if magic == DiskQueue.wrapMagic {
            guard getU32(buf, o + 4) == 0 else { return .nothing }
            if CRC32C.checksum(buf, range: o..<(o + 28)) == getU32(buf, o + 28) {
                return .wrap(seq: getU64(buf, o + 8))
            }
        }
        return .nothing
    }

    /// Walk the log from the checkpoint head (see `DiskQueue` docs).
    mutating func recover(headOffset: Int, headSeq: UInt64) throws(QueueError) -> Recovered {
        var r = Recovered()
        r.head = headOffset
        var pos = headOffset
        var consumed = 0
        var last: UInt64 = headSeq == 0 ? 0 : headSeq - 1
        let hdr = DiskQueue.recordHeaderSize

        mainLoop: while consumed < ring {
            if pos + hdr > ring {
                consumed += ring - pos
                pos = 0
                continue
            }
            let p = try probe(pos)
            switch p {
            case .record(let seq, let len, let kind, let ts) where seq > last:
                let size = DiskQueue.recordSize(len)
                if consumed + size > ring { break mainLoop }
                r.entries.append(DiskQueue.Entry(seq: seq, offset: pos, length: len, kind: kind,
                                                 timestampMs: ts, acked: false))
                last = seq
                r.maxSeq = max(r.maxSeq, seq)
                pos += size
                consumed += size
                if pos == ring { pos = 0 }
                continue mainLoop
            case .wrap(let seq) where seq > last:
                consumed += ring - pos
                pos = 0
                continue mainLoop
            case .record, .wrap:
                break mainLoop  // stale data from an earlier lap: clean end
            case .damaged, .nothing:
                break
            }
            // Damaged or unrecognisable bytes: look for a later valid record.
            var damaged = 0
            if case .damaged(let s) = p, s > last { damaged = 1 }
            var q = pos + 8
            var c = consumed + 8
            var resume: (pos: Int, consumed: Int)?
            scan: while c < ring {
                if q + hdr > ring {
                    c += ring - q
                    q = 0
                    continue
                }
                switch try probe(q) {
                case .record(let seq, _, _, _) where seq > last, .wrap(let seq) where seq > last:
                    resume = (q, c)
                    break scan
                case .record, .wrap:
                    break scan
                case .damaged(let s) where s > last:
                    damaged += 1
                default:
                    break
                }
                q += 8
                c += 8
            }
            if let resume {
                r.skipped += max(1, damaged)
                pos = resume.pos
                consumed = resume.consumed
            } else {
                r.skipped += damaged
                break mainLoop
            }
        }
        r.tail = pos
        r.used = min(consumed, ring)
        if r.entries.isEmpty {
            r.head = pos
            r.used = 0
        }
        return r
    }

    /// Without a checkpoint: the valid record with the lowest seq anywhere in the ring.
    mutating func findOldest() throws(QueueError) -> (offset: Int, seq: UInt64)? {
        var best: (offset: Int, seq: UInt64)?
        var pos = 0
        while pos + DiskQueue.recordHeaderSize <= ring {
            if case .record(let seq, let len, _, _) = try probe(pos) {
                if best == nil || seq < best!.seq { best = (pos, seq) }
                pos += DiskQueue.recordSize(len)
            } else {
                pos += 8
            }
        }
        return best
    }
}
