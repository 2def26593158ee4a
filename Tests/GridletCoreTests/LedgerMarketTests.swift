import Testing
@testable import GridletCore

/// The energy ledger's market tag and the split `gridlet ledger --by market` prints: award-hour
/// energy apart from retail, to the Wh.
@Suite struct LedgerMarketTests {
    @Test func recordsCarryTheMarketAndAMarketChangeAloneSplits() {
        var l = EnergyLedger(intervalMs: 900_000)
        var out: [LedgerRecord] = []
        out += l.feed(nowMs: 0, sample: LedgerSample(importWh: 100, exportWh: 10), source: "default")
        out += l.feed(nowMs: 10_000, sample: LedgerSample(importWh: 110, exportWh: 10), source: "dispatch:reg", market: "caiso-reg")
        out += l.feed(nowMs: 20_000, sample: LedgerSample(importWh: 110, exportWh: 25), source: "dispatch:reg", market: "caiso-spin")
        out += l.feed(nowMs: 30_000, sample: LedgerSample(importWh: 112, exportWh: 25), source: "default")
        out += l.feed(nowMs: 40_000, sample: LedgerSample(importWh: 113, exportWh: 25), source: "default")
        #expect(out == [
            LedgerRecord(fromMs: 0, toMs: 10_000, importMWh: 10_000, exportMWh: 0, source: "default", estimated: false),
            LedgerRecord(fromMs: 10_000, toMs: 20_000, importMWh: 0, exportMWh: 15_000, source: "dispatch:reg", estimated: false,
                         market: "caiso-reg"),
            LedgerRecord(fromMs: 20_000, toMs: 30_000, importMWh: 2000, exportMWh: 0, source: "dispatch:reg", estimated: false,
                         market: "caiso-spin"),
        ])
        #expect(out[1].jsonFields.last?.0 == "market" && out[1].jsonFields.last?.1 == .string("caiso-reg"))
        #expect(!out[0].jsonFields.contains { $0.0 == "market" })   // retail records keep SPEC §3's shape
    }

    @Test func theMarketSurvivesARestartWithTheOpenSegment() throws {
        var a = EnergyLedger(intervalMs: 60_000)
        _ = a.feed(nowMs: 0, sample: LedgerSample(importWh: 0), source: "dispatch:reg", market: "caiso-reg")
        _ = a.feed(nowMs: 20_000, sample: LedgerSample(importWh: 5), source: "dispatch:reg", market: "caiso-reg")
        let saved = try JSONValue.parse(Array(try #require(a.persistentState).serialized.utf8))
        var b = EnergyLedger(intervalMs: 60_000)
        let restored = b.restore(saved)
        let closed = try #require(restored)
        #expect(closed == [LedgerRecord(fromMs: 0, toMs: 20_000, importMWh: 5000, exportMWh: 0, source: "dispatch:reg",
                                        estimated: false, market: "caiso-reg")])
    }

    /// A day with a regulation award hour (±setpoints every 4 s for 60 s) and retail charging
    /// around it: the market records sum to the meter's import and export inside the award window,
    /// the retail records to the rest, to the Wh (each split point is rounded to the mWh, so a
    /// category is within a few mWh of the meter's own fractional counters).
    @Test func anAwardHourIsSplitFromRetailToTheWh() {
        var l = EnergyLedger(intervalMs: 60_000)
        var imp = 5000.0, exp = 300.0
        var records: [LedgerRecord] = []
        var inWindow = (imp: 0.0, exp: 0.0)
        var meter: [Int64: (imp: Double, exp: Double)] = [:]
        let awardFrom: Int64 = 100_000, awardTo: Int64 = 160_000
        var t: Int64 = 0
        while t <= 260_000 {
            let award = t >= awardFrom && t < awardTo
            let source = award ? "dispatch:award" : "default"
            meter[t] = (imp, exp)
            records += l.feed(nowMs: t, sample: LedgerSample(importWh: imp, exportWh: exp), source: source, market: award ? "caiso-reg" : nil)
            // Power for the next 500 ms: retail charging at 7 kW, the award alternating ±5 kW every 4 s.
            let w: Double = award ? (((t - awardFrom) / 4000) % 2 == 0 ? 5000 : -5000) : 7000
            let wh = w * 0.5 / 3600
            if award {
                if wh > 0 { inWindow.imp += wh } else { inWindow.exp -= wh }
            }
            if wh > 0 { imp += wh } else { exp -= wh }
            t += 500
        }
        // The records end at the last interval boundary whose next reading arrived; the rest is
        // retail: the meter's difference up to there minus the award window.
        let end = records.map(\.toMs).max() ?? 0, first = meter[0]!, last = meter[end]!
        let outside = (imp: last.imp - first.imp - inWindow.imp, exp: last.exp - first.exp - inWindow.exp)
        let split = LedgerSplit.sum(records, by: .market)
        #expect(split.map(\.key) == ["caiso-reg", "retail"])
        let market = split[0], retail = split[1]
        #expect(abs(market.importWh - inWindow.imp) < 0.005 && abs(market.exportWh - inWindow.exp) < 0.005, "\(market) \(inWindow)")
        #expect(abs(retail.importWh - outside.imp) < 0.005 && abs(retail.exportWh - outside.exp) < 0.005, "\(retail) \(outside) \(records.filter { $0.market == nil })")
        #expect(market.exportWh > 30 && market.importWh > 30)
        #expect(!market.estimated && !retail.estimated)
        // By source, the same energy.
        let bySource = LedgerSplit.sum(records, by: .source)
        #expect(bySource.first { $0.key == "dispatch:award" }?.exportMWh == market.exportMWh)
    }

    @Test func aRangeCountsPartlyCoveredRecordsProRataAndDuplicatesOnce() {
        let r = [
            LedgerRecord(fromMs: 0, toMs: 60_000, importMWh: 6000, exportMWh: 0, source: "default", estimated: false),
            LedgerRecord(fromMs: 60_000, toMs: 120_000, importMWh: 0, exportMWh: 12_000, source: "dispatch:a", estimated: false,
                         market: "m"),
            // The same record again (re-emitted after a crash): counted once.
            LedgerRecord(fromMs: 60_000, toMs: 120_000, importMWh: 0, exportMWh: 12_000, source: "dispatch:a", estimated: false,
                         market: "m"),
        ]
        let all = LedgerSplit.sum(r, by: .market)
        #expect(all == [LedgerSplit.Row(key: "m", importMWh: 0, exportMWh: 12_000, records: 1, estimated: false),
                        LedgerSplit.Row(key: "retail", importMWh: 6000, exportMWh: 0, records: 1, estimated: false)])
        let part = LedgerSplit.sum(r, fromMs: 30_000, toMs: 90_000, by: .market)
        #expect(part == [LedgerSplit.Row(key: "m", importMWh: 0, exportMWh: 6000, records: 1, estimated: true),
                         LedgerSplit.Row(key: "retail", importMWh: 3000, exportMWh: 0, records: 1, estimated: true)])
        #expect(LedgerSplit.sum(r, fromMs: 120_000, toMs: 180_000, by: .market).isEmpty)
    }

    @Test func aLogLineParsesBackToTheRecord() throws {
        let rec = LedgerRecord(fromMs: 1_811_869_200_000, toMs: 1_811_870_100_000, importMWh: 1234, exportMWh: 5678,
                               source: "dispatch:reg", estimated: false, market: "caiso-reg")
        let line = JSONValue.object(rec.jsonFields).serialized
        #expect(LedgerRecord.parse(try JSONValue.parse(Array(line.utf8))) == rec)
        #expect(LedgerRecord.parse(try JSONValue.parse(Array(#"{"from":"x"}"#.utf8))) == nil)
    }
}
