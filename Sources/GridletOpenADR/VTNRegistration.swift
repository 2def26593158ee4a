import GridletCore

/// What the VEN found or made at the VTN's `/vens` and `/resources` (docs/openadr.md, "Registration").
public struct VENRegistration: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Listed by the VTN already.
        case found
        /// Created by this VEN now.
        case created
        /// The VTN has no such endpoint (404): enrolment is out of band.
        case notOffered = "not_offered"
        /// The VTN said no (403, 409, another 4xx): the programme operator must act.
        case refused
        /// No usable answer (network, 5xx): tried again before the next poll.
        case failed
    }

    public struct Entry: Sendable, Equatable {
        public var name: String
        public var id: String?
        public var state: State
        /// What happened, in words, for everything but `found`/`created`.
        public var message: String?
        public init(name: String, id: String?, state: State, message: String? = nil) {
            self.name = name; self.id = id; self.state = state; self.message = message
        }
    }

    public var ven: Entry
    public var resources: [Entry]
    public init(ven: Entry, resources: [Entry]) { self.ven = ven; self.resources = resources }
    /// Something failed for a reason that may pass: the VEN tries again before its next poll.
    public var retry: Bool { ven.state == .failed || resources.contains { $0.state == .failed } }
}

extension VTNSession {
    /// Looks this VEN up by name (`GET /vens?venName=`) and creates it when absent (`POST /vens`,
    /// a `VEN_VEN_REQUEST`); then the same for each configured resource under it
    /// (`GET /resources?venID=&resourceName=`, `POST /resources`, a `VEN_RESOURCE_REQUEST`). Never
    /// throws: a VTN that does not offer or allow it is said in the result, and polling goes on.
    public func register(nowMonoMs: Int64, nowWallMs: Int64) -> VENRegistration {
        let name = config.venName
        var ven: VENRegistration.Entry
        switch lookUp(path: "/vens", query: [("venName", name)], field: "venName", value: name, what: "ven '\(name)'",
                      nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) {
        case .found(let id):
            ven = .init(name: name, id: id, state: .found)
        case .absent:
            ven = create(path: "/vens", body: .object([("objectType", .string("VEN_VEN_REQUEST")), ("venName", .string(name))]),
                         name: name, what: "ven '\(name)'", nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
        case .problem(let entry):
            ven = VENRegistration.Entry(name: name, id: nil, state: entry.state, message: entry.message)
        }
        guard let venID = ven.id else {
            let why = "not registered: the ven has no id at the VTN"
            let state: VENRegistration.State = ven.state == .found || ven.state == .created ? .refused : ven.state
            return VENRegistration(ven: ven, resources: config.resources.map { .init(name: $0, id: nil, state: state, message: why) })
        }
        var resources: [VENRegistration.Entry] = []
        for r in config.resources {
            let what = "resource '\(r)' of ven '\(name)'"
            switch lookUp(path: "/resources", query: [("venID", venID), ("resourceName", r)], field: "resourceName", value: r, what: what,
                          nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) {
            case .found(let id):
                resources.append(.init(name: r, id: id, state: .found))
            case .absent:
                resources.append(create(path: "/resources", body: .object([("objectType", .string("VEN_RESOURCE_REQUEST")),
                                                                           ("resourceName", .string(r)), ("venID", .string(venID))]),
                                        name: r, what: what, nowMonoMs: nowMonoMs, nowWallMs: nowWallMs))
            case .problem(let entry):
                resources.append(.init(name: r, id: nil, state: entry.state, message: entry.message))
            }
        }
        return VENRegistration(ven: ven, resources: resources)
    }

    private enum Lookup { case found(String), absent, problem(VENRegistration.Entry) }

    private func lookUp(path: String, query: [(String, String)], field: String, value: String, what: String,
                        nowMonoMs: Int64, nowWallMs: Int64) -> Lookup {
        let q = query + [("skip", "0"), ("limit", String(Self.pageSize))]
        let url = config.vtnURL + path + "?" + q.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
        do throws(VENError) {
            let (request, r) = try authorized(HTTPRequest(.get, url, headers: ["Accept: application/json"]), nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
            guard r.status == 200 else { return .problem(problem(request, r, name: value, what: what, creating: false)) }
            guard let list = (try? JSONValue.parse(r.body))?.arrayValue else {
                return .problem(.init(name: value, id: nil, state: .failed, message: "\(request.line): the answer is not a list"))
            }
            // Filters are optional for a VTN: match the name here too.
            guard let hit = list.first(where: { $0[field]?.stringValue == value }) else { return .absent }
            guard let id = hit["id"]?.stringValue, !id.isEmpty else {
                return .problem(.init(name: value, id: nil, state: .refused, message: "\(request.line): the VTN lists \(what) without an id"))
            }
            return .found(id)
        } catch {
            return .problem(.init(name: value, id: nil, state: error.kind == .auth ? .refused : .failed, message: error.message))
        }
    }

    private func create(path: String, body: JSONValue, name: String, what: String, nowMonoMs: Int64, nowWallMs: Int64) -> VENRegistration.Entry {
        do throws(VENError) {
            let (request, r) = try authorized(HTTPRequest(.post, config.vtnURL + path, headers: ["Content-Type: application/json", "Accept: application/json"],
                                                          body: Array(body.serialized.utf8)), nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
            guard (200..<300).contains(r.status) else { return problem(request, r, name: name, what: what, creating: true) }
            guard let id = (try? JSONValue.parse(r.body))?["id"]?.stringValue, !id.isEmpty else {
                return .init(name: name, id: nil, state: .failed, message: "\(request.line): HTTP \(r.status) without the new object's id")
            }
            return .init(name: name, id: id, state: .created)
        } catch {
            return .init(name: name, id: nil, state: error.kind == .auth ? .refused : .failed, message: error.message)
        }
    }

    /// A request with the bearer token; one new token and one more try after a 401.
    private func authorized(_ base: HTTPRequest, nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> (HTTPRequest, HTTPResponse) {
        var retried = false
        while true {
            var request = base
            if let bearer = try bearerToken(nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) { request.headers.append("Authorization: Bearer \(bearer)") }
            let r = try send(request)
            if r.status == 401 && !retried && isOAuth {
                token = nil
                retried = true
                continue
            }
            return (base, r)
        }
    }

    /// A status other than success, said plainly.
    private func problem(_ request: HTTPRequest, _ r: HTTPResponse, name: String, what: String, creating: Bool) -> VENRegistration.Entry {
        let detail = problemText(r.body)
        switch r.status {
        case 404:
            return .init(name: name, id: nil, state: .notOffered,
                         message: "\(request.line): 404 Not Found\(detail): the VTN does not offer registration; \(what) is taken as enrolled out of band")
        case 403:
            return .init(name: name, id: nil, state: .refused,
                         message: creating ? "\(request.line): 403 Forbidden\(detail): the VTN does not let this VEN create \(what); ask the programme operator to enrol it"
                             : "\(request.line): 403 Forbidden\(detail): this VEN may not look up \(what); registration is left to the programme operator")
        case 409:
            return .init(name: name, id: nil, state: .refused,
                         message: "\(request.line): 409 Conflict\(detail): the VTN already has \(what) that this client cannot see; ask the programme operator")
        case 401:
            return .init(name: name, id: nil, state: .refused, message: "\(request.line): 401 Unauthorized\(detail): the VTN refused the credentials; check openadr.auth")
        case 400..<500:
            return .init(name: name, id: nil, state: .refused, message: "\(request.line): HTTP \(r.status)\(detail): the VTN refused \(what)")
        default:
            return .init(name: name, id: nil, state: .failed, message: "\(request.line): HTTP \(r.status)\(detail)")
        }
    }
}
