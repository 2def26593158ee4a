import Glibc
import GridletSys

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

    /// Runs `body` with the lock held and wakes all waiters afterwards. The broadcast comes
    /// after the unlock: a waiter woken while the lock is still held would only block again on
    /// the mutex (two more futex calls and a context switch per hand-off). Waiters re-check
    /// their condition under the lock, so the order does not change what they see.
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_mutex_unlock(mutex)
            pthread_cond_broadcast(cond)
        }
        return try body(&value)
    }

    /// Waits until `extract` returns non-nil (it runs with the lock held and may mutate the
    /// value), or until `timeoutMs` passes (then returns nil). nil timeout waits forever.
    func wait<R>(timeoutMs: Int64? = nil, _ extract: (inout Value) -> R?) -> R? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let deadline = timeoutMs.map { SystemClock.monoMs() + $0 }
        while true {
            if let r = extract(&value) { return r }
            if let deadline {
                let now = SystemClock.monoMs()
                if now >= deadline { return nil }
                var ts = timespec(tv_sec: Int(deadline / 1000), tv_nsec: Int((deadline % 1000) * 1_000_000))
                pthread_cond_timedwait(cond, mutex, &ts)
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
    }
}
