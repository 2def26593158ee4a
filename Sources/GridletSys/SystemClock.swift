import Glibc

/// The real clocks, read in one place. Named so as not to shadow the standard library's `Clock`
/// protocol. Decisions never read it: the core's state machines take times as arguments (so
/// tests drive them with a manual clock); the I/O shells read this and pass the times in.
public enum SystemClock {
    /// Wall clock, Unix milliseconds: for timestamps that leave the process.
    public static func wallMs() -> Int64 { milliseconds(system_clock_gettime(CLOCK_REALTIME)) }

    /// Monotonic milliseconds: for intervals and timeouts (a wall clock step does not move it).
    public static func monoMs() -> Int64 { milliseconds(system_clock_gettime(CLOCK_MONOTONIC)) }

    /// Monotonic microseconds: for pacing and durations too short for milliseconds.
    public static func monoUs() -> Int64 {
        let ts = system_clock_gettime(CLOCK_MONOTONIC)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// Blocks the calling thread for `ms` milliseconds (nothing for `ms <= 0`); a signal does not
    /// cut it short. Never call it on Swift's cooperative pool.
    public static func sleepMs(_ ms: Int64) {
        guard ms > 0 else { return }
        _ = system_nanosleep(timespec(tv_sec: Int(ms / 1000), tv_nsec: Int((ms % 1000) * 1_000_000)))
    }

    private static func milliseconds(_ ts: timespec) -> Int64 {
        Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
