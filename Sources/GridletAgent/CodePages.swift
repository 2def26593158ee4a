import CGridletSys
import Glibc
import Synchronization

/// Keeps only the code in use resident: a static Swift binary otherwise has most of its ~10 MB
/// of text mapped through read-ahead and fault-around (measured: 8 MB of a 14 MB RSS).
/// `GRIDLET_NO_TRIM` (any value) turns it off, e.g. to compare memory use.
public enum CodePages {
    /// Objects loaded at the first trim (at start); the ones after them were opened later (dlopen).
    static let loadedAtTrim = Atomic<Int>(Int.max)

    public static func trim() {
        if getenv("GRIDLET_NO_TRIM") == nil {
            _ = gridlet_trim_code_pages()
            _ = loadedAtTrim.compareExchange(expected: Int.max, desired: Int(gridlet_loaded_object_count()), ordering: .relaxed)
        }
    }

    /// Trims only the objects loaded after the first trim (libcurl and its libraries, opened
    /// for the OpenADR VEN): their code is used for a moment once a poll interval, and kept
    /// resident between polls only by the kernel's fault-around.
    public static func trimLoadedLater() {
        let first = loadedAtTrim.load(ordering: .relaxed)
        if getenv("GRIDLET_NO_TRIM") == nil, first < Int(Int32.max) { _ = gridlet_trim_code_pages_from(Int32(first)) }
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
