/// A stored outbound record as the pipeline sees it: only its sequence number matters here.
public protocol SequencedRecord {
    var seq: UInt64 { get }
}

/// Where the pipeline reads records from (the on-disk queue): records with a seq above `seq`,
/// oldest first.
public protocol OutboundRecordSource {
    associatedtype Record: SequencedRecord
    func records(after seq: UInt64, limit: Int) -> [Record]
}

/// Decides what goes to the broker next (SPEC §4): records produced while connected go out at
/// once (live); the backlog (produced while disconnected, or recovered after a restart) drains
/// oldest first, flagged historical, paced at `replay_rate`, alongside. At most `window` messages
/// are in flight; a slow broker slows the drain, since nothing new is handed over until PUBACKs
/// free a slot. It also keeps the ack bookkeeping (message id -> seq).
///
/// The shell moves bytes: it tells the pipeline what was appended, connected or acknowledged,
/// and calls `pump` with a `transmit` function that publishes one record and returns its
/// message id (nil when the client refused it).
public struct PublishPipeline: Sendable {
    /// libmosquitto's outgoing queue is unbounded and in memory: the disk queue feeds it at most this many.
    public static let window = 16

    public let replayRate: Int
    public private(set) var connected = false
    /// Message id -> seq of what libmosquitto holds unacknowledged.
    private var inflight: [Int32: UInt64] = [:]
    /// Seqs handed to libmosquitto in this process and not yet acknowledged.
    private var sent: Set<UInt64> = []
    /// Produced while connected, not yet handed over (in seq order).
    private var pendingLive: [UInt64] = []
    private var pendingHead = 0
    private var liveSeqs: Set<UInt64> = []
    /// The backlog drain's position: every record at or below it has been handed over (or is live).
    private var historyCursor: UInt64 = 0
    private var nextReplayUs: Int64 = 0
    public private(set) var published = 0
    public private(set) var acked = 0

    public init(replayRate: Int) { self.replayRate = max(1, replayRate) }

    public var inFlight: Int { inflight.count }

    public mutating func sessionUp() { connected = true }

    /// Records that were waiting to go out live become backlog: historical, paced.
    public mutating func sessionDown() {
        connected = false
        if pendingHead < pendingLive.count { historyCursor = min(historyCursor, pendingLive[pendingHead] - 1) }
        pendingLive.removeAll(keepingCapacity: true)
        pendingHead = 0
        liveSeqs.removeAll(keepingCapacity: true)
    }

    /// A record was appended to the queue.
    public mutating func appended(seq: UInt64) {
        guard connected else { return }
        liveSeqs.insert(seq)
        pendingLive.append(seq)
    }

    /// The broker acknowledged a message; returns the seq the queue may now drop (nil for a
    /// message that was not a queued record, e.g. a reply or the state).
    public mutating func acknowledged(mid: Int32) -> UInt64? {
        guard let seq = inflight.removeValue(forKey: mid) else { return nil }
        sent.remove(seq)
        acked += 1
        return seq
    }

    /// True when `pump` could hand something over now or soon (live records waiting, or backlog
    /// with room in the window).
    public func hasLive() -> Bool { connected && pendingHead < pendingLive.count }

    /// Microseconds until the next backlog record may go (0 = now); nil when the window is full or
    /// there is no connection.
    public func replayWaitUs(nowUs: Int64, backlog: Int) -> Int64? {
        guard connected, inflight.count < Self.window, backlog > inflight.count else { return nil }
        return max(0, nextReplayUs - nowUs)
    }

    /// Hands records to `transmit` until the window is full, live first, then the paced backlog.
    /// Stops at the first record `transmit` refuses (returns nil): it is tried again next time.
    public mutating func pump<Source: OutboundRecordSource>(
        from source: Source, nowUs: Int64, transmit: (Source.Record, _ historical: Bool) -> Int32?
    ) {
        guard connected else { return }
        var room = Self.window - inflight.count
        func send(_ r: Source.Record, historical: Bool) -> Bool {
            guard let mid = transmit(r, historical) else { return false }
            inflight[mid] = r.seq
            sent.insert(r.seq)
            published += 1
            room -= 1
            return true
        }
        // Live records first. One the client refuses is left to the backlog path.
        var refused = false
        while room > 0, !refused, pendingHead < pendingLive.count {
            let seq = pendingLive[pendingHead]
            pendingHead += 1
            liveSeqs.remove(seq)
            guard let r = source.records(after: seq - 1, limit: 1).first, r.seq == seq else { continue }  // dropped meanwhile
            refused = !send(r, historical: false)
        }
        if pendingHead == pendingLive.count { pendingLive.removeAll(keepingCapacity: true); pendingHead = 0 }
        if refused { return }
        // Then the backlog, paced in microseconds (replay_rate may exceed 1000/s). Above 100/s a
        // late loop may catch up by at most 10 ms worth of records; at or below 100/s it never
        // sends two records closer than 1/replay_rate.
        let spacingUs = max(1, 1_000_000 / Int64(replayRate))
        while room > 0, nowUs >= nextReplayUs {
            // Only as many as there is room for: each record read is a pread and a payload copy
            // (reading a full window for one free slot doubled the drain's reads).
            let limit = room
            let batch = source.records(after: historyCursor, limit: limit)
            guard !batch.isEmpty else { break }
            var progressed = false
            for r in batch {
                if liveSeqs.contains(r.seq) { return }          // the live path owns it and everything after
                historyCursor = r.seq
                if sent.contains(r.seq) { continue }            // handed to libmosquitto already
                guard room > 0, nowUs >= nextReplayUs else { historyCursor = r.seq - 1; return }
                let catchUp: Int64 = spacingUs < 10_000 ? 10_000 : 0
                nextReplayUs = max(nextReplayUs + spacingUs, nowUs - catchUp + spacingUs)
                if !send(r, historical: true) { historyCursor = r.seq - 1; return }
                progressed = true
            }
            if !progressed && batch.count < limit { break }
        }
    }
}
