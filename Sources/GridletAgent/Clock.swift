import Glibc
import GridletCore
import CGridletSys

/// The real clocks. The core never reads them: the agent passes times in.
public enum SystemClock {
    /// Wall clock, Unix milliseconds.
    public static func wallMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Monotonic milliseconds, for intervals and timeouts.
    public static func monoMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Monotonic microseconds, for pacing.
    public static func monoUs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    public static func rfc3339Now() -> String { Timestamp.format(ms: wallMs()) }


    public static func sleepMs(_ ms: Int64) {
        guard ms > 0 else { return }
        var ts = timespec(tv_sec: Int(ms / 1000), tv_nsec: Int((ms % 1000) * 1_000_000))
        var rem = timespec()
        while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
    }
}

/// The agent's time source in the daemon: the system clocks.
struct SystemTime: TimeSource {
    func wallMs() -> Int64 { SystemClock.wallMs() }
    func monoMs() -> Int64 { SystemClock.monoMs() }
    func monoUs() -> Int64 { SystemClock.monoUs() }
    func isSynchronised() -> Bool { ClockSync.isSynchronised() }
}
