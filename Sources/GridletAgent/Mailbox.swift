import Dispatch
import Synchronization

/// Inputs from other threads (libmosquitto's, the bus owners', the local socket's) to the
/// control loop, which is the only thread that changes agent state.
final class Mailbox<Item: Sendable>: Sendable {
    private let items = Mutex<[Item]>([])
    private let signal = DispatchSemaphore(value: 0)

    func post(_ item: Item) {
        items.withLock { $0.append(item) }
        signal.signal()
    }

    /// Waits up to `timeoutMs` for something to arrive, then returns everything queued.
    func take(timeoutMs: Int64) -> [Item] {
        let pending = items.withLock { !$0.isEmpty }
        if !pending, timeoutMs > 0 {
            _ = signal.wait(timeout: .now() + .milliseconds(Int(timeoutMs)))
        }
        return items.withLock { all in
            defer { all.removeAll(keepingCapacity: true) }
            return all
        }
    }

    func wake() { signal.signal() }
}
