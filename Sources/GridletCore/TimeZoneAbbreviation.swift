extension TimeZoneRules {
    /// The zone abbreviation in effect at the UTC instant (`EDT`, `CET`; `UTC` for UTC), for
    /// times shown to people.
    public func abbreviation(atUTC ms: Int64) -> String {
        let s = Timestamp.floorDiv(ms, 1000)
        guard let t = typeIndex(atUTCSeconds: s) else {
            let f = footer!
            return f.isDST(atUTC: s) ? (f.dstName ?? f.stdName) : f.stdName
        }
        return types[t].abbreviation
    }
}
