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
