import GridletSys

/// The agent's time source in the daemon: the system clocks, and whether they are synchronised.
struct SystemTime: TimeSource {
    func wallMs() -> Int64 { SystemClock.wallMs() }
    func monoMs() -> Int64 { SystemClock.monoMs() }
    func monoUs() -> Int64 { SystemClock.monoUs() }
    func isSynchronised() -> Bool { ClockSync.isSynchronised() }
}
