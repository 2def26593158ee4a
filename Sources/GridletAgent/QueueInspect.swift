import Glibc
import GridletCore
import GridletQueue

/// The JSON answers of `gridlet queue stats` and `gridlet queue peek`, built either by the
/// daemon's control loop (the queue's single owner; the socket thread only passes the text
/// on) or by the CLI on a queue it opened read-only because no daemon runs.
public enum QueueInspect {
    static func kindName(_ k: RecordKind) -> String {
        switch k {
        case .telemetry: "telemetry"
        case .ledger: "ledger"
        case .response: "response"
        case .gap: "gap"
        case .report: "report"
        }
    }

    public static func statsJSON(_ st: QueueStats, nowWallMs: Int64) -> JSONValue {
        func n(_ v: Int) -> JSONValue { .number(Double(v)) }
        let oldest: JSONValue = st.oldestTimestampMs.map { .number(Double(max(0, nowWallMs - $0)) / 1000) } ?? .null
        return .object([
            ("ok", .bool(true)),
            ("records", n(st.records)), ("bytes", n(st.bytes)),
            ("capacity", n(st.telemetryCapacity + st.priorityCapacity)),
            ("oldest_age_s", oldest),
            ("oldest", st.oldestTimestampMs.map { .string(Timestamp.format(ms: $0)) } ?? .null),
            ("dropped", n(st.droppedRecords)), ("skipped_on_recovery", n(st.skippedOnRecovery)),
            ("next_seq", .number(Double(st.nextSeq))),
            ("telemetry", .object([("records", n(st.telemetryRecords)), ("bytes", n(st.telemetryBytes)),
                                   ("capacity", n(st.telemetryCapacity)), ("dropped", n(st.droppedTelemetry))])),
            ("priority", .object([("records", n(st.priorityRecords)), ("bytes", n(st.priorityBytes)),
                                  ("capacity", n(st.priorityCapacity)), ("dropped", n(st.droppedPriority))])),
        ])
    }

    public static func peekJSON(_ q: DiskQueue, count: Int, nowWallMs: Int64) -> JSONValue {
        peekJSON(q.records(after: 0, limit: max(0, min(count, 1000))), nowWallMs: nowWallMs)
    }

    static func peekJSON(_ recs: [QueuedRecord], nowWallMs: Int64) -> JSONValue {
        .object([
            ("ok", .bool(true)),
            ("records", .array(recs.map { r in
                let body: JSONValue = (try? JSONValue.parse(r.payload)) ?? .string(String(decoding: r.payload, as: UTF8.self))
                return .object([("seq", .number(Double(r.seq))), ("kind", .string(kindName(r.kind))),
                                ("ts", .string(Timestamp.format(ms: r.timestampMs))),
                                ("age_s", .number(Double(max(0, nowWallMs - r.timestampMs)) / 1000)),
                                ("bytes", .number(Double(r.payload.count))), ("payload", body)])
            })),
        ])
    }

    /// Without a daemon: open `directory` read-only and answer `queue-stats` or
    /// `queue-peek N`. Fails with a clear message when the queue is locked or missing.
    public static func direct(directory: String, request: String, nowWallMs: Int64) -> Result<String, AgentError> {
        let q: DiskQueue
        do {
            q = try DiskQueue(readOnlyDirectory: directory)
        } catch {
            if error.errno == EWOULDBLOCK {
                return .failure(AgentError("the queue in \(directory) is locked by a running gridlet, and its socket did not answer; check it runs (systemctl status gridlet) and pass --socket PATH if site.socket is not the default"))
            }
            if error.errno == ENOENT {
                return .failure(AgentError("no queue in \(directory) (has the agent run yet? is site.state_dir right?)"))
            }
            return .failure(AgentError("cannot open the queue: \(error); check the permissions of \(directory) (run as the gridlet user or with sudo)"))
        }
        defer { q.close() }
        let words = request.split(separator: " ")
        if words.first == "queue-peek" {
            return .success(peekJSON(q, count: words.count > 1 ? Int(words[1]) ?? 10 : 10, nowWallMs: nowWallMs).serialized)
        }
        return .success(statsJSON(q.stats, nowWallMs: nowWallMs).serialized)
    }
}

extension Agent {
    /// Called by the control loop each turn: publishes the queue stats for the socket and
    /// answers a pending peek request (only then are records read).
    func publishQueueViews(nowWall: Int64) {
        guard let status else { return }
        status.update(queueStats: QueueInspect.statsJSON(queue.stats, nowWallMs: nowWall).serialized)
        if let n = status.takePeekRequest() {
            status.answerPeek(QueueInspect.peekJSON(queue.records(after: 0, limit: max(0, min(n, 1000))), nowWallMs: nowWall).serialized)
        }
    }
}
