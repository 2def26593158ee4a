import Glibc
import Testing
@testable import GridletQueue

/// The OpenADR `report` record class: in the priority ring, safe from a telemetry flood, found again
/// after a reopen (also a kill: nothing but the file), listed by `unackedSeqs(kind:)`.
@Suite struct ReportRecordTests {
    @Test func reportsLiveInThePriorityRingAndSurviveAReopen() throws {
        let dir = TempDir()
        var q: DiskQueue? = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
        let r1 = try q!.append(kind: .report, payload: Array(#"{"reportName":"a"}"#.utf8), timestampMs: 1)
        _ = try q!.append(kind: .ledger, payload: Array("{}".utf8), timestampMs: 2)
        let r2 = try q!.append(kind: .report, payload: Array(#"{"reportName":"b"}"#.utf8), timestampMs: 3)
        #expect(q!.stats.priorityRecords == 3 && q!.stats.telemetryRecords == 0)
        // A telemetry flood many times the ring's size displaces none of them.
        for i in 0..<2000 { _ = try q!.append(kind: .telemetry, payload: payload(i, size: 300), timestampMs: 10 + Int64(i)) }
        #expect(q!.unackedSeqs(kind: .report) == [r1, r2])
        try q!.ack(seq: r1)
        #expect(q!.unackedSeqs(kind: .report) == [r2])
        q = nil   // no close(): as after a kill, only what is in the file
        let again = try DiskQueue(directory: dir.path, maxBytes: 256 * 1024, sync: .none)
        #expect(again.unackedSeqs(kind: .report) == [r2])
        let rec = try #require(again.records(after: r2 - 1, limit: 1).first)
        #expect(rec.seq == r2 && rec.kind == .report && rec.payload == Array(#"{"reportName":"b"}"#.utf8))
        #expect(again.unackedSeqs(kind: .ledger).count == 1)
    }
}
