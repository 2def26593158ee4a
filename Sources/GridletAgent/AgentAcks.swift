import GridletCore

/// Acknowledgements wait for the disk (SPEC §2: everything received is persisted before it is
/// acknowledged), but the control loop does not: the state files are written by the `StateStore`
/// (its own thread in the daemon), and what must follow a write (a command's reply, the local
/// CLI's answer, the responses) waits in the outbox until the write reports back. The outbox is
/// FIFO, so responses keep the order they were decided in.
extension Agent {
    /// Persists the control state; `then` runs once it is on disk (nil) or the write failed.
    func persistThen(_ then: @escaping (StateFile.IOError?) -> Void) {
        let token = nextStateToken
        nextStateToken += 1
        outbox.append((token, then))
        stateStore.submit(path: statePath, bytes: Array(engine.persistentState.serialized.utf8), durable: true, token: token)
    }

    /// Persists the control state with nobody waiting for it (lifecycle changes, restore state).
    func persistInBackground() {
        stateStore.submit(path: statePath, bytes: Array(engine.persistentState.serialized.utf8), durable: true, token: nil)
    }

    /// Queues responses after everything already waiting for the disk.
    func emit(_ responses: [EventResponse], wallMs: Int64) {
        guard !responses.isEmpty else { return }
        let work = { [self] in for r in responses { enqueue(.response, Records.response(r), wallMs: wallMs) } }
        if outbox.isEmpty { work() } else { outbox.append((nil, { _ in work() })) }
    }

    /// A state file write finished.
    func stored(_ result: StateWriteResult) {
        if let e = result.error {
            if lastPersistError != e.description { log.error("cannot persist \(result.path): \(e)") }
            lastPersistError = e.description
        } else if result.path == statePath {
            lastPersistError = nil
        }
        for t in result.tokens { finishedStateTokens.updateValue(result.error, forKey: t) }
        while let first = outbox.first {
            var outcome: StateFile.IOError? = nil
            if let t = first.token {
                guard let r = finishedStateTokens.removeValue(forKey: t) else { return }
                outcome = r
            }
            outbox.removeFirst()
            first.then(outcome)
        }
    }
}
