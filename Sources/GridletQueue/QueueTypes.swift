import Glibc

/// Kind of an outbound record. `report` (an OpenADR report for the VTN, docs/openadr.md) lives in
/// the priority ring with responses and ledger records; the MQTT link never publishes it.
public enum RecordKind: UInt8, Sendable {
    case telemetry = 1, ledger = 2, response = 3, gap = 4, report = 5
}

/// When the queue calls `fdatasync`.
public enum QueueSyncMode: Sendable, Equatable {
    /// `fdatasync` after every append, before `append` returns.
    case always
    /// `fdatasync` once the oldest unsynced write is at least `intervalMs` old
    /// (checked on `append` using the record timestamp and on `flushIfDue(nowMs:)`).
    case batch(intervalMs: Int64)
    /// Never sync data (only the rare seq-reservation checkpoint is synced).
    case none
}

/// One stored record.
public struct QueuedRecord: Sendable, Equatable {
    public let seq: UInt64
    public let kind: RecordKind
    public let timestampMs: Int64
    public let payload: [UInt8]

    public init(seq: UInt64, kind: RecordKind, timestampMs: Int64, payload: [UInt8]) {
        self.seq = seq
        self.kind = kind
        self.timestampMs = timestampMs
        self.payload = payload
    }
}

/// Snapshot of queue state.
public struct QueueStats: Sendable, Equatable {
    /// Live records not yet acknowledged.
    public var records: Int
    /// Bytes of the ring occupied by the live region (head..tail, including
    /// acked-but-not-yet-freed records, padding and wrap waste).
    public var bytes: Int
    /// Timestamp of the oldest unacknowledged record.
    public var oldestTimestampMs: Int64?
    /// Non-gap records dropped because the queue was full (since this instance opened).
    public var droppedRecords: Int
    /// Damaged records skipped when this instance opened (see DiskQueue docs).
    public var skippedOnRecovery: Int
    /// The seq the next append will get.
    public var nextSeq: UInt64
    /// Per class: telemetry (its own ring) and priority (responses, ledger and gap
    /// records, in the reserved priority ring). Records are unacked records, bytes the
    /// ring's live region, capacity the ring's size, dropped the non-gap records dropped
    /// because that ring was full (since this instance opened, incl. at migration).
    public var telemetryRecords = 0
    public var telemetryBytes = 0
    public var telemetryCapacity = 0
    public var droppedTelemetry = 0
    public var priorityRecords = 0
    public var priorityBytes = 0
    public var priorityCapacity = 0
    public var droppedPriority = 0
    /// False from a failed fdatasync until `recoverAfterIOError` succeeded: writes are refused.
    public var ok = true
    /// fdatasync errors since this instance opened, and the last one (kept after recovery, so
    /// that status shows the failure happened).
    public var ioErrors = 0
    public var lastIOError: QueueError?

    public init(records: Int, bytes: Int, oldestTimestampMs: Int64?, droppedRecords: Int,
                skippedOnRecovery: Int, nextSeq: UInt64) {
        self.records = records
        self.bytes = bytes
        self.oldestTimestampMs = oldestTimestampMs
        self.droppedRecords = droppedRecords
        self.skippedOnRecovery = skippedOnRecovery
        self.nextSeq = nextSeq
    }
}

/// A failed queue operation: `errno`, the operation and the path involved.
public struct QueueError: Error, Sendable, CustomStringConvertible, Equatable {
    public let errno: Int32
    public let operation: String
    public let path: String
    /// Extra detail for errors that are not plain syscall failures.
    public let detail: String?

    public init(errno: Int32, operation: String, path: String, detail: String? = nil) {
        self.errno = errno
        self.operation = operation
        self.path = path
        self.detail = detail
    }

    public var description: String {
        var s = "queue: \(operation) \(path): \(String(cString: strerror(errno))) (errno \(errno))"
        if let detail { s += ": \(detail)" }
        return s
    }
}
