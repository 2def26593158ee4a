import Dispatch
import Synchronization

/// Inputs from other threads (libmosquitto's, the bus owners', the local socket's) to the
/// control loop, which is the only thread that changes agent state.
///
/// Bounded: completions (polls, writes, PUBACKs, session changes, local requests) are bounded by
/// construction (one poll per device, a few writes per charger, 16 messages in flight, one local
/// request at a time) and always accepted with `post`. What a peer can send without limit
/// (commands) goes through `offer`, which refuses beyond `capacity` pending and counts what it
/// refused, so a flood of commands cannot grow memory without bound.
final class Mailbox<Item: Sendable>: Sendable {
    let capacity: Int
    private let state = Mutex<(items: [Item], offered: Int, refused: Int)>(([], 0, 0))
    private let signal = DispatchSemaphore(value: 0)

    init(capacity: Int = 64) { self.capacity = capacity }

    func post(_ item: Item) {
        state.withLock { $0.items.append(item) }
        signal.signal()
    }

    /// Queues a droppable item; false (and counted) when `capacity` of them are pending already.
    @discardableResult
    func offer(_ item: Item) -> Bool {
        let taken = state.withLock { s -> Bool in
            guard s.offered < capacity else { s.refused += 1; return false }
            s.offered += 1
            s.items.append(item)
            return true
        }
        if taken { signal.signal() }
        return taken
    }

    /// Droppable items refused since the start.
    var refused: Int { state.withLock { $0.refused } }

    /// Waits up to `timeoutMs` for something to arrive, then returns everything queued.
    func take(timeoutMs: Int64) -> [Item] {
        let pending = state.withLock { !$0.items.isEmpty }
        if !pending, timeoutMs > 0 {
            _ = signal.wait(timeout: .now() + .milliseconds(Int(timeoutMs)))
        }
        return state.withLock { s in
            defer { s.items.removeAll(keepingCapacity: true); s.offered = 0 }
            return s.items
        }
    }

    func wake() { signal.signal() }
}
