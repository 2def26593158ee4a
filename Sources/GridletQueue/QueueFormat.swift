/// The on-disk encoding of the queue file: the header block with its checkpoint slots (and the
/// acked-ranges extension) and the records in the rings. Everything here is pure byte layout;
/// what the queue does with it is in DiskQueue.swift.
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
extension DiskQueue {
    static let headerSize = 4096
    static let recordHeaderSize = 32
    static let recordMagic: UInt32 = 0x3152_4447  // "GDR1"
    static let wrapMagic: UInt32 = 0x5752_4447  // "GDRW"
    static let checkpointMagic: UInt32 = 0x5043_5147  // "GQCP"
    static let checkpointVersion: UInt32 = 2
    static let slotOffsets = [0, 2048]
    static let maxAckedRanges = 64
    static let ackedMagic: UInt32 = 0x4B41_5147  // "GQAK"

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

    @inline(__always) static func recordSize(_ len: Int) -> Int {
        recordHeaderSize + ((len + 7) & ~7)
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
}
