/// When the VEN reads the VTN next (docs/openadr.md): every `poll_interval` ±10 % after a
/// success, so a fleet does not poll in step; after failures 5 s, 10 s, 20 s, ... doubling up to
/// the longer of `poll_interval` and 5 min, each with -20 %..0 jitter. Monotonic milliseconds.
public struct VENPollSchedule: Sendable {
    public static let firstRetryMs: Int64 = 5000
    public static let maxBackoffMs: Int64 = 300_000

    public let intervalMs: Int64
    public private(set) var failures = 0
    public private(set) var nextMs: Int64
    var rng: SplitMix64

    /// The first poll is due at `nowMs`.
    public init(intervalMs: Int64, nowMs: Int64, seed: UInt64) {
        self.intervalMs = intervalMs
        self.nextMs = nowMs
        self.rng = SplitMix64(seed: seed)
    }

    public func isDue(nowMs: Int64) -> Bool { nowMs >= nextMs }

    /// A poll succeeded at `nowMs`: the next one an interval later, ±10 %.
    public mutating func succeeded(nowMs: Int64) {
        failures = 0
        let spread = intervalMs / 10
        nextMs = nowMs + intervalMs - spread + jitter(2 * spread)
    }

    /// A poll failed at `nowMs`: back off.
    public mutating func failed(nowMs: Int64) {
        failures += 1
        let cap = max(intervalMs, Self.maxBackoffMs)
        var delay = Self.firstRetryMs
        for _ in 1..<min(failures, 20) where delay < cap { delay *= 2 }
        delay = min(delay, cap)
        nextMs = nowMs + delay - jitter(delay / 5)
    }

    /// Poll as soon as possible (a notification said something changed).
    public mutating func pollNow(nowMs: Int64) { nextMs = min(nextMs, nowMs) }

    private mutating func jitter(_ range: Int64) -> Int64 {
        range > 0 ? Int64(rng.next() % UInt64(range + 1)) : 0
    }
}

/// An OAuth2 access token's lifetime: when to fetch the next one. A token is refreshed before a
/// request once less than a fifth of its lifetime is left (at least 30 s, at most half of it), so
/// a poll never goes out with a token that expires on the way.
public struct TokenLifetime: Sendable, Equatable {
    public var obtainedMs: Int64
    /// nil: the token endpoint gave no `expires_in` (refreshed only when the VTN answers 401).
    public var lifetimeMs: Int64?

    public init(obtainedMs: Int64, lifetimeMs: Int64?) { self.obtainedMs = obtainedMs; self.lifetimeMs = lifetimeMs }

    public var expiresMs: Int64? { lifetimeMs.map { obtainedMs + $0 } }

    public var refreshMs: Int64? {
        guard let l = lifetimeMs else { return nil }
        let margin = min(l / 2, max(l / 5, 30_000))
        return obtainedMs + l - margin
    }

    public func needsRefresh(nowMs: Int64) -> Bool { refreshMs.map { nowMs >= $0 } ?? false }
}
