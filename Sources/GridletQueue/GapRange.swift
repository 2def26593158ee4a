/// Range of dropped seqs of one class described by a gap record.
struct GapRange: Equatable {
    /// "telemetry" or "priority" (a gap written before classes existed parses as telemetry).
    var cls = "telemetry"
    /// Why the records are missing: "queue_full" (dropped to make room) or "io_error" (given up
    /// after a failed fdatasync). Not parsed back: a merged range takes the reason of the new gap.
    var reason = "queue_full"
    var from: UInt64?
    var to: UInt64 = 0
    var count: UInt64 = 0

    mutating func add(_ seq: UInt64) {
        from = min(from ?? seq, seq)
        to = max(to, seq)
        count += 1
    }

    mutating func merge(_ g: GapRange) {
        guard let gf = g.from else { return }
        from = min(from ?? gf, gf)
        to = max(to, g.to)
        count += g.count
    }

    /// Covers a record that is about to be lost: a gap record's own range is merged (what it
    /// reported stays reported; `storedGap` reads its payload, nil when unreadable), any other
    /// record is added. True when a non-gap record was counted.
    mutating func cover(seq: UInt64, kind: RecordKind, storedGap: () -> GapRange?) -> Bool {
        guard kind != .gap else {
            if let g = storedGap() { merge(g) }
            return false
        }
        add(seq)
        return true
    }

    func json() -> [UInt8]? {
        guard let from else { return nil }
        return Array("{\"from_seq\":\(from),\"to_seq\":\(to),\"count\":\(count),\"reason\":\"\(reason)\",\"class\":\"\(cls)\"}".utf8)
    }

    /// Parse the numbers out of a gap payload written by `json()`.
    static func parse(_ payload: [UInt8]) -> GapRange? {
        func find(_ key: String) -> Int? {
            let k = Array(key.utf8)
            guard payload.count >= k.count else { return nil }
            var i = 0
            while i + k.count <= payload.count {
                if payload[i..<(i + k.count)].elementsEqual(k) { return i + k.count }
                i += 1
            }
            return nil
        }
        func number(after key: String) -> UInt64? {
            guard var j = find(key) else { return nil }
            var v: UInt64 = 0
            var any = false
            while j < payload.count, payload[j] >= 48, payload[j] <= 57 {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(payload[j] - 48))
                if o1 || o2 { return nil }
                v = a
                any = true
                j += 1
            }
            return any ? v : nil
        }
        guard let f = number(after: "\"from_seq\":"), let t = number(after: "\"to_seq\":"),
              let c = number(after: "\"count\":"), f <= t else { return nil }
        let cls = find("\"class\":\"priority\"") != nil ? "priority" : "telemetry"
        return GapRange(cls: cls, from: f, to: t, count: c)
    }
}
