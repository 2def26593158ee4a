import CGridletSys
import Glibc

/// Whether the system clock is synchronised, from a source that works under the shipped unit's
/// hardening (SPEC §2 `clock_synced`). `ProtectClock=yes` makes adjtimex fail with EPERM, so the
/// kernel's own flag cannot be read there; systemd-timesyncd marks a synchronised clock by
/// creating `/run/systemd/timesync/synchronized` (readable under ProtectSystem=strict).
///
/// Order: the timesyncd marker file; else the kernel's flag (adjtimex: set by chrony, ntpd,
/// timesyncd) when it can be read; else not synchronised. See docs/operations.md for chrony or
/// ntpd under ProtectClock.
enum ClockSync {
    static let timesyncMarker = "/run/systemd/timesync/synchronized"

    /// `kernel`: 1 synchronised, 0 not, -1 could not be read (as `gridlet_clock_synchronised`).
    static func isSynchronised(marker: String = timesyncMarker, kernel: () -> Int32 = { gridlet_clock_synchronised() }) -> Bool {
        if access(marker, F_OK) == 0 { return true }
        return kernel() == 1
    }
}
