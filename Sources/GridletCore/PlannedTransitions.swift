/// What the Target will be, for `gridlet schedule --next`: a read-only look ahead over the stored
/// events and schedules, separate from the decisions the engine makes now.
extension ControlEngine {
    /// A change of the Target (by precedence, ignoring comm loss, restore and the site limit).
    public struct PlannedTransition: Sendable, Equatable {
        public var atMs: Int64
        public var source: String
        public var limitW: Double
    }

    /// The next `limit` changes of the Target after `nowMs` from stored events and schedules, for
    /// `gridlet schedule --next`. `defaultW` is the DefaultControl in W (the hardware max when `default_limit_w` is null).
    public func plannedTransitions(fromMs nowMs: Int64, limit: Int, defaultW: Double) -> [PlannedTransition] {
        guard limit > 0 else { return [] }
        var candidates = Set<Int64>()
        for e in events where e.isLive {
            for t in [e.effectiveStartMs, e.effectiveEndMs] where t > nowMs { candidates.insert(t) }
        }
        for t in calendar.transitions(fromUTC: nowMs, limit: limit * 2 + 2) { candidates.insert(t.atMs) }
        func target(at t: Int64) -> (String, Double) {
            if let e = events.filter({ $0.isLive && t >= $0.effectiveStartMs && t < $0.effectiveEndMs })
                .min(by: DispatchEvent.precedes) { return ("dispatch:\(e.id)", e.limitW) }
            if let w = calendar.activeWindows(atUTC: t).first(where: { w in
                !scheduleOptOuts.contains { $0.scheduleID == w.scheduleID && $0.startMs == w.startMs } }) {
                return (w.source, w.limitW)
            }
            return ("default", defaultW)
        }
        var out: [PlannedTransition] = []
        var current = target(at: nowMs)
        for t in candidates.sorted() {
            let n = target(at: t)
            if n != current { out.append(PlannedTransition(atMs: t, source: n.0, limitW: n.1)); current = n }
            if out.count >= limit { break }
        }
        return out
    }
}
