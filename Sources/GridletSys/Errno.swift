import Glibc

/// The error of a failed system call: a struct over the raw errno value (as swift-system's
/// `Errno`), so a code this file has no name for survives unchanged. Modules that report errors
/// in their own types (`QueueError`, `MQTTError`, `StateFile.IOError`) take `rawValue`.
public struct Errno: Error, RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's errno. Read it right after the call that failed: any other call,
    /// including one made by Swift's runtime in between, may overwrite it.
    static var current: Errno { Errno(rawValue: errno) }

    /// EINTR: a signal arrived during the call; the call is made again.
    public static let interrupted = Errno(rawValue: EINTR)

    /// EIO, also reported for a write that makes no progress (so a caller cannot spin on it).
    public static let ioError = Errno(rawValue: EIO)

    public var description: String { String(cString: strerror(rawValue)) }
}
