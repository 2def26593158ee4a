import GridletCore
import Testing

struct Rec: SequencedRecord, Equatable { var seq: UInt64 }

/// The queue as the pipeline sees it.
struct Store: OutboundRecordSource {
    var seqs: [UInt64]
    func records(after seq: UInt64, limit: Int) -> [Rec] { Array(seqs.filter { $0 > seq }.prefix(limit).map(Rec.init)) }
}

/// Records what was handed over; refuses when told.
final class Wire {
    var sent: [(seq: UInt64, historical: Bool, mid: Int32)] = []
    var refuse = false
    var nextMid: Int32 = 1
    func transmit(_ r: Rec, _ historical: Bool) -> Int32? {
        guard !refuse else { return nil }
        defer { nextMid += 1 }
        sent.append((r.seq, historical, nextMid))
        return nextMid
    }
}

@Suite struct PublishPipelineTests {
    @Test func liveRecordsGoOutAtOnceNotHistorical() {
        var p = PublishPipeline(replayRate: 100)
        p.sessionUp()
        let store = Store(seqs: [1, 2, 3])
        for s in store.seqs { p.appended(seq: s) }
        let w = Wire()
        p.pump(from: store, nowUs: 0, transmit: w.transmit)
        #expect(w.sent.map(\.seq) == [1, 2, 3])
        #expect(w.sent.allSatisfy { !$0.historical })
        #expect(p.inFlight == 3)
        let c1 = p.acknowledged(mid: 2) == 2
        #expect(c1)
        let c2 = p.acknowledged(mid: 2) == nil
        #expect(c2)
        let c3 = p.acknowledged(mid: 99) == nil
        #expect(c3)
        #expect(p.inFlight == 2)
    }

    @Test func nothingGoesOutWithoutASession() {
        var p = PublishPipeline(replayRate: 100)
        p.appended(seq: 1)
        let w = Wire()
        p.pump(from: Store(seqs: [1]), nowUs: 0, transmit: w.transmit)
        #expect(w.sent.isEmpty)
        #expect(p.replayWaitUs(nowUs: 0, backlog: 1) == nil)
    }

    /// Each record read is a pread and a payload copy: with one free slot the backlog path reads
    /// one record, not a window's worth.
    @Test func theBacklogReadsOnlyAsManyRecordsAsThereIsRoomFor() {
        final class Counting: OutboundRecordSource {
            let store = Store(seqs: Array(1...100))
            var read = 0
            func records(after seq: UInt64, limit: Int) -> [Rec] {
                let r = store.records(after: seq, limit: limit)
                read += r.count
                return r
            }
        }
        var p = PublishPipeline(replayRate: 1_000_000)
        p.sessionUp()
        let source = Counting()
        let w = Wire()
        p.pump(from: source, nowUs: 1_000_000, transmit: w.transmit)
        #expect(source.read == PublishPipeline.window)
        source.read = 0
        _ = p.acknowledged(mid: w.sent[0].mid)
        p.pump(from: source, nowUs: 1_000_100, transmit: w.transmit)
        #expect(w.sent.map(\.seq) == Array(1...17))
        #expect(source.read == 1)
    }

    @Test func windowOfSixteenIsNeverExceeded() {
        var p = PublishPipeline(replayRate: 1_000_000)
        p.sessionUp()
        let store = Store(seqs: Array(1...100))
        let w = Wire()
        p.pump(from: store, nowUs: 1_000_000, transmit: w.transmit)
        #expect(p.inFlight == PublishPipeline.window)
        p.pump(from: store, nowUs: 2_000_000, transmit: w.transmit)
        #expect(w.sent.count == 16)
        _ = p.acknowledged(mid: 1)
        p.pump(from: store, nowUs: 3_000_000, transmit: w.transmit)
        #expect(w.sent.count == 17)
        #expect(w.sent.map(\.seq) == Array(1...17))
        #expect(w.sent.allSatisfy { $0.historical })
    }

    @Test func backlogIsPacedAtReplayRate() {
        var p = PublishPipeline(replayRate: 10)   // 100 ms apart
        p.sessionUp()
        let store = Store(seqs: Array(1...5))
        let w = Wire()
        for t in stride(from: Int64(0), through: 250_000, by: 1000) {
            p.pump(from: store, nowUs: t, transmit: w.transmit)
        }
        #expect(w.sent.map(\.seq) == [1, 2, 3])
        #expect(p.replayWaitUs(nowUs: 250_000, backlog: 5).map { $0 > 0 && $0 <= 100_000 } == true)
    }

    @Test func liveGoesFirstAndBacklogFollowsOldestFirst() {
        var p = PublishPipeline(replayRate: 1000)
        p.sessionUp()
        // 1...3 were queued before the session; 4 is produced now.
        p.appended(seq: 4)
        let store = Store(seqs: [1, 2, 3, 4])
        let w = Wire()
        for t in stride(from: Int64(0), through: 10_000, by: 1000) { p.pump(from: store, nowUs: t, transmit: w.transmit) }
        #expect(w.sent.map(\.seq) == [4, 1, 2, 3])
        #expect(w.sent.map(\.historical) == [false, true, true, true])
    }

    @Test func pendingLiveBecomesBacklogWhenTheSessionDrops() {
        var p = PublishPipeline(replayRate: 1000)
        p.sessionUp()
        p.appended(seq: 1)
        p.appended(seq: 2)
        p.sessionDown()
        p.sessionUp()
        let w = Wire()
        for t in stride(from: Int64(0), through: 10_000, by: 1000) { p.pump(from: Store(seqs: [1, 2]), nowUs: t, transmit: w.transmit) }
        #expect(w.sent.map(\.seq) == [1, 2])
        #expect(w.sent.allSatisfy { $0.historical })
    }

    @Test func aRefusedRecordIsTriedAgain() {
        var p = PublishPipeline(replayRate: 1000)
        p.sessionUp()
        p.appended(seq: 1)
        let w = Wire()
        w.refuse = true
        p.pump(from: Store(seqs: [1]), nowUs: 0, transmit: w.transmit)
        #expect(p.inFlight == 0)
        w.refuse = false
        p.pump(from: Store(seqs: [1]), nowUs: 5000, transmit: w.transmit)
        #expect(w.sent.map(\.seq) == [1])
    }

    @Test func aRecordDroppedBeforeItsTurnIsSkipped() {
        var p = PublishPipeline(replayRate: 1000)
        p.sessionUp()
        p.appended(seq: 1)
        p.appended(seq: 2)
        let w = Wire()
        p.pump(from: Store(seqs: [2]), nowUs: 0, transmit: w.transmit)   // 1 was dropped (queue full)
        #expect(w.sent.map(\.seq) == [2])
    }
}
