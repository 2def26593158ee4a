import GridletCore
import Testing
@testable import GridletOpenADR

/// A VTN with /vens and /resources (in memory) beside the token endpoint of `VTN`.
final class RegistrationVTN {
    let base = VTN()
    var vens: [(id: String, name: String)] = []
    var resources: [(id: String, name: String, venID: String)] = []
    /// Status to answer instead, by "METHOD /path".
    var forced: [String: Int] = [:]
    var bodies: [String] = []
    lazy var transport = FakeTransport { [unowned self] (r) throws(HTTPError) -> HTTPResponse in try self.answer(r) }

    func answer(_ r: HTTPRequest) throws(HTTPError) -> HTTPResponse {
        let p = path(r)
        let route = p.split(separator: "?").first.map(String.init) ?? p
        guard route.hasPrefix("/oadr/vens") || route.hasPrefix("/oadr/resources") else { return try base.answer(r) }
        guard let auth = header(r, "Authorization"), base.valid.contains(String(auth.dropFirst(7))) else { return HTTPResponse(status: 401) }
        if let s = forced["\(r.method.rawValue) \(route)"] {
            return HTTPResponse(status: s, body: Array(#"{"title":"Nope","status":\#(s),"detail":"the test says so"}"#.utf8))
        }
        if let b = r.body { bodies.append(String(decoding: b, as: UTF8.self)) }
        let q = query(p)
        switch (r.method, route) {
        case (.get, "/oadr/vens"):
            let items = vens.filter { q["venName"] == nil || q["venName"] == $0.name }
            return ok("[" + items.map { #"{"id":"\#($0.id)","venName":"\#($0.name)","objectType":"VEN"}"# }.joined(separator: ",") + "]")
        case (.post, "/oadr/vens"):
            let v = try? JSONValue.parse(r.body ?? [])
            let id = "ven-\(vens.count + 1)"
            vens.append((id, v?["venName"]?.stringValue ?? "?"))
            return HTTPResponse(status: 201, body: Array(#"{"id":"\#(id)"}"#.utf8))
        case (.get, "/oadr/resources"):
            let items = resources.filter { $0.venID == q["venID"] && (q["resourceName"] == nil || q["resourceName"] == $0.name) }
            return ok("[" + items.map { #"{"id":"\#($0.id)","resourceName":"\#($0.name)","venID":"\#($0.venID)"}"# }.joined(separator: ",") + "]")
        case (.post, "/oadr/resources"):
            let v = try? JSONValue.parse(r.body ?? [])
            let id = "res-\(resources.count + 1)"
            resources.append((id, v?["resourceName"]?.stringValue ?? "?", v?["venID"]?.stringValue ?? "?"))
            return HTTPResponse(status: 201, body: Array(#"{"id":"\#(id)"}"#.utf8))
        default:
            return HTTPResponse(status: 405)
        }
    }

    func query(_ p: String) -> [String: String] {
        guard let q = p.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var out: [String: String] = [:]
        for kv in q.split(separator: "&") {
            let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { out[parts[0]] = parts[1] }
        }
        return out
    }
}

func regConfig(resources: [String] = ["evse", "battery"]) -> OpenADRConfig {
    var c = config()
    c.resources = resources
    return c
}

@Suite struct VTNRegistrationTests {
    @Test func absentVENAndResourcesAreCreatedThenFoundNextTime() {
        let vtn = RegistrationVTN()
        let s = VTNSession(config: regConfig(), http: vtn.transport, readFile: files)
        let r = s.register(nowMonoMs: 0, nowWallMs: 0)
        #expect(r.ven == .init(name: "ven-1", id: "ven-1", state: .created))
        #expect(r.resources == [.init(name: "evse", id: "res-1", state: .created), .init(name: "battery", id: "res-2", state: .created)])
        #expect(!r.retry)
        #expect(vtn.transport.lines.filter { !$0.contains("auth") } == [
            "GET https://vtn.test/oadr/vens?venName=ven-1&skip=0&limit=50",
            "POST https://vtn.test/oadr/vens",
            "GET https://vtn.test/oadr/resources?venID=ven-1&resourceName=evse&skip=0&limit=50",
            "POST https://vtn.test/oadr/resources",
            "GET https://vtn.test/oadr/resources?venID=ven-1&resourceName=battery&skip=0&limit=50",
            "POST https://vtn.test/oadr/resources",
        ])
        #expect(vtn.bodies == [#"{"objectType":"VEN_VEN_REQUEST","venName":"ven-1"}"#,
                               #"{"objectType":"VEN_RESOURCE_REQUEST","resourceName":"evse","venID":"ven-1"}"#,
                               #"{"objectType":"VEN_RESOURCE_REQUEST","resourceName":"battery","venID":"ven-1"}"#])
        // A second run finds everything: nothing is created twice.
        let again = VTNSession(config: regConfig(), http: vtn.transport, readFile: files).register(nowMonoMs: 0, nowWallMs: 0)
        #expect(again.ven.state == .found && again.resources.allSatisfy { $0.state == .found })
        #expect(vtn.vens.count == 1 && vtn.resources.count == 2)
    }

    @Test func aVTNWithoutRegistrationOrRefusingItIsSaidPlainlyAndNotFatal() throws {
        let vtn = RegistrationVTN()
        vtn.forced["GET /oadr/vens"] = 404
        var r = VTNSession(config: regConfig(), http: vtn.transport, readFile: files).register(nowMonoMs: 0, nowWallMs: 0)
        #expect(r.ven.state == .notOffered && r.resources.allSatisfy { $0.state == .notOffered })
        #expect(r.ven.message == "GET https://vtn.test/oadr/vens?venName=ven-1&skip=0&limit=50: 404 Not Found (Nope: the test says so): "
                + "the VTN does not offer registration; ven 'ven-1' is taken as enrolled out of band")
        #expect(!r.retry)

        vtn.forced = ["POST /oadr/vens": 403]
        r = VTNSession(config: regConfig(), http: vtn.transport, readFile: files).register(nowMonoMs: 0, nowWallMs: 0)
        #expect(r.ven.state == .refused)
        #expect(r.ven.message?.contains("403 Forbidden (Nope: the test says so): the VTN does not let this VEN create ven 'ven-1'; ask the programme operator to enrol it") == true)

        vtn.forced = ["POST /oadr/resources": 409]
        r = VTNSession(config: regConfig(resources: ["evse"]), http: vtn.transport, readFile: files).register(nowMonoMs: 0, nowWallMs: 0)
        #expect(r.ven.state == .created)
        #expect(r.resources.first?.state == .refused)
        #expect(r.resources.first?.message?.contains("409 Conflict (Nope: the test says so): the VTN already has resource 'evse' of ven 'ven-1' that this client cannot see") == true)

        vtn.forced = ["GET /oadr/resources": 503]
        r = VTNSession(config: regConfig(resources: ["evse"]), http: vtn.transport, readFile: files).register(nowMonoMs: 0, nowWallMs: 0)
        #expect(r.ven.state == .found && r.resources.first?.state == .failed && r.retry)

        // No answer at all: failed, tried again later.
        let down = VTNSession(config: regConfig(), http: FakeTransport { (_) throws(HTTPError) -> HTTPResponse in
            throw HTTPError(kind: .connect, detail: "refused")
        }, readFile: files)
        r = down.register(nowMonoMs: 0, nowWallMs: 0)
        #expect(r.ven.state == .failed && r.retry && r.resources.allSatisfy { $0.state == .failed })
    }
}
