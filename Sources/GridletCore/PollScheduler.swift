/// When to poll each device: a pure value type driven by a monotonic clock in milliseconds
/// (tests use a manual clock).
///
/// - Each device has its own interval; a device is polled again `interval` after the previous
///   poll *started* (a slow answer does not push the schedule back, but two polls of one device
///   never overlap: `inFlight`).
/// - A failed poll backs the device off exponentially: `interval * 2^(failures-1)`, capped at
///   `maxBackoffMs` (30 s). The other devices keep their own schedule, so a device that stops
///   answering costs its bus one timeout per backoff period instead of one per interval.
/// - A device is stale when its last poll failed, or when no poll succeeded for `staleAfterMs`.
public struct PollScheduler: Sendable, Equatable {
    public struct Device: Sendable, Equatable {
        public var intervalMs: Int64
        public var inFlight = false
        public var nextDueMs: Int64 = 0
        public var consecutiveFailures = 0
        public var lastOKMs: Int64?
        public init(intervalMs: Int64) { self.intervalMs = max(1, intervalMs) }
    }

    public static let maxBackoffMs: Int64 = 30_000
    public private(set) var devices: [Device]
    /// Without a successful poll for this long a device is stale (default: 3 intervals, at least 3 s).
    public var staleAfterMs: [Int64]

    public init(intervalsMs: [Int64], staleAfterMs: [Int64]? = nil) {
        devices = intervalsMs.map(Device.init)
        self.staleAfterMs = staleAfterMs ?? intervalsMs.map { max(3_000, 3 * $0) }
    }

    /// Devices due now, in index order; they are marked in flight and their next poll is scheduled.
    public mutating func due(nowMs: Int64) -> [Int] {
        var out: [Int] = []
        for i in devices.indices where !devices[i].inFlight && nowMs >= devices[i].nextDueMs {
            devices[i].inFlight = true
            devices[i].nextDueMs = nowMs + devices[i].intervalMs
            out.append(i)
        }
        return out
    }

    /// Records the end of device `i`'s poll.
    public mutating func completed(_ i: Int, success: Bool, nowMs: Int64) {
        devices[i].inFlight = false
        if success {
            devices[i].consecutiveFailures = 0
            devices[i].lastOKMs = nowMs
            devices[i].nextDueMs = max(devices[i].nextDueMs, nowMs)
        } else {
            devices[i].consecutiveFailures += 1
            devices[i].nextDueMs = nowMs + backoffMs(i)
        }
    }

    /// The wait after the current run of failures of device `i` (its interval when none).
    public func backoffMs(_ i: Int) -> Int64 {
        let d = devices[i]
        guard d.consecutiveFailures > 0 else { return d.intervalMs }
        let shift = min(d.consecutiveFailures - 1, 20)
        let b = d.intervalMs > (Self.maxBackoffMs >> Int64(shift)) ? Self.maxBackoffMs : d.intervalMs << Int64(shift)
        return min(Self.maxBackoffMs, max(d.intervalMs, b))
    }

    /// Milliseconds until the next device is due (0 when one is due now); nil when all are in flight.
    public func nextWaitMs(nowMs: Int64) -> Int64? {
        devices.filter { !$0.inFlight }.map { max(0, $0.nextDueMs - nowMs) }.min()
    }

    public func isStale(_ i: Int, nowMs: Int64) -> Bool {
        let d = devices[i]
        if d.consecutiveFailures > 0 { return true }
        guard let ok = d.lastOKMs else { return true }
        return nowMs - ok > staleAfterMs[i]
    }

    public func isInFlight(_ i: Int) -> Bool { devices[i].inFlight }
    public func failures(_ i: Int) -> Int { devices[i].consecutiveFailures }
}
