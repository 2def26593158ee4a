extension TimeZoneRules {
    /// The zone abbreviation in effect at the UTC instant (`EDT`, `CET`; `UTC` for UTC), for
    /// times shown to people.
    public func abbreviation(atUTC ms: Int64) -> String {
        let s = Timestamp.floorDiv(ms, 1000)
        if let f = footer, transitions.isEmpty || s >= transitions.last! {
            return f.isDST(atUTC: s) ? (f.dstName ?? f.stdName) : f.stdName
        }
        if transitions.isEmpty || s < transitions[0] { return types[0].abbreviation }
        var lo = 0, hi = transitions.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if transitions[mid] <= s { lo = mid } else { hi = mid - 1 }
        }
        return types[transitionTypes[lo]].abbreviation
    }
}
