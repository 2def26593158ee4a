import Glibc

/// Where the daemon's local socket is. The daemon and every CLI command that talks to it must
/// agree, so there is one place that decides: `site.socket` when configured, else systemd's
/// `RuntimeDirectory=` (`$RUNTIME_DIRECTORY`, which lists several directories separated by
/// colons when the unit names several: the first non-empty one is ours), else the packaged
/// default. An empty or malformed `$RUNTIME_DIRECTORY` falls through to the default instead of
/// failing: a socket the CLI cannot find says so clearly later, a crash here says nothing.
public enum SocketPath {
    /// Used when neither a configured path nor `$RUNTIME_DIRECTORY` says otherwise.
    public static let fallback = "/run/gridlet/gridlet.sock"
    /// The socket's file name inside the runtime directory.
    public static let fileName = "gridlet.sock"

    /// - Parameters:
    ///   - configured: `site.socket` (nil or empty: not configured).
    ///   - runtimeDirectory: the value of `$RUNTIME_DIRECTORY`, nil when unset.
    public static func resolve(configured: String?, runtimeDirectory: String?) -> String {
        if let configured, !configured.isEmpty { return configured }
        // `split` drops empty entries, so ":x" gives "x" and "" gives nothing.
        if let first = runtimeDirectory?.split(separator: ":").first {
            return first + "/" + fileName
        }
        return fallback
    }

    /// `resolve(configured:runtimeDirectory:)` with this process's `$RUNTIME_DIRECTORY`.
    public static func resolve(configured: String?) -> String {
        resolve(configured: configured, runtimeDirectory: getenv("RUNTIME_DIRECTORY").map { String(cString: $0) })
    }
}
