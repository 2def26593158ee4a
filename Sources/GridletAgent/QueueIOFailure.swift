import GridletQueue

/// What the agent does after the disk queue reported a failed fdatasync (SPEC §4). The queue
/// decides what survives and writes the `io_error` gap record (`DiskQueue.recoverAfterIOError`);
/// the agent logs it, hands the gap records to the publish pipeline and, when the queue cannot
/// be reopened, stops the daemon with a non-zero exit so that systemd restarts it
/// (`Restart=on-failure`): a daemon that runs on without a queue would publish nothing while
/// looking healthy.
extension Agent {
    /// Called before every append and once per turn; does nothing while the queue is fine.
    func recoverQueueIfFailed(nowWall: Int64) {
        guard queueFatal == nil else { return }
        let recovery: QueueIORecovery?
        do throws(QueueError) {
            recovery = try queue.recoverAfterIOError(nowMs: nowWall)
        } catch {
            log.error("queue: reopening the queue after a failed fdatasync failed too: \(error). gridlet stops with exit status 1 "
                      + "so that systemd restarts it (Restart=on-failure); if this repeats, check the disk holding state_dir "
                      + "(dmesg, smartctl) and that it is writable and not full")
            queueFatal = AgentError("queue: cannot reopen the queue after a failed fdatasync (\(error)); exiting with status 1 "
                                    + "for systemd to restart gridlet: check the disk holding state_dir (dmesg, smartctl)")
            return
        }
        guard let recovery else { return }
        for loss in recovery.losses { pipeline.appended(seq: loss.gapSeq) }
        queueErrorLogged = false
        log.error("queue: recovered from a failed fdatasync (\(recovery.error)): reopened the queue and kept the records "
                  + "synced before it; \(recovery). The disk reported a write error: check it (dmesg, smartctl) and replace "
                  + "it if this repeats")
    }
}
