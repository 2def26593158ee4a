import Dispatch
import GridletSys
import Synchronization

/// A state file write that finished (or failed), with the tokens of everything it made durable.
struct StateWriteResult: Sendable {
    var path: String
    var tokens: [UInt64]
    var error: StateFile.IOError?
}

/// Where the agent's small state files go (`control.json`, `comm.json`, `ledger.json`). The
/// daemon writes them on a thread of their own, so an fsync (tens to hundreds of ms on an SD card)
/// never holds up the control loop; tests write them at once.
protocol StateStore: AnyObject, Sendable {
    /// Writes `bytes` to `path` atomically (`durable`: with fsync), then reports `token` (if any)
    /// through the completion the store was made with. `syncFirst`: a file fdatasynced before
    /// (`ledger.log` before `ledger.json`).
    func submit(path: String, bytes: [UInt8], durable: Bool, token: UInt64?, syncFirst: String?)
    /// Returns once everything submitted is written (at a clean stop).
    func drain()
    /// Writes what is pending and ends the store's thread.
    func close()
}

extension StateStore {
    func submit(path: String, bytes: [UInt8], durable: Bool, token: UInt64?) {
        submit(path: path, bytes: bytes, durable: durable, token: token, syncFirst: nil)
    }
}

/// The daemon's `StateStore`: one writer thread. Writes to the same path coalesce (the newest
/// bytes win and complete every token waiting on that path), so a burst of commands costs one
/// fsync, not one each: a group commit.
final class StateWriter: StateStore {
    private struct Pending {
        var bytes: [UInt8]
        var durable: Bool
        var tokens: [UInt64]
        var syncFirst: String?
    }

    private let state = Mutex<(jobs: [String: Pending], order: [String], busy: Bool, stopping: Bool)>(([:], [], false, false))
    private let wake = DispatchSemaphore(value: 0)
    private let idle = DispatchSemaphore(value: 0)
    private let done: @Sendable (StateWriteResult) -> Void
    private let thread = Mutex<PosixThread?>(nil)

    init(done: @escaping @Sendable (StateWriteResult) -> Void) throws(Errno) {
        self.done = done
        let t = try PosixThread.start(name: "gridlet-state") { [self] in self.run() }
        thread.withLock { $0 = t }
    }

    func submit(path: String, bytes: [UInt8], durable: Bool, token: UInt64?, syncFirst: String?) {
        state.withLock { s in
            if var p = s.jobs[path] {
                p.bytes = bytes
                p.durable = p.durable || durable
                if let token { p.tokens.append(token) }
                if let syncFirst { p.syncFirst = syncFirst }
                s.jobs[path] = p
            } else {
                s.jobs[path] = Pending(bytes: bytes, durable: durable, tokens: token.map { [$0] } ?? [], syncFirst: syncFirst)
                s.order.append(path)
            }
        }
        wake.signal()
    }

    func drain() {
        while true {
            let pending = state.withLock { !$0.jobs.isEmpty || $0.busy }
            if !pending { return }
            _ = idle.wait(timeout: .now() + .milliseconds(50))
        }
    }

    /// Writes what is pending, then ends the thread.
    func close() {
        drain()
        state.withLock { $0.stopping = true }
        wake.signal()
        if let t = thread.withLock({ v -> PosixThread? in defer { v = nil }; return v }) { t.join() }
    }

    private func run() {
        while true {
            wake.wait()
            while let (path, job) = next() {
                var error: StateFile.IOError? = nil
                if let first = job.syncFirst { StateFile.syncExisting(first) }
                do throws(StateFile.IOError) {
                    try StateFile.write(job.bytes, to: path, durable: job.durable)
                } catch let e {
                    error = e
                }
                state.withLock { $0.busy = false }
                done(StateWriteResult(path: path, tokens: job.tokens, error: error))
                idle.signal()
            }
            if state.withLock({ $0.stopping && $0.jobs.isEmpty }) { return }
        }
    }

    private func next() -> (String, Pending)? {
        state.withLock { s -> (String, Pending)? in
            guard !s.order.isEmpty else { return nil }
            let path = s.order.removeFirst()
            guard let job = s.jobs.removeValue(forKey: path) else { return nil }
            s.busy = true
            return (path, job)
        }
    }
}

/// Writes at once, on the caller's thread and without fsync (agent-level tests: the result still
/// goes through the mailbox, as the daemon's would).
final class ImmediateStateStore: StateStore {
    private let done: @Sendable (StateWriteResult) -> Void
    /// Test hook: paths whose writes fail.
    let failing = Mutex<Set<String>>([])
    init(done: @escaping @Sendable (StateWriteResult) -> Void) { self.done = done }

    func submit(path: String, bytes: [UInt8], durable: Bool, token: UInt64?, syncFirst: String?) {
        var error: StateFile.IOError? = nil
        if failing.withLock({ $0.contains(path) }) {
            error = StateFile.IOError(path: path, operation: "write", errno: 5)
        } else {
            do throws(StateFile.IOError) { try StateFile.write(bytes, to: path, durable: false) } catch let e { error = e }
        }
        done(StateWriteResult(path: path, tokens: token.map { [$0] } ?? [], error: error))
    }

    func drain() {}
    func close() {}
}
