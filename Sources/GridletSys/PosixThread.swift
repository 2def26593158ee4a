import Glibc

/// A dedicated POSIX thread for code that must never run on Swift's cooperative pool: blocking C
/// calls (libmodbus waits in select()/read() up to its timeout, libmosquitto's network loop, a
/// socket's accept loop). A name makes the thread recognisable in `top -H`, `ps -L` and a core
/// dump.
public struct PosixThread: Sendable, Equatable {
    public let id: pthread_t

    /// Starts a joinable thread running `body`; end it with `join()`. `name` is cut to the
    /// kernel's 15 bytes.
    public static func start(name: String? = nil, _ body: @escaping @Sendable () -> Void) throws(Errno) -> PosixThread {
        PosixThread(id: try create(name: name, detached: false, body).get())
    }

    /// Starts a thread that nobody joins: its resources go back to the system when `body` returns.
    public static func startDetached(name: String? = nil, _ body: @escaping @Sendable () -> Void) throws(Errno) {
        _ = try create(name: name, detached: true, body).get()
    }

    /// True when called on this thread.
    public var isCurrent: Bool { system_pthread_is_current(id) }

    /// Waits until the thread has ended. Called on that very thread (a thread cannot join itself,
    /// e.g. when its own work stops its owner) it detaches it instead, so it is reclaimed when
    /// it ends.
    public func join() {
        if isCurrent { system_pthread_detach(id) } else { system_pthread_join(id) }
    }

    private final class Start {
        let name: String?
        let body: @Sendable () -> Void
        init(name: String?, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    private static func create(name: String?, detached: Bool,
                               _ body: @escaping @Sendable () -> Void) -> Result<pthread_t, Errno> {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        // A C function pointer: it captures nothing and is defined outside any actor.
        let result = system_pthread_create(detached: detached, start) { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            if let name = start.name { system_set_thread_name(name) }
            start.body()
            return nil
        }
        if case .failure = result { Unmanaged<Start>.fromOpaque(start).release() }
        return result
    }
}
