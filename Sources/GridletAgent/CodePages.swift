import CGridletSys
import Glibc

/// Keeps only the code in use resident: a static Swift binary otherwise has most of its ~10 MB
/// of text mapped through read-ahead and fault-around (measured: 8 MB of a 14 MB RSS).
/// `GRIDLET_NO_TRIM` (any value) turns it off, e.g. to compare memory use.
public enum CodePages {
    public static func trim() {
        if getenv("GRIDLET_NO_TRIM") == nil { _ = gridlet_trim_code_pages() }
    }
}

/// Process-wide memory settings for the daemon.
public enum MallocArenas {
    /// One malloc arena for all threads instead of one per thread that allocates (bus threads,
    /// MQTT, state writer, socket): ~100 KiB less anonymous memory at the daemon's allocation
    /// rates (docs/benchmarks.md). `MALLOC_ARENA_MAX` in the environment still decides when set.
    public static func useOne() {
        if getenv("MALLOC_ARENA_MAX") == nil { _ = gridlet_malloc_one_arena() }
    }
}
