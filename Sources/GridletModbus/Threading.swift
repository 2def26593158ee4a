import Glibc
import Synchronization

/// Dedicated POSIX threads for code that must never run on Swift's cooperative pool
/// (libmodbus calls block in the kernel for up to a timeout).
enum PosixThread {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Starts a joinable thread running `body`.
    static func start(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&tid, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, arg)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(arg).release()
            return nil
        }
        return tid
    }

    static func isCurrent(_ tid: pthread_t) -> Bool { pthread_equal(tid, pthread_self()) != 0 }

    /// Joins `tid`, or detaches it when called from that very thread (a thread cannot join itself).
    static func joinOrDetach(_ tid: pthread_t) {
        if isCurrent(tid) { pthread_detach(tid) } else { pthread_join(tid, nil) }
    }
}

/// A pthread mutex and condition variable pair guarding a value.
///
/// `@unchecked Sendable` is safe because: `pthread_cond_wait` needs a `pthread_mutex_t`, so the
/// stdlib `Mutex` cannot be used with it; the mutex and condition are heap-allocated once in
/// `init`, never moved or reassigned, and destroyed in `deinit` when no thread can hold a
/// reference any more; `value` is only read or written inside `withLock`/`wait`, i.e. while
/// the pthread mutex is held, and `Value` is `Sendable`, so handing it between threads is fine.
final class LockedCondition<Value: Sendable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the lock held and wakes all waiters afterwards.
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
        return try body(&value)
    }

    /// Waits until `extract` returns non-nil (it runs with the lock held and may mutate the
    /// value), or until `timeoutMs` passes (then returns nil). nil timeout waits forever.
    func wait<R>(timeoutMs: Int64? = nil, _ extract: (inout Value) -> R?) -> R? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let deadline = timeoutMs.map { Clock.monotonicMs() + $0 }
        while true {
            if let r = extract(&value) { return r }
            if let deadline {
                let now = Clock.monotonicMs()
                if now >= deadline { return nil }
                var ts = timespec(tv_sec: Int(deadline / 1000), tv_nsec: Int((deadline % 1000) * 1_000_000))
                pthread_cond_timedwait(cond, mutex, &ts)
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
    }
}

enum Clock {
    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func wallMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func sleepMs(_ ms: Int64) {
        guard ms > 0 else { return }
        var ts = timespec(tv_sec: Int(ms / 1000), tv_nsec: Int((ms % 1000) * 1_000_000))
        var rem = timespec()
        while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
    }
}
