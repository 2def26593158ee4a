import Glibc
import Synchronization
import Testing
@testable import GridletQueue

/// Background syncs (QueueBackgroundSync.swift): the owner's thread makes no fdatasync in the
/// steady state, and nothing is counted synced that a sync did not cover.
@Suite struct BackgroundSyncTests {
    /// An executor the test runs by hand: requests wait until `run` syncs (or fails) them.
    final class ManualSyncs {
        var requests: [QueueSyncRequest] = []
        func attach(_ q: DiskQueue) { q.enableBackgroundSync { [self] in requests.append($0) } }
        /// fdatasync + close the oldest request and report it to the queue.
        func run(_ q: DiskQueue, errno e: Int32 = 0, nowMs: Int64) throws(QueueError) {
            let r = requests.removeFirst()
            let rc = e == 0 ? fdatasync(r.fd) : 0
            close(r.fd)
            try q.completeSync(id: r.id, errno: rc == 0 ? e : errno, nowMs: nowMs)
        }
    }

    @Test func batchSyncsGoToTheExecutorAndCountOnlyWhatTheyCovered() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 250))
        let ex = ManualSyncs()
        ex.attach(q)
        let syncsAtOpen = q.fh.inlineSyncs
        try q.append(kind: .telemetry, payload: payload(1), timestampMs: 1000)
        try q.append(kind: .telemetry, payload: payload(2), timestampMs: 1100)
        #expect(ex.requests.isEmpty)               // not due yet
        #expect(q.unsyncedSinceMs == 1000)
        try q.flushIfDue(nowMs: 1250)              // due: handed out, not synced here
        #expect(ex.requests.count == 1)
        #expect(q.syncInFlight)
        #expect(q.unsyncedSinceMs == nil)          // the completion wakes the owner, nothing else is due
        try q.append(kind: .telemetry, payload: payload(3), timestampMs: 1300)
        try q.append(kind: .telemetry, payload: payload(4), timestampMs: 1600)
        try q.flushIfDue(nowMs: 1700)
        #expect(ex.requests.count == 1)            // one in flight at a time
        #expect(q.durableBelowSeq <= 1001)
        let firstSeq = q.records(after: 0, limit: 10).map(\.seq)
        #expect(firstSeq.count == 4)
        try ex.run(q, nowMs: 1700)
        // Synced: the two records written before the request, not the two after it.
        #expect(q.durableBelowSeq == firstSeq[2])
        // The records written meanwhile are due already (1300 + 250 < 1700): the next request goes out at once.
        #expect(ex.requests.count == 1)
        try ex.run(q, nowMs: 1700)
        #expect(q.durableBelowSeq == firstSeq[3] + 1)
        #expect(ex.requests.isEmpty)
        #expect(q.unsyncedSinceMs == nil)
        #expect(q.fh.inlineSyncs == syncsAtOpen)   // none on the owner's thread
        q.close()
        let r = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(r.records(after: 0, limit: 10).map(\.payload) == [payload(1), payload(2), payload(3), payload(4)])
    }

    @Test func alwaysHandsOutARecordOnlyOnceItIsSynced() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .always)
        let ex = ManualSyncs()
        ex.attach(q)
        let syncsAtOpen = q.fh.inlineSyncs
        let seq = try q.append(kind: .response, payload: payload(1), timestampMs: 10)
        #expect(ex.requests.count == 1)
        #expect(q.records(after: 0, limit: 10).isEmpty)   // not on stable storage yet
        let seq2 = try q.append(kind: .telemetry, payload: payload(2), timestampMs: 11)
        try ex.run(q, nowMs: 12)
        #expect(q.records(after: 0, limit: 10).map(\.seq) == [seq])
        #expect(ex.requests.count == 1)                     // the second record's sync
        try ex.run(q, nowMs: 12)
        #expect(q.records(after: 0, limit: 10).map(\.seq) == [seq, seq2])
        #expect(q.fh.inlineSyncs == syncsAtOpen)
    }

    @Test func aFailedBackgroundSyncFailsTheQueueLikeAnInlineOne() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 100))
        let ex = ManualSyncs()
        ex.attach(q)
        try q.append(kind: .telemetry, payload: payload(1), timestampMs: 0)
        try q.flushIfDue(nowMs: 100)
        try ex.run(q, nowMs: 100)
        let kept = q.durableBelowSeq
        try q.append(kind: .telemetry, payload: payload(2), timestampMs: 200)
        try q.append(kind: .response, payload: payload(3), timestampMs: 250)
        try q.flushIfDue(nowMs: 300)
        var failed: QueueError?
        do { try ex.run(q, errno: EIO, nowMs: 300) } catch { failed = error }
        #expect(failed?.errno == EIO)
        #expect(!q.stats.ok)
        #expect(q.stats.ioErrors == 1)
        #expect(throws: failed!) { try q.append(kind: .telemetry, payload: [1], timestampMs: 301) }
        #expect(q.records(after: 0, limit: 10).map(\.seq) == [kept - 1])   // only what was synced
        let recovery = try #require(try q.recoverAfterIOError(nowMs: 400))
        #expect(recovery.losses.map(\.recordClass).sorted() == ["priority", "telemetry"])
        #expect(q.stats.ok)
        // Background syncs go on after the recovery.
        try q.append(kind: .telemetry, payload: payload(4), timestampMs: 500)
        try q.flushIfDue(nowMs: 700)
        #expect(ex.requests.count == 1)
        try ex.run(q, nowMs: 700)
        #expect(q.records(after: 0, limit: 10).last?.payload == payload(4))
    }

    @Test func aResultForAReopenedDescriptorOrAfterANewerSyncIsIgnored() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 100))
        let ex = ManualSyncs()
        ex.attach(q)
        try q.append(kind: .telemetry, payload: payload(1), timestampMs: 0)
        try q.flushIfDue(nowMs: 100)
        try q.append(kind: .telemetry, payload: payload(2), timestampMs: 150)
        try q.sync()                                // inline: covers both
        let all = q.durableBelowSeq
        try ex.run(q, nowMs: 200)                   // the older snapshot: stale
        #expect(q.durableBelowSeq == all)
        #expect(!q.dirty)

        // In flight when an inline sync fails and the queue is reopened: its result is stale.
        try q.append(kind: .telemetry, payload: payload(3), timestampMs: 300)
        try q.flushIfDue(nowMs: 400)
        #expect(ex.requests.count == 1)
        q.fh.injectedSyncErrno = EIO
        #expect(throws: QueueError.self) { try q.sync() }
        _ = try #require(try q.recoverAfterIOError(nowMs: 450))
        try ex.run(q, errno: EIO, nowMs: 460)       // would fail the queue again if it counted
        #expect(q.stats.ok)
        #expect(q.stats.ioErrors == 1)
    }

    @Test func aNewSeqBlockIsReservedEarlyAndTheInlineSyncIsOnlyTheFallback() throws {
        let dir = TempDir(base: "/dev/shm")
        let q = try DiskQueue(directory: dir.path, maxBytes: 1 << 20, sync: .batch(intervalMs: 1_000_000))
        let ex = ManualSyncs()
        ex.attach(q)
        let syncsAtOpen = q.fh.inlineSyncs
        var n = 0
        while ex.requests.isEmpty && n < 1000 {
            try q.append(kind: .telemetry, payload: payload(n, size: 8), timestampMs: 1)
            n += 1
        }
        // Half a block before it runs out, not when the batch interval says so.
        #expect(ex.requests.count == 1)
        #expect(n <= Int(DiskQueue.seqReserveBlock / 2) + 1)
        try ex.run(q, nowMs: 2)
        for i in 0..<900 { try q.append(kind: .telemetry, payload: payload(i, size: 8), timestampMs: 3) }
        #expect(q.fh.inlineSyncs == syncsAtOpen)
        // Never completed: the block runs out and the owner must sync itself (the fallback).
        #expect(ex.requests.count == 1)
        for i in 0..<700 { try q.append(kind: .telemetry, payload: payload(i, size: 8), timestampMs: 4) }
        #expect(q.fh.inlineSyncs > syncsAtOpen)
    }

    @Test func aRingFillingUpAsksForASyncBeforeTheTailWouldWait() throws {
        let dir = TempDir(base: "/dev/shm")
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 1_000_000))
        let ex = ManualSyncs()
        ex.attach(q)
        let syncsAtOpen = q.fh.inlineSyncs
        // Records delivered as fast as written: the head keeps up, the durable span grows.
        var i = 0
        while ex.requests.isEmpty && i < 2000 {
            let seq = try q.append(kind: .telemetry, payload: payload(i, size: 200), timestampMs: 1)
            try q.ack(seq: seq)
            try q.flushIfDue(nowMs: 1)
            i += 1
        }
        #expect(ex.requests.count == 1)
        #expect(q.rings[DiskQueue.T].durableSpan > q.rings[DiskQueue.T].size / 2)
        try ex.run(q, nowMs: 1)
        #expect(q.rings[DiskQueue.T].durableSpan < q.rings[DiskQueue.T].size / 2)
        #expect(q.fh.inlineSyncs == syncsAtOpen)
    }

    @Test func aFullRingDropsWithoutAnInlineSyncWhileTheSyncsKeepUp() throws {
        let dir = TempDir(base: "/dev/shm")
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 100))
        let ex = ManualSyncs()
        ex.attach(q)
        let syncsAtOpen = q.fh.inlineSyncs
        var now: Int64 = 0
        var firstGapSeq: UInt64?
        for i in 0..<3000 {   // ~ten times the telemetry ring, nothing acknowledged (offline)
            now += 10
            try q.append(kind: .telemetry, payload: payload(i, size: 120), timestampMs: now)
            try q.flushIfDue(nowMs: now)
            while !ex.requests.isEmpty { try ex.run(q, nowMs: now) }   // a disk that keeps up
            if firstGapSeq == nil, q.stats.droppedTelemetry > 0 {
                firstGapSeq = q.records(after: 0, limit: 1000).first { $0.kind == .gap }?.seq
            }
        }
        #expect(q.stats.droppedTelemetry > 2000)
        #expect(firstGapSeq != nil)
        #expect(q.fh.inlineSyncs == syncsAtOpen)   // every drop's ordering syncs ran on the executor
        // The bound holds and what is kept is consistent after a reopen: the newest records, and
        // the gap records that report what went.
        let kept = q.records(after: 0, limit: 10000)
        let gaps = kept.filter { $0.kind == .gap }
        #expect(!gaps.isEmpty)
        let lastPayload = kept.last { $0.kind == .telemetry }?.payload
        #expect(lastPayload == payload(2999, size: 120))
        q.close()
        let r = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(r.records(after: 0, limit: 10000).map(\.seq) == kept.map(\.seq))
        #expect(r.stats.skippedOnRecovery == 0)
    }

    @Test func anEarlyDropWhoseSyncHasNotFinishedIsFinishedInOrderWhenTheSpaceRunsOut() throws {
        let dir = TempDir(base: "/dev/shm")
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 1_000_000))
        let ex = ManualSyncs()
        ex.attach(q)
        let syncsAtOpen = q.fh.inlineSyncs
        var i = 0
        while q.earlyDropAfter == nil && i < 5000 {
            try q.append(kind: .telemetry, payload: payload(i, size: 120), timestampMs: 1)
            i += 1
        }
        #expect(q.earlyDropAfter != nil)           // dropped, gap written, checkpoint waiting
        #expect(q.fh.inlineSyncs == syncsAtOpen)
        // The disk never answers: the appends use up the space that was free, then the drop is
        // finished inline (gap synced, checkpoint, synced) and the appends go on.
        for k in 0..<1000 { try q.append(kind: .telemetry, payload: payload(i + k, size: 120), timestampMs: 2) }
        #expect(q.fh.inlineSyncs > syncsAtOpen)
        #expect(q.earlyDropAfter == nil || q.fh.inlineSyncs >= syncsAtOpen + 2)
        q.close()
        let r = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .none)
        #expect(r.records(after: 0, limit: 10000).last?.payload == payload(i + 999, size: 120))
        #expect(r.stats.skippedOnRecovery == 0)
    }

    @Test func nothingIsDroppedBeforeTheGapRecordThatReportsItIsSynced() throws {
        // A checkpoint written meanwhile (an ack's) writes the in-memory head: were the records
        // dropped in memory before their gap record is synced, a power cut could keep that
        // checkpoint and lose the gap record (found by the power-cut loop).
        let dir = TempDir(base: "/dev/shm")
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 1_000_000))
        let ex = ManualSyncs()
        ex.attach(q)
        var i = 0
        while q.earlyDropAfter == nil && i < 5000 {
            try q.append(kind: .telemetry, payload: payload(i, size: 120), timestampMs: 1)
            i += 1
        }
        #expect(q.earlyDropAfter != nil)
        let oldest = try #require(q.records(after: 0, limit: 1).first)
        #expect(oldest.payload == payload(0, size: 120))
        let gap = try #require(q.records(after: 0, limit: 10000).last { $0.kind == .gap })
        #expect(String(decoding: gap.payload, as: UTF8.self).contains("\"from_seq\":\(oldest.seq)"))
        let someAck = q.records(after: 0, limit: 10000).filter { $0.kind == .telemetry }.last!.seq
        try q.ack(seq: someAck)   // a checkpoint while the drop waits
        #expect(q.records(after: 0, limit: 1).first?.seq == oldest.seq)   // still there: the head did not move
        while !ex.requests.isEmpty { try ex.run(q, nowMs: 2) }   // the sync covering the gap
        #expect(q.records(after: 0, limit: 1).first?.seq != oldest.seq)   // now dropped
        #expect(q.stats.droppedTelemetry > 0)
    }

    @Test func theSyncerThreadRunsRequestsAndReportsThem() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .always)
        let results = Mutex<[(UInt64, Int32)]>([])
        let syncer = try QueueSyncer { id, e in results.withLock { $0.append((id, e)) } }
        q.enableBackgroundSync { syncer.submit($0) }
        let seq = try q.append(kind: .telemetry, payload: payload(1), timestampMs: 1)
        var waited = 0
        while results.withLock({ $0.isEmpty }) && waited < 500 { usleep(10_000); waited += 1 }
        let done = results.withLock { r in defer { r.removeAll() }; return r }
        #expect(done.count == 1 && done.first?.1 == 0)
        for (id, e) in done { try q.completeSync(id: id, errno: e, nowMs: 2) }
        #expect(q.durableBelowSeq == seq + 1)
        #expect(q.records(after: 0, limit: 1).map(\.seq) == [seq])
        syncer.stop()
        q.close()
    }
}
