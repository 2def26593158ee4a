import CGridletSys
import Glibc

// Every raw C call of GridletSys, in one place (as swift-system's Internals/Syscalls.swift):
// errno is read right after the call that set it, EINTR is retried here, and the public types
// above this file see `Result<_, Errno>`.

/// Makes `call` until it does not fail with EINTR; -1 becomes the errno read right after it.
func valueOrErrno<I: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ call: () -> I) -> Result<I, Errno> {
    while true {
        let result = call()
        if result != -1 { return .success(result) }
        let error = Errno.current
        if !(retryOnInterrupt && error == .interrupted) { return .failure(error) }
    }
}

func system_write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
    valueOrErrno { write(fd, buffer.baseAddress, buffer.count) }
}

/// The time of `clock`. `clock_gettime` fails only for an invalid clock id: a programmer error.
func system_clock_gettime(_ clock: clockid_t) -> timespec {
    var ts = timespec()
    let rc = clock_gettime(clock, &ts)
    precondition(rc == 0, "clock_gettime(\(clock)) failed")
    return ts
}

/// Sleeps for all of `request`: after EINTR it sleeps again for the time that was left.
func system_nanosleep(_ request: timespec) -> Result<Void, Errno> {
    var request = request
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 {
        let error = Errno.current
        guard error == .interrupted else { return .failure(error) }
        request = remaining
    }
    return .success(())
}

/// Starts a thread running `entry(argument)`; pthread_create returns its error instead of
/// setting errno.
func system_pthread_create(detached: Bool, _ argument: UnsafeMutableRawPointer,
                           _ entry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?)
    -> Result<pthread_t, Errno> {
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attributes, entry, argument)
    return rc == 0 ? .success(thread) : .failure(Errno(rawValue: rc))
}

func system_pthread_join(_ thread: pthread_t) { _ = pthread_join(thread, nil) }

func system_pthread_detach(_ thread: pthread_t) { _ = pthread_detach(thread) }

func system_pthread_is_current(_ thread: pthread_t) -> Bool { pthread_equal(thread, pthread_self()) != 0 }

/// Names the calling thread (truncated to the kernel's 15 bytes).
func system_set_thread_name(_ name: String) { gridlet_set_thread_name(name) }

