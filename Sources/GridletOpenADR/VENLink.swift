import Dispatch
import GridletCore
import GridletSys
import Synchronization

/// What the VEN's thread tells the control loop after each poll.
public enum VENReport: Sendable, Equatable {
    case polled(VTNPoll, atWallMs: Int64, nextPollInMs: Int64)
    case failed(VENError, atWallMs: Int64, nextPollInMs: Int64, tokenExpiresWallMs: Int64?)
    /// What registration found or did (before the first poll; again after a failure that may pass).
    case registered(VENRegistration, atWallMs: Int64)
    /// What became of a report handed over with `send(_:)`.
    case reportDone(seq: UInt64, ReportDelivery, atWallMs: Int64)
}

/// The VEN's own thread (`gridlet-ven`): it owns the libcurl handle and the `VTNSession`, polls on
/// the `VENPollSchedule`, and hands every result to `report` (the agent posts it to its mailbox).
/// HTTP never runs on the control loop.
public final class VENLink: Sendable {
    let config: OpenADRConfig
    let report: @Sendable (VENReport) -> Void
    let readFile: @Sendable (String) -> String?
    let makeTransport: @Sendable (_ shouldStop: @escaping @Sendable () -> Bool) throws(HTTPError) -> any HTTPTransport
    private let control = Mutex<(stop: Bool, pollNow: Bool)>((false, false))
    /// The report to post next (the agent hands over one at a time and waits for `.reportDone`).
    private let outgoing = Mutex<OutgoingReport?>(nil)
    private let wake = DispatchSemaphore(value: 0)
    private let thread = Mutex<PosixThread?>(nil)

    /// - Parameters:
    ///   - readFile: the first line of a file (secrets and tokens), nil when unreadable.
    ///   - makeTransport: the HTTP client, made on the VEN's thread; libcurl by default.
    public init(config: OpenADRConfig, readFile: @escaping @Sendable (String) -> String?,
                makeTransport: (@Sendable (_ shouldStop: @escaping @Sendable () -> Bool) throws(HTTPError) -> any HTTPTransport)? = nil,
                report: @escaping @Sendable (VENReport) -> Void) {
        self.config = config
        self.readFile = readFile
        self.report = report
        if let makeTransport {
            self.makeTransport = makeTransport
        } else {
            let c = config
            self.makeTransport = { (stop) throws(HTTPError) -> any HTTPTransport in
                try CurlHTTP(caFile: c.caFile, timeoutMs: c.requestTimeoutMs, shouldStop: stop)
            }
        }
    }

    public func start() throws(Errno) {
        httpGlobalInit()   // on the caller's (main) thread, before the VEN's
        let t = try PosixThread.start(name: "gridlet-ven") { [self] in run() }
        thread.withLock { $0 = t }
    }

    /// Ends the thread; a request in flight is aborted within about a second.
    public func stop() {
        control.withLock { $0.stop = true }
        wake.signal()
        let t = thread.withLock { t -> PosixThread? in defer { t = nil }; return t }
        t?.join()
    }

    /// Poll as soon as possible (e.g. a notification said something changed).
    public func pollNow() {
        control.withLock { $0.pollNow = true }
        wake.signal()
    }

    /// Post `report` as soon as possible (between polls, on the VEN's thread).
    public func send(_ report: OutgoingReport) {
        outgoing.withLock { $0 = report }
        wake.signal()
    }

    var stopping: Bool { control.withLock { $0.stop } }

    private func run() {
        let http: any HTTPTransport
        do {
            http = try makeTransport { [self] in stopping }
        } catch {
            report(.failed(VENError(.config, "cannot set up HTTP: \(error)"), atWallMs: SystemClock.wallMs(), nextPollInMs: 0,
                           tokenExpiresWallMs: nil))
            return
        }
        let session = VTNSession(config: config, http: http, readFile: readFile)
        var registrationDue = config.register
        var schedule = VENPollSchedule(intervalMs: config.pollIntervalMs, nowMs: SystemClock.monoMs(),
                                       seed: UInt64(bitPattern: SystemClock.wallMs()) ^ payloadDigest(Array(config.venName.utf8)))
        while true {
            let now = SystemClock.monoMs()
            let wait = schedule.nextMs - now
            if wait > 0 { _ = wake.wait(timeout: .now() + .milliseconds(Int(min(wait, 3_600_000)))) }
            let (stop, now2) = control.withLock { c -> (Bool, Bool) in defer { c.pollNow = false }; return (c.stop, c.pollNow) }
            if stop { return }
            if let r = outgoing.withLock({ o -> OutgoingReport? in defer { o = nil }; return o }) {
                let delivery = session.post(r, nowMonoMs: SystemClock.monoMs(), nowWallMs: SystemClock.wallMs())
                if stopping { return }
                report(.reportDone(seq: r.seq, delivery, atWallMs: SystemClock.wallMs()))
            }
            let mono = SystemClock.monoMs()
            if now2 { schedule.pollNow(nowMs: mono) }
            guard schedule.isDue(nowMs: mono) else { continue }
            if registrationDue {
                let r = session.register(nowMonoMs: mono, nowWallMs: SystemClock.wallMs())
                if stopping { return }
                registrationDue = r.retry
                report(.registered(r, atWallMs: SystemClock.wallMs()))
            }
            let wall = SystemClock.wallMs()
            do {
                let poll = try session.poll(nowMonoMs: mono, nowWallMs: wall)
                let done = SystemClock.monoMs()
                schedule.succeeded(nowMs: done)
                report(.polled(poll, atWallMs: SystemClock.wallMs(), nextPollInMs: schedule.nextMs - done))
            } catch {
                if error.kind == .stopped || stopping { return }
                let done = SystemClock.monoMs()
                schedule.failed(nowMs: done)
                report(.failed(error, atWallMs: SystemClock.wallMs(), nextPollInMs: schedule.nextMs - done,
                               tokenExpiresWallMs: session.tokenExpiresWallMs))
            }
        }
    }
}
