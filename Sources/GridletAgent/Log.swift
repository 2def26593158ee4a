import Glibc
import GridletCore
import GridletSys
import Synchronization

/// Log lines for journald: `<N>` syslog priority prefix, no timestamp (journald adds one).
/// With `GRIDLET_LOG_TIMESTAMPS=1` (or when stderr is a terminal) a UTC time is prepended.
public enum LogLevel: Int, Sendable, Comparable {
    case error = 3, warning = 4, notice = 5, info = 6, debug = 7
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue > b.rawValue }
    public init?(name: String) {
        switch name {
        case "error": self = .error
        case "warning", "warn": self = .warning
        case "notice": self = .notice
        case "info": self = .info
        case "debug": self = .debug
        default: return nil
        }
    }
}

public struct Logger: Sendable {
    public let label: String
    public let minimum: LogLevel
    private static let withTime: Bool = {
        if let v = getenv("GRIDLET_LOG_TIMESTAMPS") { return String(cString: v) == "1" }
        return getenv("JOURNAL_STREAM") == nil && isatty(2) != 0
    }()
    private static let lock = Mutex(())

    public init(label: String, minimum: LogLevel = .info) {
        self.label = label
        self.minimum = minimum
    }

    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard level >= minimum else { return }
        var line = "<\(level.rawValue)>"
        if Logger.withTime { line += Timestamp.format(ms: SystemClock.wallMs()) + " " }
        line += "\(label): \(message())\n"
        // A log line that cannot be written has nowhere else to go.
        Logger.lock.withLock { _ in try? FileDescriptor.standardError.writeAll(line.utf8) }
    }

    public func error(_ m: @autoclosure () -> String) { log(.error, m()) }
    public func warning(_ m: @autoclosure () -> String) { log(.warning, m()) }
    public func notice(_ m: @autoclosure () -> String) { log(.notice, m()) }
    public func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }
}
