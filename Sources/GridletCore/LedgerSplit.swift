extension LedgerRecord {
    /// Reads a record as `jsonFields` writes it (a line of `state_dir/ledger.log`); nil when it
    /// is not one.
    public static func parse(_ v: JSONValue) -> LedgerRecord? {
        guard let f = v["from"]?.stringValue.flatMap(Timestamp.parse), let t = v["to"]?.stringValue.flatMap(Timestamp.parse),
              t >= f, let i = v["import_wh"]?.doubleValue, let e = v["export_wh"]?.doubleValue, i.isFinite, e.isFinite,
              let s = v["source"]?.stringValue else { return nil }
        return LedgerRecord(fromMs: f, toMs: t, importMWh: EnergyLedger.mWh(i), exportMWh: EnergyLedger.mWh(e), source: s,
                            estimated: v["estimated"]?.boolValue ?? false, market: v["market"]?.stringValue)
    }
}

/// Sums ledger records over a time range, split by market or by source: what `gridlet ledger
/// --by market` prints, so a billing system (or a person) can take award-hour energy apart from
/// retail energy without any manual step.
public enum LedgerSplit {
    public enum Key: String, Sendable, CaseIterable { case market, source }

    /// The name used for records without a market.
    public static let retail = "retail"

    public struct Row: Sendable, Equatable {
        public var key: String
        public var importMWh: Int64
        public var exportMWh: Int64
        /// Records that contributed (fully or in part).
        public var records: Int
        /// True when any contributing record was estimated (or only partly inside the range).
        public var estimated: Bool
        public var importWh: Double { Double(importMWh) / 1000 }
        public var exportWh: Double { Double(exportMWh) / 1000 }
    }

    /// Records the same interval twice (a record re-emitted after a crash between the queue and
    /// `ledger.json`) are counted once: the later copy wins.
    public static func deduplicated(_ records: [LedgerRecord]) -> [LedgerRecord] {
        var seen: [String: Int] = [:]
        var out: [LedgerRecord] = []
        for r in records {
            let k = "\(r.fromMs)|\(r.toMs)|\(r.source)|\(r.market ?? "")"
            if let i = seen[k] { out[i] = r } else { seen[k] = out.count; out.append(r) }
        }
        return out
    }

    /// Energy in [fromMs, toMs) by market (nil market = `retail`) or by source, sorted by key. A
    /// record only partly inside the range counts pro rata in time (the ledger interpolates
    /// linearly inside a record too) and makes its row `estimated`.
    public static func sum(_ records: [LedgerRecord], fromMs: Int64 = Int64.min, toMs: Int64 = Int64.max, by key: Key) -> [Row] {
        var rows: [String: Row] = [:]
        for r in deduplicated(records) {
            let a = max(r.fromMs, fromMs), b = min(r.toMs, toMs)
            let whole = a == r.fromMs && b == r.toMs
            guard whole || b > a else { continue }
            var imp = r.importMWh, exp = r.exportMWh
            if !whole {
                let span = Double(r.toMs - r.fromMs), part = Double(b - a)
                imp = Int64((Double(imp) * part / span).rounded())
                exp = Int64((Double(exp) * part / span).rounded())
            }
            let k = key == .market ? (r.market ?? retail) : r.source
            var row = rows[k] ?? Row(key: k, importMWh: 0, exportMWh: 0, records: 0, estimated: false)
            row.importMWh += imp
            row.exportMWh += exp
            row.records += 1
            row.estimated = row.estimated || r.estimated || !whole
            rows[k] = row
        }
        return rows.values.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }
}
