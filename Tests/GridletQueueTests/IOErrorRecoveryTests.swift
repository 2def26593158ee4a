import Glibc
import Testing
@testable import GridletQueue

/// A failed fdatasync (injected through `FileHandle.injectedSyncErrno`) must not stop the queue
/// for good: `recoverAfterIOError` reopens the file, keeps what was synced, gives up what was
/// not and reports it with an `io_error` gap record (SPEC §4: the same data is never synced again).
@Suite struct IOErrorRecoveryTests {
    static func text(_ r: QueuedRecord) -> String { String(decoding: r.payload, as: UTF8.self) }

    @Test func recoversKeepsSyncedRecordsAndReportsTheUnsyncedOnesWithAGap() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 1000))
        for i in 1...5 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
        try q.append(kind: .response, payload: payload(6), timestampMs: 6)
        try q.sync()
        try q.ack(seq: 1)
        try q.ack(seq: 3)   // out of order: kept as an acked range
        // Not synced yet (batch): 7 and 8 telemetry, 9 a response, 10 telemetry acked at once.
        for i in 7...8 { try q.append(kind: .telemetry, payload: payload(i), timestampMs: Int64(i)) }
        try q.append(kind: .response, payload: payload(9), timestampMs: 9)
        try q.append(kind: .telemetry, payload: payload(10), timestampMs: 10)
        try q.ack(seq: 10)

        q.fh.injectedSyncErrno = EIO
        var failed: QueueError?
        do { try q.sync() } catch { failed = error }
        #expect(failed?.errno == EIO)
        #expect(!q.stats.ok)
        #expect(throws: failed!) { try q.append(kind: .telemetry, payload: [1], timestampMs: 11) }
        // Until the recovery, only synced records are handed out.
        #expect(allRecords(q).map(\.seq) == [2, 4, 5, 6])
        // PUBACKs keep coming while the queue is failed: taken in memory, so 4 (synced) is not
        // sent again and 8 (not synced, but delivered) is not reported lost.
        try q.ack(seq: 4)
        try q.ack(seq: 8)

        let recovery = try #require(try q.recoverAfterIOError(nowMs: 12))
        #expect(recovery.error == failed)
        #expect(recovery.losses == [
            .init(recordClass: "telemetry", fromSeq: 7, toSeq: 7, count: 1, gapSeq: 11),
            .init(recordClass: "priority", fromSeq: 9, toSeq: 9, count: 1, gapSeq: 12),
        ])
        #expect(recovery.description.contains("1 telemetry record(s) in seq 7-7 given up, reported by gap record seq 11"))
        let st = q.stats
        #expect(st.ok)
        #expect(st.ioErrors == 1)
        #expect(st.lastIOError?.errno == EIO)
        #expect(try q.recoverAfterIOError(nowMs: 13) == nil)   // nothing left to recover

        // Synced records survive (acks included); the unsynced ones are replaced by the gaps.
        func check(_ q: DiskQueue, extra: [UInt64]) {
            let recs = allRecords(q)
            #expect(recs.map(\.seq) == [2, 5, 6, 11, 12] + extra)
            #expect(recs.prefix(3).map(\.payload) == [payload(2), payload(5), payload(6)])
            #expect(recs.count > 4 && Self.text(recs[3]) == #"{"from_seq":7,"to_seq":7,"count":1,"reason":"io_error","class":"telemetry"}"#)
            #expect(recs.count > 4 && Self.text(recs[4]) == #"{"from_seq":9,"to_seq":9,"count":1,"reason":"io_error","class":"priority"}"#)
        }
        check(q, extra: [])
        // Appends work again, seqs go on above everything given up, and it all is durable.
        #expect(try q.append(kind: .telemetry, payload: payload(13), timestampMs: 13) == 13)
        try q.sync()
        check(q, extra: [13])
        q.close()
        let reopened = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 1000))
        check(reopened, extra: [13])
        #expect(reopened.stats.nextSeq > 13)
    }

    @Test func failedAppendInAlwaysModeIsGivenUpAndNothingElse() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .always)
        for i in 1...3 { try q.append(kind: .ledger, payload: payload(i), timestampMs: Int64(i)) }
        q.fh.injectedSyncErrno = EIO
        #expect(throws: QueueError.self) { try q.append(kind: .ledger, payload: payload(4), timestampMs: 4) }
        let recovery = try #require(try q.recoverAfterIOError(nowMs: 5))
        #expect(recovery.losses == [.init(recordClass: "priority", fromSeq: 4, toSeq: 4, count: 1, gapSeq: 5)])
        #expect(try q.append(kind: .ledger, payload: payload(6), timestampMs: 6) == 6)
        #expect(allRecords(q).map(\.seq) == [1, 2, 3, 5, 6])
    }

    @Test func nothingUnsyncedPendingMeansNoGap() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .batch(intervalMs: 1000))
        try q.append(kind: .telemetry, payload: payload(1), timestampMs: 1)
        try q.sync()
        try q.append(kind: .telemetry, payload: payload(2), timestampMs: 2)
        try q.ack(seq: 2)   // delivered before the failure: not lost
        q.fh.injectedSyncErrno = EIO
        #expect(throws: QueueError.self) { try q.sync() }
        let recovery = try #require(try q.recoverAfterIOError(nowMs: 3))
        #expect(recovery.losses.isEmpty)
        #expect(allRecords(q).map(\.seq) == [1])
        #expect(try q.append(kind: .telemetry, payload: payload(3), timestampMs: 3) == 3)
    }

    @Test func aReopenThatFailsLeavesTheQueueFailed() throws {
        let dir = TempDir()
        let q = try DiskQueue(directory: dir.path, maxBytes: 65536, sync: .always)
        try q.append(kind: .telemetry, payload: payload(1), timestampMs: 1)
        q.fh.injectedSyncErrno = EIO
        #expect(throws: QueueError.self) { try q.append(kind: .telemetry, payload: payload(2), timestampMs: 2) }
        // queue.dat cannot be opened for writing any more: a directory stands in its place.
        #expect(rename(dir.queueFile, dir.path + "/moved.dat") == 0)
        #expect(mkdir(dir.queueFile, 0o755) == 0)
        var reopenError: QueueError?
        do { _ = try q.recoverAfterIOError(nowMs: 3) } catch { reopenError = error }
        #expect(reopenError?.errno == EISDIR)
        #expect(!q.stats.ok)
        #expect(throws: reopenError!) { try q.append(kind: .telemetry, payload: payload(3), timestampMs: 3) }
        rmdir(dir.queueFile)
    }
}
