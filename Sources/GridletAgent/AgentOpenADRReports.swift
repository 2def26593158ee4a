import GridletCore
import GridletOpenADR
import GridletQueue

/// OpenADR reports on the control loop (docs/openadr.md, "Reports"): a `USAGE` report per ledger
/// interval goes into the disk queue (record kind `report`, beside responses and ledger in the
/// priority ring) and from there, one at a time, to the VEN's thread, which posts it. A report
/// leaves the queue when the VTN took it (2xx, or it already had it) or refused it for good (a 4xx
/// that sending again cannot fix, logged); otherwise it is tried again after a back-off.
final class ReportOutbox {
    /// Seqs of the queued report records, oldest first.
    var pending: [UInt64] = []
    var inFlight: (seq: UInt64, name: String, event: String)?
    /// Seqs below this were queued by an earlier run: looked up at the VTN before they are posted.
    var firstSeqOfRun: UInt64 = 0
    /// The report that failed last (it is looked up before it is posted again).
    var lastFailedSeq: UInt64?
    var backoff: ReportBackoff
    var delivered = 0
    var dropped = 0
    var failedTries = 0
    var last: (name: String, event: String, result: String, ok: Bool, atWallMs: Int64)?
    var lastFailure: String?

    init(seed: UInt64) { backoff = ReportBackoff(seed: seed) }

    func json(nowMono: Int64, nowWall: Int64) -> JSONValue {
        let next: JSONValue = pending.isEmpty || inFlight != nil || backoff.nextMs == .min ? .null
            : .string(Timestamp.format(ms: nowWall + max(0, backoff.nextMs - nowMono)))
        return .object([
            ("queued", .number(Double(pending.count))), ("in_flight", inFlight.map { .string($0.name) } ?? .null),
            ("delivered", .number(Double(delivered))), ("dropped", .number(Double(dropped))),
            ("failed_tries", .number(Double(failedTries))), ("next_try", next),
            ("last", last.map { l in .object([("report", .string(l.name)), ("event", .string(l.event)), ("result", .string(l.result)),
                                              ("ok", .bool(l.ok)), ("at", .string(Timestamp.format(ms: l.atWallMs)))]) } ?? .null),
        ])
    }
}

/// The MQTT link's view of the queue: everything but the OpenADR reports (they go to the VTN).
struct MQTTRecords: OutboundRecordSource {
    let queue: any RecordQueue
    func records(after seq: UInt64, limit: Int) -> [QueuedRecord] {
        var out: [QueuedRecord] = []
        var cursor = seq
        while out.count < limit {
            let want = limit - out.count
            let batch = queue.records(after: cursor, limit: want)
            for r in batch {
                cursor = r.seq
                if r.kind != .report { out.append(r) }
            }
            if batch.count < want { break }
        }
        return out
    }
}

extension Agent {
    /// At start: the reports an earlier run queued. Without `openadr:` they can go nowhere: they
    /// are dropped with a log line.
    func resumeReports() {
        let seqs = queue.unackedSeqs(kind: .report)
        guard let side = openADR else {
            guard !seqs.isEmpty else { return }
            do { try queue.ack(seqs: seqs) } catch { log.error("queue ack failed: \(error)") }
            log.warning("dropped \(seqs.count) OpenADR report(s) from the queue: openadr: is not configured any more")
            return
        }
        side.reports.pending = seqs
        side.reports.firstSeqOfRun = queue.stats.nextSeq
        if !seqs.isEmpty { log.info("OpenADR: \(seqs.count) report(s) queued by the previous run") }
    }

    /// Ledger records just emitted: the intervals they complete become `USAGE` reports, queued.
    func reportUsage(_ records: [LedgerRecord], nowWall: Int64) {
        guard let side = openADR, !records.isEmpty else { return }
        for iv in side.usage.add(records) {
            for r in side.usage.reports(for: iv, clientName: side.config.venName, resourceName: side.reportResourceName) {
                enqueueReport(r, wallMs: nowWall)
            }
        }
    }

    func enqueueReport(_ r: OpenADRReport, wallMs: Int64) {
        guard let side = openADR else { return }
        recoverQueueIfFailed(nowWall: wallMs)
        do {
            let seq = try queue.append(kind: .report, payload: Array(r.body.serialized.utf8), timestampMs: wallMs)
            side.reports.pending.append(seq)
            log.info("OpenADR: report \(r.reportName) queued")
        } catch {
            log.error("queue append failed, OpenADR report \(r.reportName) lost: \(error); check the disk under site.state_dir")
            recoverQueueIfFailed(nowWall: wallMs)
        }
    }

    /// Opt-outs of OpenADR windows just made (responses `opted_out`): each becomes an
    /// `OPERATING_STATE` report for its event, queued like the others. Only windows of events that
    /// ask for `OPERATING_STATE` allow an opt-out (OpenADREvents), so only those get here.
    func reportOptOuts(_ responses: [EventResponse], nowWall: Int64) {
        guard let side = openADR else { return }
        for r in responses where r.status == .optedOut && OpenADREvents.owns(r.event) {
            guard let window = engine.events.first(where: { $0.id == r.event }),
                  let (eventID, intervalID) = side.eventAndInterval(ofWindow: r.event) else {
                log.warning("OpenADR: opt-out of \(r.event) not reported: its event is not known (yet); the VTN is not told")
                continue
            }
            let report = OpenADRReport.optOut(eventID: eventID, intervalID: intervalID, fromMs: max(nowWall, window.effectiveStartMs),
                                              toMs: window.effectiveEndMs, sitePowerW: readings.siteMeterPowerW(nowMono: time.monoMs()),
                                              clientName: side.config.venName, resourceName: side.reportResourceName)
            enqueueReport(report, wallMs: nowWall)
        }
    }

    /// Hands the oldest queued report to the VEN's thread when none is in flight and the back-off allows.
    func driveReports(nowMono: Int64) {
        guard let side = openADR else { return }
        let out = side.reports
        guard out.inFlight == nil, out.backoff.isDue(nowMs: nowMono) else { return }
        while let seq = out.pending.first {
            // `sync: always` with background syncs: the queue hands a record out once it is synced.
            if config.queue.sync == .always && queue.syncsInBackground && seq >= queue.durableBelowSeq { return }
            guard let rec = queue.records(after: seq - 1, limit: 1).first, rec.seq == seq, rec.kind == .report else {
                out.pending.removeFirst()
                log.warning("OpenADR: queued report (seq \(seq)) was dropped from the full queue before it was delivered")
                continue
            }
            guard let body = try? JSONValue.parse(rec.payload), let event = body["eventID"]?.stringValue,
                  let name = body["reportName"]?.stringValue else {
                out.pending.removeFirst()
                do { try queue.ack(seq: seq) } catch { log.error("queue ack failed: \(error)") }
                log.error("OpenADR: queued report (seq \(seq)) is unreadable; dropped")
                continue
            }
            out.inFlight = (seq, name, event)
            side.port.send(OutgoingReport(seq: seq, body: rec.payload, eventID: event, reportName: name,
                                          lookUpFirst: seq < out.firstSeqOfRun || out.lastFailedSeq == seq))
            return
        }
    }

    /// The VEN's thread posted a report.
    func reportDone(seq: UInt64, _ delivery: ReportDelivery, atWallMs: Int64, nowMono: Int64) {
        guard let side = openADR else { return }
        let out = side.reports
        guard let f = out.inFlight, f.seq == seq else { return }
        out.inFlight = nil
        func leave() {
            out.pending.removeAll { $0 == seq }
            out.backoff.succeeded()
            out.lastFailedSeq = nil
            out.lastFailure = nil
            do { try queue.ack(seq: seq) } catch { log.error("queue ack failed (the report is looked up and not sent twice after a restart): \(error)") }
        }
        switch delivery {
        case let .accepted(status):
            leave()
            out.delivered += 1
            out.last = (f.name, f.event, "accepted (HTTP \(status))", true, atWallMs)
            log.info("OpenADR: report \(f.name) delivered (HTTP \(status))")
        case .alreadyThere:
            leave()
            out.delivered += 1
            out.last = (f.name, f.event, "already at the VTN", true, atWallMs)
            log.info("OpenADR: report \(f.name) was already at the VTN; not sent again")
        case let .rejected(status, detail):
            leave()
            out.dropped += 1
            out.last = (f.name, f.event, "refused (HTTP \(status)), dropped", false, atWallMs)
            log.error("OpenADR: report \(f.name) for event \(f.event) dropped: the VTN refused it (\(detail)); sending it again cannot help")
        case let .failed(message):
            out.failedTries += 1
            out.lastFailedSeq = seq
            out.backoff.failed(nowMs: nowMono)
            out.last = (f.name, f.event, "failed: \(message)", false, atWallMs)
            if out.lastFailure != message {
                log.error("OpenADR: report \(f.name) not delivered: \(message) (tried again in \(YAMLScalar.formatDuration(max(0, out.backoff.nextMs - nowMono))), with back-off)")
            }
            out.lastFailure = message
        }
    }

    /// How long the loop may sleep before a report is due again.
    func reportWaitMs(nowMono: Int64) -> Int64? {
        guard let out = openADR?.reports, out.inFlight == nil, !out.pending.isEmpty else { return nil }
        return out.backoff.nextMs == .min ? 0 : max(0, out.backoff.nextMs - nowMono)
    }
}
