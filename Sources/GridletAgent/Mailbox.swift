import Glibc
import GridletSys
import Synchronization

/// Inputs from other threads (the bus owners', the state writer's, the local socket's, the
/// MQTT connector's) to the control loop, which is the only thread that changes agent state.
///
/// Bounded: completions (polls, writes, PUBACKs, session changes, local requests) are bounded by
/// construction (one poll per device, a few writes per charger, 16 messages in flight, one local
/// request at a time) and always accepted with `post`. What a peer can send without limit
/// (commands) goes through `offer`, which refuses beyond `capacity` pending and counts what it
/// refused, so a flood of commands cannot grow memory without bound.
///
/// The loop sleeps in `take` on one `poll` over an eventfd and, optionally, one more descriptor
/// (the broker's socket while the loop drives the MQTT client's I/O). A post signals the eventfd
/// only when the loop is asleep, once per sleep: posts made while the loop is working (a PUBACK
/// read on the loop itself, a poll completion during a turn) cost no system call.
final class Mailbox<Item: Sendable>: Sendable {
    let capacity: Int
    private let state = Mutex<(items: [Item], offered: Int, refused: Int, sleeping: Bool)>(([], 0, 0, false))
    private let wakeup: Wakeup

    init(capacity: Int = 64) throws(Errno) {
        self.capacity = capacity
        wakeup = try Wakeup()
    }

    func post(_ item: Item) {
        let wake = state.withLock { s -> Bool in
            s.items.append(item)
            defer { s.sleeping = false }
            return s.sleeping
        }
        if wake { wakeup.signal() }
    }

    /// Queues a droppable item; false (and counted) when `capacity` of them are pending already.
    @discardableResult
    func offer(_ item: Item) -> Bool {
        let (taken, wake) = state.withLock { s -> (Bool, Bool) in
            guard s.offered < capacity else { s.refused += 1; return (false, false) }
            s.offered += 1
            s.items.append(item)
            defer { s.sleeping = false }
            return (true, s.sleeping)
        }
        if wake { wakeup.signal() }
        return taken
    }

    /// Droppable items refused since the start.
    var refused: Int { state.withLock { $0.refused } }

    /// Waits up to `timeoutMs` for something to arrive, then returns everything queued.
    func take(timeoutMs: Int64) -> [Item] { take(timeoutMs: timeoutMs, watching: nil).items }

    /// Waits up to `timeoutMs` for an item or for `watching` to be ready (its `revents` are
    /// returned in `ready`), then returns everything queued. With items pending it does not wait,
    /// but still looks at `watching` (a zero-timeout poll), so a busy mailbox cannot starve it.
    func take(timeoutMs: Int64, watching: (fd: Int32, events: Int16)?) -> (items: [Item], ready: Int16) {
        let sleep = timeoutMs > 0 && state.withLock { s -> Bool in
            guard s.items.isEmpty else { return false }
            s.sleeping = true
            return true
        }
        var ready: Int16 = 0
        if sleep || watching != nil {
            var fds = [pollfd(fd: wakeup.fd, events: Int16(POLLIN), revents: 0)]
            if let w = watching { fds.append(pollfd(fd: w.fd, events: w.events, revents: 0)) }
            // poll takes an Int32 of milliseconds; the loop never asks for more than a second.
            if case .failure = pollDescriptors(&fds, timeoutMs: sleep ? Int32(min(timeoutMs, 60_000)) : 0), sleep {
                // EINVAL/ENOMEM: do not spin; the loop's own deadlines still hold within the timeout.
                usleep(UInt32(min(timeoutMs, 1000)) * 1000)
            }
            if fds[0].revents != 0 { wakeup.drain() }
            if fds.count > 1 { ready = fds[1].revents }
        }
        let items = state.withLock { s in
            defer { s.items.removeAll(keepingCapacity: true); s.offered = 0; s.sleeping = false }
            return s.items
        }
        return (items, ready)
    }

    /// Ends the loop's current (or next) wait.
    func wake() {
        state.withLock { $0.sleeping = false }
        wakeup.signal()
    }
}
