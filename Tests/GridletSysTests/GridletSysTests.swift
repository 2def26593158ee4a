import Glibc
import GridletSys
import Synchronization
import Testing

@Suite struct SystemClockTests {
    @Test func monotonicClocksAgreeAndSleepWaitsAtLeastAsLongAsAsked() {
        let startMs = SystemClock.monoMs(), startUs = SystemClock.monoUs()
        SystemClock.sleepMs(30)
        let elapsedMs = SystemClock.monoMs() - startMs, elapsedUs = SystemClock.monoUs() - startUs
        #expect(elapsedMs >= 30)
        #expect(elapsedUs >= 30_000)
        #expect(abs(elapsedUs / 1000 - elapsedMs) <= 2)
    }

    @Test func wallClockIsUnixMilliseconds() {
        var tv = timeval()
        gettimeofday(&tv, nil)
        #expect(abs(SystemClock.wallMs() - (Int64(tv.tv_sec) * 1000 + Int64(tv.tv_usec) / 1000)) < 1000)
    }

    @Test func sleepOfZeroOrLessReturnsAtOnce() {
        let start = SystemClock.monoMs()
        SystemClock.sleepMs(0)
        SystemClock.sleepMs(-5)
        #expect(SystemClock.monoMs() - start < 5)
    }
}

@Suite struct PosixThreadTests {
    @Test func runsTheClosureOnANamedThreadAndJoins() throws {
        let seen = Mutex<(name: String, ranOnIt: Bool)?>(nil)
        let thread = try PosixThread.start(name: "gridlet-test-thread-name") {
            seen.withLock { $0 = (currentThreadName(), true) }
        }
        #expect(!thread.isCurrent)
        thread.join()
        let result = seen.withLock { $0 }
        #expect(result?.name == "gridlet-test-th")   // the kernel keeps 15 bytes
        #expect(result?.ranOnIt == true)
    }

    @Test func aThreadThatJoinsItselfDetachesInsteadOfFailing() throws {
        let handle = Mutex<PosixThread?>(nil)
        let done = Atomic<Bool>(false)
        let gate = Mutex(())
        let thread: PosixThread = try gate.withLock { _ in
            let t = try PosixThread.start {
                // Wait for the handle, then "stop the owner" from its own thread.
                while handle.withLock({ $0 }) == nil { SystemClock.sleepMs(1) }
                let me = handle.withLock { $0 }!
                #expect(me.isCurrent)
                me.join()
                done.store(true, ordering: .sequentiallyConsistent)
            }
            handle.withLock { $0 = t }
            return t
        }
        for _ in 0..<2000 where !done.load(ordering: .sequentiallyConsistent) { SystemClock.sleepMs(1) }
        let finished = done.load(ordering: .sequentiallyConsistent)
        #expect(finished)
        #expect(!thread.isCurrent)
    }

    @Test func aDetachedThreadRuns() throws {
        let ran = Atomic<Bool>(false)
        try PosixThread.startDetached(name: "gridlet-detach") { ran.store(true, ordering: .sequentiallyConsistent) }
        for _ in 0..<2000 where !ran.load(ordering: .sequentiallyConsistent) { SystemClock.sleepMs(1) }
        let finished = ran.load(ordering: .sequentiallyConsistent)
        #expect(finished)
    }
}

@Suite struct FileDescriptorTests {
    /// A writer blocked on a full pipe is hit by signals whose handler does not ask for restart:
    /// the kernel ends its write(2) early, with a short count or EINTR. Every byte still arrives once.
    @Test func writeAllWritesEveryByteThroughSignalsAndShortWrites() throws {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        action.sa_flags = 0   // no SA_RESTART
        sigemptyset(&action.sa_mask)
        #expect(sigaction(SIGUSR2, &action, nil) == 0)

        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        // Fill the pipe first, so that the writer's first write(2) blocks before it writes anything:
        // the signals that reach it then make that call fail with EINTR.
        let flags = fcntl(fds[1], F_GETFL)
        _ = fcntl(fds[1], F_SETFL, flags | O_NONBLOCK)
        let filler = [UInt8](repeating: 0xEE, count: 4096)
        var prefilled = 0
        while true {
            let n = write(fds[1], filler, filler.count)
            if n <= 0 { break }
            prefilled += n
        }
        _ = fcntl(fds[1], F_SETFL, flags)

        let bytes = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        let writeEnd = fds[1]
        let outcome = Mutex<Result<Void, Errno>?>(nil)
        let writer = try PosixThread.start(name: "gridlet-writer") {
            // A new thread inherits the signal mask of its creator (here a pool thread that blocks signals).
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGUSR2)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            let r: Result<Void, Errno>
            do throws(Errno) { try FileDescriptor(rawValue: writeEnd).writeAll(bytes); r = .success(()) } catch { r = .failure(error) }
            outcome.withLock { $0 = r }
        }
        for _ in 0..<5 {
            SystemClock.sleepMs(10)
            pthread_kill(writer.id, SIGUSR2)
        }
        // Then drain, signalling the writer between reads: now its writes end early with a short count.
        var received: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while received.count < prefilled + bytes.count {
            if outcome.withLock({ $0 == nil }) { pthread_kill(writer.id, SIGUSR2) }
            let n = read(fds[0], &buf, buf.count)
            if n <= 0 { break }
            received += buf[0..<n]
        }
        writer.join()
        close(fds[0])
        close(fds[1])
        let result = outcome.withLock { $0 }
        #expect(result.map { if case .success = $0 { true } else { false } } == true)
        #expect(received.count == prefilled + bytes.count)
        #expect(received.dropFirst(prefilled).elementsEqual(bytes))
    }

    @Test func writeAllTakesAStringsUTF8AndAnyByteSequence() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        try FileDescriptor(rawValue: fds[1]).writeAll("grüß ".utf8)
        try FileDescriptor(rawValue: fds[1]).writeAll((0..<3).lazy.map { UInt8(ascii: "a") + UInt8($0) })
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(fds[0], &buf, buf.count)
        close(fds[0])
        #expect(Array(buf[0..<max(0, n)]) == Array("grüß abc".utf8))
    }

    @Test func aFailedWriteThrowsItsErrno() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[1])
        #expect(throws: Errno(rawValue: EBADF)) { try FileDescriptor(rawValue: fds[1]).writeAll([1, 2, 3]) }
        close(fds[0])
        #expect(Errno(rawValue: EBADF).description == String(cString: strerror(EBADF)))
    }
}

/// The calling thread's name as the kernel keeps it.
private func currentThreadName() -> String {
    let fd = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 32)
    let n = read(fd, &buf, buf.count)
    return String(decoding: buf[0..<max(0, n)], as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
}
