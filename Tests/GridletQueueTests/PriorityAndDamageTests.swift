import Glibc
import Testing
@testable import GridletQueue

/// Payload whose bytes are derived from its seq-independent index `i` and carry `i` itself,
/// so any record can be checked for integrity on its own.
func tagged(_ i: Int, size: Int) -> [UInt8] {
    var p = payload(i, size: max(size, 4))
    p[0] = UInt8(truncatingIfNeeded: i); p[1] = UInt8(truncatingIfNeeded: i >> 8)
    p[2] = UInt8(truncatingIfNeeded: i >> 16); p[3] = UInt8(truncatingIfNeeded: size)
    return p
}

func gapClass(_ p: [UInt8]) -> String? {
    let s = String(decoding: p, as: UTF8.self)
    if s.contains("\"class\":\"telemetry\"") { return "telemetry" }
    if s.contains("\"class\":\"priority\"") { return "priority" }
    return nil
}

@Suite struct PriorityTests {
    @Test func telemetryFloodNeverDropsPriorityRecords() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
        #expect(q.priorityRingSize == 32768)
        #expect(q.stats.priorityCapacity == 32768)
        #expect(q.stats.telemetryCapacity == 256 * 1024 - 32768)
        var prio: [UInt64: [UInt8]] = [:]
        var tele: [UInt64: [UInt8]] = [:]
        var rng = SplitMix(seed: 7)
        for i in 0..<5000 {
            // ~1 in 50 records is a response or ledger record; telemetry floods 20x the ring.
            if rng.next() % 50 == 0 {
                let p = tagged(i, size: 60 + Int(rng.next() % 100))
                prio[try q.append(kind: i % 2 == 0 ? .ledger : .response, payload: p, timestampMs: Int64(i))] = p
            } else {
                let p = tagged(i, size: 800 + Int(rng.next() % 400))
                tele[try q.append(kind: .telemetry, payload: p, timestampMs: Int64(i))] = p
            }
        }
        let st = q.stats
        #expect(st.droppedPriority == 0)
        #expect(st.droppedTelemetry > 3000)
        #expect(st.droppedRecords == st.droppedTelemetry)
        let recs = allRecords(q)
        #expect(zip(recs, recs.dropFirst()).allSatisfy { $0.seq < $1.seq }, "merged view in seq order")
        // Every priority record is present and intact.
        let present = Dictionary(uniqueKeysWithValues: recs.map { ($0.seq, $0) })
        for (s, p) in prio { #expect(present[s]?.payload == p, "priority seq \(s)") }
        // Telemetry: a newest suffix survives; gap records of class telemetry count exactly the rest.
        let liveTele = recs.filter { $0.kind == .telemetry }
        for r in liveTele { #expect(tele[r.seq] == r.payload) }
        let teleSorted = tele.keys.sorted()
        #expect(liveTele.map(\.seq) == Array(teleSorted.suffix(liveTele.count)))
        let gaps = recs.filter { $0.kind == .gap }
        #expect(gaps.allSatisfy { gapClass($0.payload) == "telemetry" })
        let g = gaps.compactMap { parseGap($0.payload) }
        #expect(g.count == gaps.count)
        #expect(g.reduce(0) { $0 + $1.count } == UInt64(tele.count - liveTele.count))
        for s in teleSorted.prefix(tele.count - liveTele.count) {
            #expect(g.contains { $0.from <= s && s <= $0.to }, "dropped \(s) not covered")
        }
        #expect(st.records == recs.count)
        #expect(st.priorityRecords + st.telemetryRecords == st.records)
        #expect(st.priorityBytes <= 32768 && st.telemetryBytes <= 256 * 1024 - 32768)
        // Reopen: the same view.
        q.close()
        let q2 = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
        #expect(allRecords(q2) == recs)
        #expect(q2.stats.skippedOnRecovery == 0)
    }

    @Test func priorityRingFullDropsOldestPriorityWithItsOwnGap() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        var tele: [UInt64] = []
        for i in 0..<5 { tele.append(try q.append(kind: .telemetry, payload: tagged(i, size: 100), timestampMs: 0)) }
        var prio: [UInt64] = []
        for i in 0..<400 { prio.append(try q.append(kind: .ledger, payload: tagged(i, size: 200), timestampMs: 1)) }
        let recs = allRecords(q)
        // Telemetry untouched by priority pressure.
        #expect(recs.filter { $0.kind == .telemetry }.map(\.seq) == tele)
        let gaps = recs.filter { $0.kind == .gap }
        #expect(!gaps.isEmpty)
        #expect(gaps.allSatisfy { gapClass($0.payload) == "priority" })
        let g = gaps.compactMap { parseGap($0.payload) }
        let live = Set(recs.map(\.seq))
        let dropped = prio.filter { !live.contains($0) }
        #expect(q.stats.droppedPriority == dropped.count)
        #expect(q.stats.droppedTelemetry == 0)
        #expect(g.reduce(0) { $0 + $1.count } == UInt64(dropped.count))
        for s in dropped { #expect(g.contains { $0.from <= s && s <= $0.to }) }
        #expect(q.stats.priorityBytes <= q.priorityRingSize)
        // Priority records larger than a quarter of the priority ring are refused, telemetry of that size is not.
        #expect(q.maxPayloadBytes(for: .response) == 16384 / 4 - 32)
        #expect(throws: QueueError.self) {
            try q.append(kind: .response, payload: [UInt8](repeating: 0, count: 16384 / 4), timestampMs: 0)
        }
        try q.append(kind: .telemetry, payload: [UInt8](repeating: 0, count: 16384 / 4), timestampMs: 0)
    }

    @Test func migratesVersion1SingleRingFile() throws {
        let dir = TempDir()
        let ring = 128 * 1024
        // Hand-built version-1 file: one ring, head at offset 0 / seq 3 (seqs 1, 2 acked).
        var file = [UInt8](repeating: 0, count: 4096 + ring)
        var ck = [UInt8](repeating: 0, count: 52)
        putU32(&ck, 0, DiskQueue.checkpointMagic); putU32(&ck, 4, 1)
        putU64(&ck, 8, 7); putU64(&ck, 16, UInt64(ring))
        putU64(&ck, 24, 2 * 96); putU64(&ck, 32, 3); putU64(&ck, 40, 1001)
        putU32(&ck, 48, CRC32C.checksum(ck, range: 0..<48))
        file.replaceSubrange(0..<52, with: ck)
        var off = 4096
        var expected: [QueuedRecord] = []
        let kinds: [RecordKind] = [.telemetry, .ledger, .response, .telemetry, .gap]
        for s in 1...40 as ClosedRange<UInt64> {
            let kind = kinds[Int(s) % kinds.count]
            let p = kind == .gap ? Array("{\"from_seq\":1,\"to_seq\":1,\"count\":1,\"reason\":\"queue_full\"}".utf8)
                : tagged(Int(s), size: 60)
            let rec = DiskQueue.encodeRecord(magic: DiskQueue.recordMagic, seq: s, kind: kind.rawValue,
                                             timestampMs: Int64(s), payload: p)
            if s == 1 || s == 2 { #expect(rec.count == 96) }
            file.replaceSubrange(off..<(off + rec.count), with: rec)
            off += rec.count
            if s >= 3 { expected.append(QueuedRecord(seq: s, kind: kind, timestampMs: Int64(s), payload: p)) }
        }
        let fd = open(dir.queueFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = file.withUnsafeBytes { write(fd, $0.baseAddress!, file.count) }
        close(fd)
        // Read-only view of the old file first: nothing is written.
        let ro = try DiskQueue(readOnlyDirectory: dir.path)
        #expect(allRecords(ro) == expected)
        ro.close()
        #expect(readFile(dir.queueFile, offset: 0, count: 4096 + ring) == file)

        let q = try DiskQueue(directory: dir.path, maxBytes: ring, sync: .always)
        #expect(allRecords(q) == expected)
        #expect(q.stats.droppedRecords == 0)
        #expect(getU32(readFile(dir.queueFile, offset: 0, count: 8), 4) == 2 || getU32(readFile(dir.queueFile, offset: 2048, count: 8), 4) == 2)
        #expect(fileStat(dir.queueFile).st_size == off_t(4096 + ring))
        let s = try q.append(kind: .response, payload: [1, 2], timestampMs: 9)
        #expect(s >= 1001)
        q.close()
        let q2 = try DiskQueue(directory: dir.path, maxBytes: ring, sync: .none)
        #expect(allRecords(q2).map(\.seq) == expected.map(\.seq) + [s])
    }

    @Test func readOnlyOpenNeedsTheLockAndWritesNothing() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        for i in 0..<20 { try q.append(kind: i % 3 == 0 ? .response : .telemetry, payload: tagged(i, size: 50), timestampMs: Int64(i)) }
        try q.ack(seq: 1)
        #expect(throws: QueueError.self) { _ = try DiskQueue(readOnlyDirectory: dir.path) }
        let before = allRecords(q)
        let stats = q.stats
        q.close()
        let bytes = readFile(dir.queueFile, offset: 0, count: 4096 + 65536)
        let ro = try DiskQueue(readOnlyDirectory: dir.path)
        #expect(allRecords(ro) == before)
        #expect(ro.stats.records == stats.records)
        #expect(ro.stats.nextSeq >= stats.nextSeq)
        #expect(throws: QueueError.self) { try ro.append(kind: .telemetry, payload: [1], timestampMs: 0) }
        #expect(throws: QueueError.self) { try ro.ack(seq: 2) }
        // A writer cannot open while the reader holds the shared lock.
        #expect(throws: QueueError.self) { _ = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none) }
        ro.close()
        #expect(readFile(dir.queueFile, offset: 0, count: 4096 + 65536) == bytes)
        #expect(throws: QueueError.self) { _ = try DiskQueue(readOnlyDirectory: dir.path + "/nope") }
    }
}

/// Template queue for damage tests: records of both classes, their positions, the file bytes.
struct Template {
    struct Rec { var seq: UInt64; var kind: RecordKind; var fileOffset: Int; var length: Int; var payload: [UInt8]; var ring: Int }
    var bytes: [UInt8]
    var recs: [Rec]

    static func make(count: Int, seed: UInt64) throws -> Template {
        let dir = TempDir(base: "/dev/shm")
        var rng = SplitMix(seed: seed)
        var recs: [Rec] = []
        do {
            let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
            for i in 0..<count {
                let kind: RecordKind = [.telemetry, .telemetry, .ledger, .response][Int(rng.next() % 4)]
                let p = tagged(i, size: 4 + Int(rng.next() % 300))
                let s = try q.append(kind: kind, payload: p, timestampMs: Int64(i))
                let x = DiskQueue.ringIndex(kind)
                let e = q.rings[x].entries.last!
                recs.append(Rec(seq: s, kind: kind, fileOffset: q.rings[x].base + e.offset, length: p.count, payload: p, ring: x))
            }
            q.close()
        }
        // Reopen once so that both checkpoint slots describe the same heads and high-water mark.
        try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none).close()
        return Template(bytes: readFile(dir.queueFile, offset: 0, count: 4096 + 65536), recs: recs)
    }

    func write(to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, bytes.count) }
        close(fd)
    }

    /// Seq of the record before `r` in its ring (0 for the first).
    func previousSeq(_ r: Rec) -> UInt64 {
        recs.last { $0.ring == r.ring && $0.seq < r.seq }?.seq ?? 0
    }

    func isLastInRing(_ r: Rec) -> Bool { !recs.contains { $0.ring == r.ring && $0.seq > r.seq } }
}

@Suite struct DamageTests {
    /// Truncate the file at every byte offset of the last 4 telemetry records (the telemetry
    /// ring is the end of the file): the intact records before the cut survive, the cut record
    /// and everything after it is lost, and the skipped count follows the documented rule.
    @Test func truncateAtEveryOffsetOfTheLastRecords() throws {
        let t = try Template.make(count: 40, seed: 11)
        let tele = t.recs.filter { $0.kind == .telemetry }
        let lastN = Array(tele.suffix(4))
        let dir = TempDir(base: "/dev/shm")
        var trials = 0
        for victim in lastN {
            for k in 0..<(32 + ((victim.length + 7) & ~7)) {
                let cut = victim.fileOffset + k
                t.write(to: dir.queueFile)
                truncateFile(dir.queueFile, to: cut)
                let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
                let survives = k >= 32 + victim.length  // only padding lost
                let expected = t.recs.filter { $0.ring != 1 || $0.seq < victim.seq || (survives && $0.seq == victim.seq) }
                let got = allRecords(q)
                #expect(got.map(\.seq) == expected.map(\.seq), "cut at \(cut) (k=\(k) of seq \(victim.seq))")
                #expect(got.map(\.payload) == expected.map(\.payload))
                // Damaged header counted iff magic and length survived and the surviving seq
                // bytes still read as a seq above the previous one.
                var skip = 0
                if !survives && k >= 8 {
                    let keptSeqBytes = min(8, k - 8)
                    let mask: UInt64 = keptSeqBytes == 8 ? ~0 : (UInt64(1) << (8 * UInt64(keptSeqBytes))) - 1
                    if victim.seq & mask > t.previousSeq(victim) { skip = 1 }
                }
                #expect(q.stats.skippedOnRecovery == skip, "cut at k=\(k) of seq \(victim.seq)")
                #expect(fileStat(dir.queueFile).st_size == off_t(4096 + 65536))
                // Still works: append and reopen.
                let s = try q.append(kind: .telemetry, payload: [9], timestampMs: 0)
                q.close()
                let q2 = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
                #expect(allRecords(q2).map(\.seq) == expected.map(\.seq) + [s])
                #expect(q2.stats.skippedOnRecovery == 0)
                q2.close()
                trials += 1
            }
        }
        #expect(trials > 200)
    }

    /// Flip one byte at a random place of the whole file (header, both rings, free space),
    /// 400 times with a fixed seed: open succeeds, exactly the record whose bytes were hit is
    /// lost, and the skipped count is right.
    @Test func randomSingleByteFlipsAcrossTheFile() throws {
        for seed in [1, 2] as [UInt64] {
            let t = try Template.make(count: 60, seed: 100 + seed)
            var rng = SplitMix(seed: seed)
            let dir = TempDir(base: "/dev/shm")
            var hitRecords = 0
            for _ in 0..<200 {
                let off = Int(rng.next() % UInt64(t.bytes.count))
                let mask = UInt8(1 + rng.next() % 255)
                t.write(to: dir.queueFile)
                writeFile(dir.queueFile, offset: off, bytes: [t.bytes[off] ^ mask])
                let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
                let victim = t.recs.first { off >= $0.fileOffset && off < $0.fileOffset + 32 + $0.length }
                var expected = t.recs
                var skip = 0
                if let v = victim {
                    hitRecords += 1
                    expected.removeAll { $0.seq == v.seq }
                    let k = off - v.fileOffset
                    if !t.isLastInRing(v) {
                        skip = 1
                    } else if k < 4 {
                        skip = 0  // magic gone: torn tail
                    } else if k < 8 {
                        var len = UInt32(v.length)
                        len ^= UInt32(mask) << (8 * UInt32(k - 4))
                        let ringEnd = v.ring == 0 ? 4096 + 16384 : 4096 + 65536
                        let sane = Int(len) <= (v.ring == 0 ? 16384 : 65536 - 16384) / 4 - 32
                            && v.fileOffset + 32 + ((Int(len) + 7) & ~7) <= ringEnd
                        skip = sane ? 1 : 0
                    } else if k < 16 {
                        let seq = v.seq ^ (UInt64(mask) << (8 * UInt64(k - 8)))
                        skip = seq > t.previousSeq(v) ? 1 : 0
                    } else {
                        skip = 1
                    }
                }
                let got = allRecords(q)
                #expect(got.map(\.seq) == expected.map(\.seq), "flip at \(off) victim \(victim.map { "\($0.seq)" } ?? "-")")
                #expect(got.map(\.payload) == expected.map(\.payload))
                #expect(q.stats.skippedOnRecovery == skip, "flip at \(off) victim \(victim.map { "\($0.seq) k=\(off - $0.fileOffset)" } ?? "-")")
                #expect(try q.append(kind: .ledger, payload: [1], timestampMs: 0) > t.recs.last!.seq)
                q.close()
            }
            #expect(hitRecords > 20)
        }
    }
}
