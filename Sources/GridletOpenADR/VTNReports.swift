import GridletCore

/// One queued report handed to the VEN's thread to post.
public struct OutgoingReport: Sendable, Equatable {
    /// The disk queue's seq (the agent acks it when the VTN took it).
    public var seq: UInt64
    /// The `POST /reports` body (a `reportRequest`).
    public var body: [UInt8]
    public var eventID: String
    public var reportName: String
    /// Look the report up first (`GET /reports?eventID=…&clientName=…`, matched by `reportName`):
    /// it may have reached the VTN before (a try whose answer was lost, a restart before the ack).
    public var lookUpFirst: Bool

    public init(seq: UInt64, body: [UInt8], eventID: String, reportName: String, lookUpFirst: Bool) {
        self.seq = seq; self.body = body; self.eventID = eventID; self.reportName = reportName; self.lookUpFirst = lookUpFirst
    }
}

extension VTNSession {
    /// Posts one report (`POST <vtn_url>/reports`), looking it up first when asked. Never throws:
    /// what happened is the `ReportDelivery`.
    public func post(_ report: OutgoingReport, nowMonoMs: Int64, nowWallMs: Int64) -> ReportDelivery {
        do throws(VENError) {
            if report.lookUpFirst, try vtnHasReport(report, nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) { return .alreadyThere }
            var retried = false
            while true {
                var headers = ["Content-Type: application/json", "Accept: application/json"]
                if let bearer = try bearerToken(nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) { headers.append("Authorization: Bearer \(bearer)") }
                let request = HTTPRequest(.post, config.vtnURL + "/reports", headers: headers, body: report.body)
                let r = try send(request)
                if (200..<300).contains(r.status) { return .accepted(status: r.status) }
                if r.status == 401 && !retried && isOAuth {
                    token = nil
                    retried = true
                    continue
                }
                if ReportDelivery.isPermanent(status: r.status) {
                    return .rejected(status: r.status, detail: "\(request.line): HTTP \(r.status)\(problemText(r.body))")
                }
                return .failed(statusError(request, r).message)
            }
        } catch {
            return .failed(error.message)
        }
    }

    /// True when the VTN lists a report of this client with the same event and name. An answer
    /// that cannot tell (not 200, not a list) is false: the report is posted.
    func vtnHasReport(_ report: OutgoingReport, nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> Bool {
        for page in 0..<Self.maxPages {
            let q = [("eventID", report.eventID), ("clientName", config.venName),
                     ("skip", String(page * Self.pageSize)), ("limit", String(Self.pageSize))]
            let url = config.vtnURL + "/reports?" + q.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
            var headers = ["Accept: application/json"]
            if let bearer = try bearerToken(nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) { headers.append("Authorization: Bearer \(bearer)") }
            let r = try send(HTTPRequest(.get, url, headers: headers))
            guard r.status == 200, let list = (try? JSONValue.parse(r.body))?.arrayValue else { return false }
            if list.contains(where: { $0["reportName"]?.stringValue == report.reportName }) { return true }
            if list.count < Self.pageSize { return false }
        }
        return false
    }
}
