import CGridletSys
import Glibc

/// An eventfd another thread signals to end a `poll` early: the control loop waits on it together
/// with the broker's socket (one poll, one thread), instead of a semaphore that can wait on
/// nothing else. `signal` is cheap and may be called from any thread; `drain` resets it.
public final class Wakeup: Sendable {
    /// The descriptor to poll for `POLLIN`.
    public let fd: Int32

    public init() throws(Errno) {
        fd = try valueOrErrno { gridlet_eventfd() }.get()
    }

    /// Makes the descriptor readable until `drain`.
    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { system_write(fd, $0) }
    }

    /// Reads the counter back to zero (non-blocking: nothing to read is fine).
    public func drain() {
        var count: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &count) { b in valueOrErrno { read(fd, b.baseAddress, 8) } }
    }

    deinit { close(fd) }
}

/// Waits up to `timeoutMs` (negative: without limit) for one of `fds` to be ready; the events are
/// in their `revents`. A signal (EINTR) ends the wait early with nothing ready, as a timeout does,
/// so the caller looks at its stop flag. Other errors (EINVAL, ENOMEM) are returned.
public func pollDescriptors(_ fds: inout [pollfd], timeoutMs: Int32) -> Result<Int32, Errno> {
    let rc = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeoutMs) }
    if rc >= 0 { return .success(rc) }
    let e = Errno.current
    if e == .interrupted { return .success(0) }
    return .failure(e)
}
