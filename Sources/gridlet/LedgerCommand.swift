import GridletAgent
import GridletCLI
import GridletCore

/// `gridlet ledger`: the energy ledger summed over a time range and split by market (award-hour
/// energy apart from retail) or by source, from the local copy in state_dir/ledger.log.
struct LedgerCommand {
    static let command = Command(
        "ledger", abstract: "Sum the energy ledger by market or source (from state_dir/ledger.log).",
        discussion: """
            Records only partly inside --from/--to count pro rata in time (their row says estimated). Records \
            without a market are 'retail'. The ledger's own records come from the ledger meter's counters \
            (docs/control.md "Energy ledger").
            """,
        args: [
            .option("from", "Start, RFC 3339 (e.g. 2027-06-01T00:00:00Z); default: the first record."),
            .option("to", "End (exclusive), RFC 3339; default: the last record."),
            .option("by", "Split by market or source.", default: "market"),
            .option("config", "Configuration file (to find state_dir).", default: "/etc/gridlet/gridlet.yaml"),
            .flag("json", "Print JSON."),
        ]) { try LedgerCommand($0).run() }
    let from: String?, to: String?, by: String, config: String, json: Bool
    init(_ p: Parsed) {
        from = p.optionalString("from"); to = p.optionalString("to"); by = p.string("by"); config = p.string("config")
        json = p.flag("json")
    }

    func run() throws {
        guard let key = LedgerSplit.Key(rawValue: by) else { throw Failure("--by: expected market or source, got '\(by)'", code: 2) }
        func time(_ s: String?, _ name: String) throws -> Int64? {
            guard let s else { return nil }
            guard let ms = Timestamp.parse(s) else { throw Failure("--\(name): expected an RFC 3339 time such as 2027-06-01T00:00:00Z, got '\(s)'", code: 2) }
            return ms
        }
        let f = try time(from, "from"), t = try time(to, "to")
        if let f, let t, t <= f { throw Failure("--to must be after --from", code: 2) }
        let stateDir = try loadConfig(config).config.site.stateDir
        let report = LedgerReport.json(stateDir: stateDir, fromMs: f, toMs: t, by: key)
        if json { print(report.serialized); return }
        guard report["files"]?.doubleValue ?? 0 > 0 else {
            throw Failure("no ledger records in \(stateDir)/ledger.log yet (the agent writes one per ledger interval and source)")
        }
        func wh(_ v: JSONValue?) -> String { v?.doubleValue.map { JSONValue.format($0) } ?? "-" }
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return right ? fill + s : s + fill
        }
        let rows = report["rows"]?.arrayValue ?? []
        let width = max(8, rows.compactMap { $0[by]?.stringValue?.count }.max() ?? 0)
        print("\(pad(by, width))  \(pad("import_wh", 14, right: true))  \(pad("export_wh", 14, right: true))  records")
        for r in rows {
            let est = r["estimated"]?.boolValue == true ? "  (estimated)" : ""
            print("\(pad(r[by]?.stringValue ?? "", width))  \(pad(wh(r["import_wh"]), 14, right: true))  \(pad(wh(r["export_wh"]), 14, right: true))  \(pad(JSONValue.format(r["records"]?.doubleValue ?? 0), 7, right: true))\(est)")
        }
        let total = report["total"]
        print("\(pad("total", width))  \(pad(wh(total?["import_wh"]), 14, right: true))  \(pad(wh(total?["export_wh"]), 14, right: true))  \(pad(JSONValue.format(total?["records"]?.doubleValue ?? 0), 7, right: true))")
        if let s = report["skipped_lines"]?.doubleValue, s > 0 { printError("<4>skipped \(JSONValue.format(s)) unreadable line(s) in ledger.log") }
    }
}
