import Glibc
import Testing
@testable import GridletQueue

@Suite struct CRCTests {
    @Test func knownVector() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum(Array("123456789".utf8), range: 0..<9) == 0xE306_9283)
    }
}

@Suite struct BasicTests {
    @Test func appendReadAckInOrder() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path + "/sub/q", maxBytes: 65536, sync: .always)
        let kinds: [RecordKind] = [.telemetry, .ledger, .response, .telemetry, .ledger]
        var seqs: [UInt64] = []
        for (i, k) in kinds.enumerated() {
            seqs.append(try q.append(kind: k, payload: payload(i, size: 10 + i), timestampMs: 1000 + Int64(i)))
        }
        #expect(seqs == [1, 2, 3, 4, 5])
        let all = allRecords(q)
        #expect(all.count == 5)
        for (i, r) in all.enumerated() {
            #expect(r == QueuedRecord(seq: UInt64(i + 1), kind: kinds[i], timestampMs: 1000 + Int64(i),
                                      payload: payload(i, size: 10 + i)))
        }
        #expect(q.records(after: 2, limit: 2).map(\.seq) == [3, 4])
        #expect(q.records(after: 5, limit: 10).isEmpty)
        #expect(q.stats.records == 5)
        #expect(q.stats.oldestTimestampMs == 1000)
        try q.ack(seq: 1)
        try q.ack(seq: 2)
        #expect(allRecords(q).map(\.seq) == [3, 4, 5])
        #expect(q.stats.records == 3)
        #expect(q.stats.oldestTimestampMs == 1002)
        try q.ack(seq: 42)  // unknown: ignored
        try q.ack(seq: 1)  // already acked: ignored
        #expect(q.stats.records == 3)
        for s in [3, 4, 5] as [UInt64] { try q.ack(seq: s) }
        #expect(q.stats.records == 0)
        #expect(q.stats.bytes == 0)
        #expect(q.stats.oldestTimestampMs == nil)
        #expect(q.stats.nextSeq == 6)
        q.close()
        #expect(throws: QueueError.self) { try q.append(kind: .telemetry, payload: [1], timestampMs: 0) }
    }

    @Test func outOfOrderAcksAdvanceOnlyContiguousPrefix() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        for i in 0..<5 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
        let full = q.stats.bytes
        #expect(full == 5 * recordSize(40))
        try q.ack(seq: 3)
        try q.ack(seq: 2)
        #expect(q.stats.bytes == full)  // head did not move
        #expect(q.stats.records == 3)
        #expect(allRecords(q).map(\.seq) == [1, 4, 5])
        try q.ack(seq: 1)
        #expect(q.stats.bytes == 2 * recordSize(40))
        #expect(allRecords(q).map(\.seq) == [4, 5])
        try q.ack(seq: 5)
        #expect(q.stats.bytes == 2 * recordSize(40))
        #expect(allRecords(q).map(\.seq) == [4])
        q.close()
        // The head and the out-of-order ack of 5 both survive: only 4 is sent again.
        let q2 = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(allRecords(q2).map(\.seq) == [4])
        #expect(allRecords(q2).map(\.payload) == [payload(3)])
        #expect(q2.stats.records == 1)
        q2.close()
        let ro = try DiskQueue(readOnlyDirectory: dir.path)
        #expect(allRecords(ro).map(\.seq) == [4])
    }

    @Test func outOfOrderAcksSurviveAKillAndNeverCoverAnUnackedSeqOfTheOtherRing() throws {
        let dir = TempDir()
        do {
            let q = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
            // seq 1 T, 2 P, 3 T, 4 P, 5 T, 6 T
            for (i, k) in [RecordKind.telemetry, .response, .telemetry, .ledger, .telemetry, .telemetry].enumerated() {
                try q.append(kind: k, payload: payload(i), timestampMs: Int64(i))
            }
            for s: UInt64 in [3, 5, 6] { try q.ack(seq: s) }
            #expect(q.ackedBeyond == [3...3, 5...6])
            // No close: a kill leaves what was written (the page cache keeps it).
        }
        let q = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
        #expect(allRecords(q).map(\.seq) == [1, 2, 4])
        #expect(q.stats.records == 3)
        // Acking the heads moves them over the recovered acks; the ranges are forgotten.
        for s: UInt64 in [1, 2, 4] { try q.ack(seq: s) }
        #expect(q.stats.records == 0 && q.stats.bytes == 0)
        #expect(q.ackedBeyond.isEmpty)
    }

    @Test func damagedAckExtensionOrTooManyRangesMeanAtLeastOnce() throws {
        // A flipped byte in the extension: the ranges are ignored, the checkpoint still counts.
        let dir = TempDir()
        do {
            let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
            for i in 0..<5 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
            try q.ack(seq: 1)
            try q.ack(seq: 4)
            q.close()
        }
        let gen0 = getU64(readFile(dir.queueFile, offset: 8, count: 8), 0)
        let gen1 = getU64(readFile(dir.queueFile, offset: 2048 + 8, count: 8), 0)
        let newest = gen0 > gen1 ? 0 : 2048
        let b = readFile(dir.queueFile, offset: newest + 100, count: 1)
        writeFile(dir.queueFile, offset: newest + 100, bytes: [b[0] ^ 0x40])
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(allRecords(q).map(\.seq) == [2, 3, 4, 5])
        q.close()

        // 100 separate ranges: the first 64 are kept, the rest is sent again.
        let dir2 = TempDir()
        do {
            let q = try DiskQueue(directory: dir2.path, maxBytes: 1 << 20, sync: .none)
            for i in 0..<200 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
            for s in stride(from: UInt64(2), through: 200, by: 2) { try q.ack(seq: s) }
            #expect(q.ackedBeyond.count == 100)
            q.close()
        }
        let q2 = try DiskQueue(directory: dir2.path, maxBytes: 1 << 20, sync: .none)
        let left = allRecords(q2).map(\.seq)
        #expect(left == Array(stride(from: UInt64(1), through: 127, by: 2)) + Array(129...200))
    }

    @Test func rejectsOversizedRecordsAndTinyQueues() throws {
        let dir = TempDir()
        #expect(throws: QueueError.self) { _ = try DiskQueue(directory: dir.path, maxBytes: 4096, sync: .none) }
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(throws: QueueError.self) {
            try q.append(kind: .telemetry, payload: [UInt8](repeating: 1, count: 65536 / 4), timestampMs: 0)
        }
        let s = try q.append(kind: .telemetry, payload: [UInt8](repeating: 1, count: q.maxPayloadBytes), timestampMs: 0)
        #expect(s == 1)
        #expect(allRecords(q).first?.payload.count == q.maxPayloadBytes)
    }

    @Test func secondInstanceIsLockedOut() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(throws: QueueError.self) { _ = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none) }
        q.close()
        let q2 = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(q2.stats.records == 0)
    }

    @Test func syncFailureIsStickyAndNotRetried() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        try q.append(kind: .telemetry, payload: [1, 2, 3], timestampMs: 0)
        // Swap the queue's descriptor for read-only /dev/null: fdatasync now fails (EINVAL).
        let devnull = open("/dev/null", O_RDONLY)
        #expect(devnull >= 0)
        #expect(dup2(devnull, q.fh.fd) == q.fh.fd)
        close(devnull)
        var first: QueueError?
        do { try q.sync() } catch { first = error }
        #expect(first != nil)
        #expect(first?.operation == "fdatasync")
        // Every later write reports the same failure (until recoverAfterIOError); an ack is
        // only taken in memory.
        #expect(throws: first!) { try q.sync() }
        #expect(throws: first!) { try q.append(kind: .telemetry, payload: [4], timestampMs: 1) }
        try q.ack(seq: 1)
        #expect(q.stats.records == 0)
        q.close()
    }

    @Test func errorDescriptionIsReadable() {
        let e = QueueError(errno: ENOENT, operation: "open", path: "/x/queue.dat")
        #expect(e.description.contains("open"))
        #expect(e.description.contains("/x/queue.dat"))
        #expect(e.description.contains("No such file"))
    }

    @Test func batchModeSyncsWhenDue() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 1000))
        try q.append(kind: .telemetry, payload: [1], timestampMs: 10_000)
        #expect(q.dirty)
        try q.append(kind: .telemetry, payload: [2], timestampMs: 10_500)
        #expect(q.dirty)
        try q.flushIfDue(nowMs: 10_999)
        #expect(q.dirty)
        try q.flushIfDue(nowMs: 11_000)
        #expect(!q.dirty)
        try q.append(kind: .telemetry, payload: [3], timestampMs: 12_000)
        #expect(q.dirty)
        try q.append(kind: .telemetry, payload: [4], timestampMs: 13_000)  // due on append
        #expect(!q.dirty)
        try q.append(kind: .telemetry, payload: [5], timestampMs: 13_100)
        try q.sync()
        #expect(!q.dirty)
        let a = try DiskQueue(directory: TempDir().path, maxBytes: 65536, sync: .always)
        try a.append(kind: .ledger, payload: [1], timestampMs: 0)
        #expect(!a.dirty)
    }
}

@Suite struct PersistenceTests {
    @Test func reopenKeepsOrderAndSeqContinues() throws {
        let dir = TempDir()
        var maxSeq: UInt64 = 0
        do {
            let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .always)
            for i in 0..<10 { maxSeq = try q.append(kind: .ledger, payload: payload(i), timestampMs: Int64(i)) }
            for s in 1...3 as ClosedRange<UInt64> { try q.ack(seq: s) }
            q.close()
        }
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .always)
        let recs = allRecords(q)
        #expect(recs.map(\.seq) == Array(4...10))
        #expect(recs.map(\.payload) == (3..<10).map { payload($0) })
        #expect(q.stats.nextSeq > maxSeq)
        let s = try q.append(kind: .ledger, payload: [9], timestampMs: 99)
        #expect(s > maxSeq)
        #expect(allRecords(q).last?.seq == s)
    }

    @Test func killStyleReopenWithoutClose() throws {
        let dir = TempDir()
        var returned: [UInt64] = []
        for round in 0..<5 {
            // Never call close(): deinit only closes the fd, like a killed process.
            let q = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
            let before = allRecords(q).map(\.seq)
            #expect(before == returned)
            for i in 0..<(1 + round * 400) {
                returned.append(try q.append(kind: .telemetry, payload: payload(i, size: 8), timestampMs: Int64(i)))
            }
            // Seqs strictly increase across restarts.
            #expect(zip(returned, returned.dropFirst()).allSatisfy { $0 < $1 })
            // Ack the first half so the head moves.
            let half = returned.count / 2
            for s in returned[0..<half] { try q.ack(seq: s) }
            returned.removeFirst(half)
            #expect(q.stats.droppedRecords == 0)
        }
    }

    @Test func diskUsageStaysBounded() throws {
        let dir = TempDir()
        let maxBytes = 70_000
        let q = try DiskQueue(directory: dir.path, maxBytes: maxBytes, sync: .none)
        for i in 0..<3000 {
            try q.append(kind: .telemetry, payload: payload(i, size: 100), timestampMs: Int64(i))
            if i % 500 == 0 {
                let st = fileStat(dir.queueFile)
                #expect(Int(st.st_size) <= maxBytes + 4096)
                #expect(Int(st.st_blocks) * 512 <= maxBytes + 4096)
            }
        }
        q.close()
        let st = fileStat(dir.queueFile)
        #expect(Int(st.st_size) <= maxBytes + 4096)
        #expect(Int(st.st_blocks) * 512 <= maxBytes + 4096)
        #expect(Int(st.st_blocks) * 512 >= 65536)  // preallocated
        // Reopen after filling: still bounded, still consistent.
        let q2 = try DiskQueue(directory: dir.path, maxBytes: maxBytes, sync: .none)
        #expect(q2.stats.records > 0)
        #expect(fileStat(dir.queueFile).st_size == off_t((maxBytes & ~4095) + 4096))
    }

    @Test func fullQueueDropsOldestAndRecordsGaps() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        var dataSeqs: [UInt64] = []
        for i in 0..<1000 {
            dataSeqs.append(try q.append(kind: .telemetry, payload: payload(i, size: 200), timestampMs: Int64(i)))
        }
        let recs = allRecords(q)
        let live = recs.filter { $0.kind != .gap }
        let gaps = recs.filter { $0.kind == .gap }.map { parseGap($0.payload) }
        #expect(!gaps.isEmpty)
        #expect(gaps.allSatisfy { $0 != nil })
        let g = gaps.compactMap { $0 }
        let liveSeqs = Set(live.map(\.seq))
        // Live data is the newest suffix, in order and intact.
        #expect(live.map(\.seq) == Array(dataSeqs.suffix(live.count)))
        for r in live {
            let i = dataSeqs.firstIndex(of: r.seq)!
            #expect(r.payload == payload(i, size: 200))
        }
        let droppedSeqs = dataSeqs.filter { !liveSeqs.contains($0) }
        #expect(!droppedSeqs.isEmpty)
        #expect(q.stats.droppedRecords == droppedSeqs.count)
        #expect(g.reduce(0) { $0 + $1.count } == UInt64(droppedSeqs.count))
        for s in droppedSeqs {
            #expect(g.contains { $0.from <= s && s <= $0.to }, "dropped seq \(s) not covered by a gap")
        }
        for s in liveSeqs {
            #expect(!g.contains { $0.from <= s && s <= $0.to })
        }
        #expect(g.map(\.from).min() == 1)
        #expect(q.stats.bytes <= 65536)
        // The first overflow: fill a fresh queue exactly to the first drop.
        let dir2 = TempDir()
        let q2 = try DiskQueue(directory: dir2.path, maxBytes: 65536, sync: .none)
        var n = 0
        while q2.stats.droppedRecords == 0 {
            try q2.append(kind: .ledger, payload: payload(n, size: 200), timestampMs: Int64(n))
            n += 1
        }
        let r2 = allRecords(q2)
        let gap = r2.first { $0.kind == .gap }
        #expect(gap != nil)
        let gi = parseGap(gap!.payload)!
        let dropped2 = q2.stats.droppedRecords
        #expect(gi == GapInfo(from: 1, to: UInt64(dropped2), count: UInt64(dropped2)))
        #expect(r2.first?.seq == UInt64(dropped2 + 1))
        #expect(gap!.seq == UInt64(n))  // gap got the seq just before the new record
        #expect(r2.last?.seq == UInt64(n + 1))
    }
}

@Suite struct CorruptionTests {
    static let n = 5
    static let len = 40

    /// Fresh queue with `n` records of `len` bytes written from ring offset 0; returns the dir.
    func makeQueue() throws -> TempDir {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        for i in 0..<Self.n { try q.append(kind: .response, payload: payload(i, size: Self.len), timestampMs: Int64(i)) }
        q.close()
        return dir
    }

    @Test func tornTailAtEveryByte() throws {
        let size = recordSize(Self.len)
        let lastOffset = 4096 + (Self.n - 1) * size
        for k in 0..<size {
            for cut in [true, false] {
                let dir = try makeQueue()
                if cut {
                    truncateFile(dir.queueFile, to: lastOffset + k)
                } else {
                    writeFile(dir.queueFile, offset: lastOffset + k, bytes: [UInt8](repeating: 0, count: size - k))
                }
                let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
                let recs = allRecords(q)
                #expect(recs.map(\.seq) == (1...UInt64(Self.n - 1)).map { $0 }, "k=\(k) cut=\(cut)")
                #expect(recs.map(\.payload) == (0..<(Self.n - 1)).map { payload($0, size: Self.len) })
                #expect(q.stats.skippedOnRecovery == (k >= 9 ? 1 : 0), "k=\(k) cut=\(cut)")
                // The queue keeps working and a reopen sees the new record after the intact ones.
                let s = try q.append(kind: .gap, payload: [7], timestampMs: 7)
                #expect(s > UInt64(Self.n))
                q.close()
                let q2 = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
                #expect(allRecords(q2).map(\.seq) == (1...UInt64(Self.n - 1)).map { $0 } + [s])
                #expect(q2.stats.skippedOnRecovery == 0)
            }
        }
    }

    @Test func singleByteFlipInMiddleRecordLosesOnlyThatRecord() throws {
        let size = recordSize(Self.len)
        let victim = 2  // seq 3
        for k in 0..<(32 + Self.len) {
            let dir = try makeQueue()
            let off = 4096 + victim * size + k
            let b = readFile(dir.queueFile, offset: off, count: 1)
            writeFile(dir.queueFile, offset: off, bytes: [b[0] ^ 0x5A])
            let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
            let recs = allRecords(q)
            #expect(recs.map(\.seq) == [1, 2, 4, 5], "k=\(k)")
            #expect(recs.map(\.payload) == [0, 1, 3, 4].map { payload($0, size: Self.len) })
            #expect(q.stats.skippedOnRecovery == 1, "k=\(k)")
        }
    }

    @Test func corruptCheckpointSlotFallsBackToTheOther() throws {
        for corruptNewest in [true, false] {
            let dir = TempDir()
            do {
                let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
                for i in 0..<10 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
                for s in 1...3 as ClosedRange<UInt64> { try q.ack(seq: s) }
                q.close()
            }
            let gen0 = getU64(readFile(dir.queueFile, offset: 8, count: 8), 0)
            let gen1 = getU64(readFile(dir.queueFile, offset: 2048 + 8, count: 8), 0)
            #expect(gen0 != gen1)
            let newestSlot = gen0 > gen1 ? 0 : 2048
            let target = corruptNewest ? newestSlot : (newestSlot == 0 ? 2048 : 0)
            let b = readFile(dir.queueFile, offset: target + 30, count: 1)
            writeFile(dir.queueFile, offset: target + 30, bytes: [b[0] ^ 0x01])
            let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
            // Newest checkpoint has the head at seq 4; the one before it at seq 3.
            #expect(allRecords(q).map(\.seq) == Array((corruptNewest ? 3 : 4)...10), "corruptNewest=\(corruptNewest)")
            #expect(q.stats.skippedOnRecovery == 0)
            #expect(try q.append(kind: .telemetry, payload: [1], timestampMs: 0) > 10)
        }
    }

    @Test func bothCheckpointsCorruptStillOpens() throws {
        let dir = TempDir()
        do {
            let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
            for i in 0..<10 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
            try q.ack(seq: 1)
            q.close()
        }
        writeFile(dir.queueFile, offset: 0, bytes: [UInt8](repeating: 0xEE, count: 4096))
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        // Without a checkpoint everything still in the ring comes back (at-least-once).
        #expect(allRecords(q).map(\.seq) == Array(1...10))
        #expect(try q.append(kind: .telemetry, payload: [1], timestampMs: 0) > 10)
        // Garbage file: opens empty.
        let dir2 = TempDir()
        writeFile2(dir2.queueFile, bytes: (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 131) })
        let q2 = try DiskQueue(directory: dir2.path, maxBytes: 65536, sync: .none)
        #expect(q2.stats.records == 0)
        #expect(try q2.append(kind: .ledger, payload: [1], timestampMs: 0) == 1)
        #expect(fileStat(dir2.queueFile).st_size == off_t(65536 + 4096))
    }

    func writeFile2(_ path: String, bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, bytes.count) }
        close(fd)
    }
}

@Suite struct WrapTests {
    @Test func manyLapsWithAcksAndReopens() throws {
        let dir = TempDir()
        var rng = SplitMix(seed: 42)
        var expected: [(seq: UInt64, payload: [UInt8])] = []
        var q: DiskQueue? = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        var totalBytes = 0
        var i = 0
        while totalBytes < 65536 * 12 {
            let len = Int(rng.next() % 3000)
            let p = payload(i, size: len)
            let s = try q!.append(kind: .telemetry, payload: p, timestampMs: Int64(i))
            expected.append((s, p))
            totalBytes += recordSize(len)
            i += 1
            // Keep ~20 in flight; ack mostly in order, sometimes the 2nd before the 1st.
            if expected.count > 20 {
                if rng.next() % 4 == 0 {
                    try q!.ack(seq: expected[1].seq)
                    try q!.ack(seq: expected[0].seq)
                    expected.removeFirst(2)
                } else {
                    try q!.ack(seq: expected[0].seq)
                    expected.removeFirst()
                }
            }
            if i % 97 == 0 {
                let recs = allRecords(q!)
                #expect(recs.map(\.seq) == expected.map(\.seq))
                #expect(recs.map(\.payload) == expected.map(\.payload))
            }
            if i % 251 == 0 {
                if rng.next() % 2 == 0 { q!.close() }
                q = nil
                q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
                let recs = allRecords(q!)
                #expect(recs.map(\.seq) == expected.map(\.seq), "reopen at \(i)")
                #expect(recs.map(\.payload) == expected.map(\.payload))
                #expect(q!.stats.skippedOnRecovery == 0)
            }
        }
        #expect(q!.stats.droppedRecords == 0)
        #expect(i > 500)
    }

    @Test func resizeMigratesRecords() throws {
        let dir = TempDir()
        do {
            let q = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
            for i in 0..<100 { try q.append(kind: .telemetry, payload: payload(i, size: 1000), timestampMs: Int64(i)) }
            #expect(q.stats.droppedRecords == 0)
            q.close()
        }
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(fileStat(dir.queueFile).st_size == off_t(65536 + 4096))
        let recs = allRecords(q)
        let data = recs.filter { $0.kind != .gap }
        #expect(!data.isEmpty)
        #expect(data.last?.seq == 100)
        #expect(data.map(\.seq) == Array(UInt64(101 - data.count)...100))
        #expect(data.allSatisfy { $0.payload == payload(Int($0.seq) - 1, size: 1000) })
        let droppedN = 100 - data.count
        #expect(q.stats.droppedRecords == droppedN)
        #expect(q.stats.droppedTelemetry == droppedN)
        // The migration reports what it dropped with a gap record.
        let gaps = recs.filter { $0.kind == .gap }.compactMap { parseGap($0.payload) }
        #expect(gaps == [GapInfo(from: 1, to: UInt64(droppedN), count: UInt64(droppedN))])
        #expect(try q.append(kind: .ledger, payload: [1], timestampMs: 0) > 100)
        q.close()
        let q2 = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(allRecords(q2).count == recs.count + 1)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}


@Suite struct AckBatchTests {
    /// A burst of PUBACKs costs one checkpoint write, and survives a reopen like single acks.
    @Test func aBatchOfAcksWritesOneCheckpoint() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        for i in 0..<8 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
        let before = q.generation
        try q.ack(seqs: [1, 2, 3, 6, 6, 99])
        #expect(q.generation == before + 1)
        #expect(allRecords(q).map(\.seq) == [4, 5, 7, 8])
        try q.ack(seqs: [1, 2])          // nothing new: no checkpoint at all
        #expect(q.generation == before + 1)
        q.close()
        let q2 = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(allRecords(q2).map(\.seq) == [4, 5, 7, 8])
        q2.close()
    }
}
