/// One energy ledger record (SPEC §3 `root/ledger`, without `seq`, which the queue adds).
public struct LedgerRecord: Sendable, Equatable {
    public var fromMs: Int64
    public var toMs: Int64
    /// Energy in milli-watt-hours (exact integers, so records sum exactly to the meter's total).
    public var importMWh: Int64
    public var exportMWh: Int64
    public var source: String
    public var estimated: Bool
    /// The market or programme of the event the energy is attributed to (`market` of a dispatch
    /// event, e.g. `caiso-reg`); nil: retail energy.
    public var market: String? = nil

    public var importWh: Double { Double(importMWh) / 1000 }
    public var exportWh: Double { Double(exportMWh) / 1000 }

    public var jsonFields: [(String, JSONValue)] {
        [("from", .string(Timestamp.format(ms: fromMs))), ("to", .string(Timestamp.format(ms: toMs))),
         ("import_wh", .number(importWh)), ("export_wh", .number(exportWh)), ("source", .string(source)),
         ("estimated", .bool(estimated))] + (market.map { [("market", JSONValue.string($0))] } ?? [])
    }
}

/// One site-meter sample for the ledger.
public struct LedgerSample: Sendable, Equatable {
    /// Cumulative import/export registers in Wh (nil when the meter has none).
    public var importWh: Double?
    public var exportWh: Double?
    /// Active power, import positive (used only without cumulative registers).
    public var powerW: Double?
    public init(importWh: Double? = nil, exportWh: Double? = nil, powerW: Double? = nil) {
        self.importWh = importWh; self.exportWh = exportWh; self.powerW = powerW
    }
}

/// The energy ledger (SPEC §3): one record per ledger interval (aligned to multiples of the interval in
/// UTC), split at every change of control source.
///
/// Energy comes from the meter's cumulative import/export registers: the energy at a split point (an
/// interval boundary or a source change) is interpolated linearly in time between the readings on either
/// side, so the records telescope and sum exactly (in mWh) to the difference of the registers. A meter
/// without cumulative registers is integrated from power (trapezoids, split at zero crossings into import
/// and export) and its records say `estimated: true`. A register going backwards (meter replaced or reset)
/// restarts the count from the new reading: that step is not counted.
///
/// Feed it every control turn with the current Target source and the newest sample (nil when there is
/// no new reading); a record is emitted once the reading after its end has arrived. The first record
/// starts at the first reading.
///
/// Across a restart (`persistentState` / `restore`): the open segment is closed at the last saved
/// reading with its own source, and the time from there to the first source after the restart is
/// attributed to `EnergyLedger.offlineSource`, bridged from the saved counters to the first new
/// reading (exact in total; its split over intervals is interpolated, so those records say
/// `estimated: true`). Power-integrated counters are not bridged (the energy while the agent was
/// away is unknown), nor are gaps longer than `maxBridgeMs`.
public struct EnergyLedger: Sendable {
    public let intervalMs: Int64

    private struct Point { var t: Int64; var imp: Double; var exp: Double; var estimated: Bool }
    /// Latest reading (energy counters at time t; for power mode, the integrated counters).
    private var last: Point?
    private var lastPowerW: Double?
    /// Open segment: start time, its energy (mWh, rounded) and source.
    private var segStart: Int64?
    private var segImp: Int64 = 0
    private var segExp: Int64 = 0
    private var segSource: String?
    private var segMarket: String?
    /// Source (and market) changes since the last reading, with their instants.
    private var pendingCuts: [(Int64, String, String?)] = []
    private var currentSource: String?
    private var currentMarket: String?

    /// The source of energy used while gridlet was not running (between the last saved reading and
    /// the restart). Follows the `derate:<reason>` form: the chargers ran on their own failsafe.
    public static let offlineSource = "derate:agent_offline"
    /// Longest outage bridged after a restart (7 days); longer ones start the count afresh.
    public static let maxBridgeMs: Int64 = 7 * 86_400_000

    public init(intervalMs: Int64) {
        precondition(intervalMs > 0)
        self.intervalMs = intervalMs
    }

    /// One control turn at `nowMs`: `source` (with its `market`, if any) is in effect from `nowMs`
    /// on; `sample` is a reading taken at `nowMs`. A change of market alone splits too.
    public mutating func feed(nowMs: Int64, sample: LedgerSample?, source: String, market: String? = nil) -> [LedgerRecord] {
        if currentSource != source || currentMarket != market {
            currentSource = source
            currentMarket = market
            if let l = last, nowMs <= l.t {
                // The change is no later than the newest reading: the energy there is that reading, split now.
                var out = close(at: l)
                segSource = source
                segMarket = market
                if let sample { out += reading(nowMs: nowMs, sample) }
                return out
            }
            pendingCuts.append((nowMs, source, market))
        }
        guard let sample else { return [] }
        return reading(nowMs: nowMs, sample)
    }

    /// What survives a restart: the newest reading's counters and the open segment. nil before
    /// the first reading.
    public var persistentState: JSONValue? {
        guard let l = last, let start = segStart, let src = segSource else { return nil }
        return .object([("v", .number(1)), ("t", .number(Double(l.t))), ("import_wh", .number(l.imp)),
                        ("export_wh", .number(l.exp)), ("estimated", .bool(l.estimated)),
                        ("seg_start", .number(Double(start))), ("seg_import_mwh", .number(Double(segImp))),
                        ("seg_export_mwh", .number(Double(segExp))), ("seg_source", .string(src)),
                        ("seg_market", segMarket.map { .string($0) } ?? .null)])
    }

    /// Restores a fresh ledger from `persistentState` at start. Returns the record that closes the
    /// segment open at the last saved reading (empty when there was none), or nil when `state` is
    /// not a ledger state (then the ledger starts afresh, as without one).
    public mutating func restore(_ state: JSONValue) -> [LedgerRecord]? {
        guard last == nil, state["v"]?.doubleValue == 1,
              let t = state["t"]?.doubleValue, let imp = state["import_wh"]?.doubleValue,
              let exp = state["export_wh"]?.doubleValue, let est = state["estimated"]?.boolValue,
              let start = state["seg_start"]?.doubleValue, let si = state["seg_import_mwh"]?.doubleValue,
              let se = state["seg_export_mwh"]?.doubleValue, let src = state["seg_source"]?.stringValue,
              imp.isFinite, exp.isFinite, start <= t else { return nil }
        let l = Point(t: Int64(t), imp: imp, exp: exp, estimated: est)
        segStart = Int64(start); segImp = Int64(si); segExp = Int64(se); segSource = src
        segMarket = state["seg_market"]?.stringValue
        let out = close(at: l)
        if est {
            // Power-integrated: nothing to bridge from. Start afresh at the next reading.
            segStart = nil; segSource = nil
            return out
        }
        last = l
        segSource = Self.offlineSource
        segMarket = nil
        currentSource = Self.offlineSource
        currentMarket = nil
        bridging = true
        return out
    }

    /// Set by `restore` until the first reading after it: records of the outage are interpolated.
    private var bridging = false

    /// Closes the open segment at the reading `l` (whose counters are exact there).
    private mutating func close(at l: Point) -> [LedgerRecord] {
        let imp = Self.mWh(l.imp), exp = Self.mWh(l.exp)
        guard let start = segStart, let src = segSource, l.t > start else { return [] }
        defer { segStart = l.t; segImp = imp; segExp = exp }
        return [LedgerRecord(fromMs: start, toMs: l.t, importMWh: imp - segImp, exportMWh: exp - segExp, source: src,
                             estimated: l.estimated, market: segMarket)]
    }

    private mutating func reading(nowMs t: Int64, _ s: LedgerSample) -> [LedgerRecord] {
        if let l = last, t <= l.t { return [] } // a repeated or older reading adds nothing
        let bridged = bridging
        bridging = false
        if bridged, let l = last, t - l.t > Self.maxBridgeMs || s.importWh == nil {
            // Too long away, or no cumulative registers now: the energy in between is not
            // attributed; this reading starts the count afresh.
            last = nil
            lastPowerW = nil
            segStart = nil
            pendingCuts.removeAll()
        }
        // Counters at t.
        var p: Point
        if let imp = s.importWh {
            p = Point(t: t, imp: imp, exp: s.exportWh ?? 0, estimated: false)
            if let l = last, l.estimated || imp < l.imp || p.exp < l.exp {
                // Mode change or a register reset: close at the last reading and restart the count here
                // (the energy between the two readings is unknown and not counted).
                let out = close(at: l)
                rebase(at: t, p)
                pendingCuts.removeAll()
                return out
            }
        } else if let w = s.powerW {
            let base = last.flatMap { $0.estimated ? $0 : nil }
            if let l = base, t > l.t, let pw = lastPowerW {
                let (i, e) = Self.integrate(p0: pw, p1: w, dtMs: t - l.t)
                p = Point(t: t, imp: l.imp + i, exp: l.exp + e, estimated: true)
            } else {
                p = Point(t: t, imp: 0, exp: 0, estimated: true)
                let out = last.map { close(at: $0) } ?? []
                rebase(at: t, p)
                lastPowerW = w
                pendingCuts.removeAll()
                return out
            }
            lastPowerW = w
        } else {
            return []
        }
        guard let l = last else {
            rebase(at: t, p)
            pendingCuts.removeAll()
            return []
        }
        // Split points in (l.t, p.t]: interval boundaries and source changes.
        var cuts: [(Int64, (String, String?)?)] = pendingCuts.filter { $0.0 > l.t && $0.0 <= p.t }.map { ($0.0, ($0.1, $0.2)) }
        var b = (Timestamp.floorDiv(l.t, intervalMs) + 1) * intervalMs
        while b <= p.t { cuts.append((b, nil)); b += intervalMs }
        cuts.sort { $0.0 < $1.0 }
        var out: [LedgerRecord] = []
        for (c, newSource) in cuts {
            let f = Double(c - l.t) / Double(p.t - l.t)
            let imp = Self.mWh(l.imp + (p.imp - l.imp) * f), exp = Self.mWh(l.exp + (p.exp - l.exp) * f)
            if let start = segStart, let src = segSource, c > start {
                out.append(LedgerRecord(fromMs: start, toMs: c, importMWh: imp - segImp, exportMWh: exp - segExp, source: src,
                                        estimated: p.estimated || l.estimated || (bridged && src == Self.offlineSource),
                                        market: segMarket))
            }
            segStart = c; segImp = imp; segExp = exp
            if let n = newSource { segSource = n.0; segMarket = n.1 }
        }
        pendingCuts.removeAll()
        last = p
        return out
    }

    private mutating func rebase(at t: Int64, _ p: Point) {
        segStart = t
        segImp = Self.mWh(p.imp); segExp = Self.mWh(p.exp)
        segSource = currentSource
        segMarket = currentMarket
        last = p
    }

    static func mWh(_ wh: Double) -> Int64 { Int64((wh * 1000).rounded()) }

    /// Trapezoid between two power readings, split at the zero crossing: (import Wh, export Wh).
    static func integrate(p0: Double, p1: Double, dtMs: Int64) -> (Double, Double) {
        let h = Double(dtMs) / 3_600_000
        if (p0 >= 0) == (p1 >= 0) {
            let e = (p0 + p1) / 2 * h
            return e >= 0 ? (e, 0) : (0, -e)
        }
        let f = p0 / (p0 - p1) // fraction of dt before the crossing
        let a = p0 / 2 * h * f, b = p1 / 2 * h * (1 - f)
        return (max(a, 0) + max(b, 0), max(-a, 0) + max(-b, 0))
    }
}
