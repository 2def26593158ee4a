import GridletCore
import Testing
@testable import GridletOpenADR

/// A VTN in memory: answers by path, records every request.
final class FakeTransport: HTTPTransport {
    var requests: [HTTPRequest] = []
    var answer: (HTTPRequest) throws(HTTPError) -> HTTPResponse

    init(_ answer: @escaping (HTTPRequest) throws(HTTPError) -> HTTPResponse) { self.answer = answer }

    func perform(_ request: HTTPRequest) throws(HTTPError) -> HTTPResponse {
        requests.append(request)
        return try answer(request)
    }

    var lines: [String] { requests.map(\.line) }
}

func path(_ r: HTTPRequest) -> String {
    let afterHost = r.url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
    return afterHost.count > 3 ? "/" + afterHost[3] : "/"
}

func header(_ r: HTTPRequest, _ name: String) -> String? {
    r.headers.first { $0.lowercased().hasPrefix(name.lowercased() + ": ") }.map { String($0.dropFirst(name.count + 2)) }
}

func ok(_ text: String, etag: String? = nil) -> HTTPResponse { HTTPResponse(status: 200, body: Array(text.utf8), etag: etag) }

let programs = #"[{"id":"p1","programName":"vpp","objectType":"PROGRAM","createdDateTime":"2027-01-01T00:00:00Z","modificationDateTime":"2027-01-01T00:00:00Z"},{"id":"p2","programName":"other","objectType":"PROGRAM","createdDateTime":"2027-01-01T00:00:00Z","modificationDateTime":"2027-01-01T00:00:00Z"}]"#
let events = #"[{"id":"e1","programID":"p1","objectType":"EVENT","createdDateTime":"2027-01-01T00:00:00Z","modificationDateTime":"2027-01-01T00:00:00Z","intervals":[]}]"#

func config(auth: OpenADRConfig.Auth? = .clientCredentials(clientID: "ven 1", secretFile: "/secret", tokenURL: nil, scope: nil),
            targets: [String] = []) -> OpenADRConfig {
    OpenADRConfig(vtnURL: "https://vtn.test/oadr", auth: auth, venName: "ven-1", programs: ["vpp"], targets: targets)
}

let files: @Sendable (String) -> String? = { ["/secret": "s3cr&t", "/token": "static-token"][$0] }

/// A VTN with /auth/server, a token endpoint handing out numbered tokens that live `lifetimeS`,
/// /programs and /events.
final class VTN {
    var tokens = 0
    var lifetimeS = 3600
    var valid: Set<String> = []
    var eventsBody = events
    var etags = false
    lazy var transport = FakeTransport { [unowned self] (r) throws(HTTPError) -> HTTPResponse in try self.answer(r) }

    func answer(_ r: HTTPRequest) throws(HTTPError) -> HTTPResponse {
        let p = path(r)
        if p == "/oadr/auth/server" { return ok(#"{"tokenURL":"https://auth.test/token"}"#) }
        if r.url == "https://auth.test/token" {
            tokens += 1
            valid.insert("t\(tokens)")
            return ok(#"{"access_token":"t\#(tokens)","token_type":"Bearer","expires_in":\#(lifetimeS)}"#)
        }
        guard let auth = header(r, "Authorization"), valid.contains(String(auth.dropFirst(7))) else {
            return HTTPResponse(status: 401, body: Array(#"{"title":"Unauthorized","status":401,"detail":"token expired"}"#.utf8))
        }
        let tag = "\"\(payloadDigest(Array(eventsBody.utf8)))\""
        if p.hasPrefix("/oadr/programs?") { return ok(programs) }
        if p.hasPrefix("/oadr/events?") {
            if etags, header(r, "If-None-Match") == tag { return HTTPResponse(status: 304) }
            return ok(eventsBody, etag: etags ? tag : nil)
        }
        return HTTPResponse(status: 404, body: Array(#"{"title":"Not Found","status":404,"detail":"Unrecognized URL"}"#.utf8))
    }
}

@Suite struct VTNSessionTests {
    @Test func discoversTheTokenEndpointAndReadsProgrammesAndEvents() throws {
        let vtn = VTN()
        let s = VTNSession(config: config(targets: ["group 1", "feeder-7"]), http: vtn.transport, readFile: files)
        let p = try s.poll(nowMonoMs: 0, nowWallMs: 1_000_000)
        #expect(vtn.transport.lines == [
            "GET https://vtn.test/oadr/auth/server",
            "POST https://auth.test/token",
            "GET https://vtn.test/oadr/programs?targets=group%201&targets=feeder-7&skip=0&limit=50",
            "GET https://vtn.test/oadr/events?programID=p1&targets=group%201&targets=feeder-7&skip=0&limit=50",
            "GET https://vtn.test/oadr/notifiers",   // once an hour: this VTN has none
        ])
        let tokenRequest = vtn.transport.requests[1]
        #expect(String(decoding: tokenRequest.body ?? [], as: UTF8.self) == "grant_type=client_credentials&client_id=ven%201&client_secret=s3cr%26t")
        #expect(header(tokenRequest, "Content-Type") == "application/x-www-form-urlencoded")
        #expect(header(vtn.transport.requests[2], "Authorization") == "Bearer t1")
        #expect(p.changed && p.programs.count == 2 && p.events.count == 1)
        #expect(p.tokenExpiresWallMs == Int64(4_600_000))
    }

    @Test func theTokenIsRefreshedBeforeItExpiresSoNoPollIsMissed() throws {
        let vtn = VTN()
        vtn.lifetimeS = 10
        let s = VTNSession(config: config(), http: vtn.transport, readFile: files)
        _ = try s.poll(nowMonoMs: 0, nowWallMs: 0)
        _ = try s.poll(nowMonoMs: 4000, nowWallMs: 4000)       // 6 s left: still good
        #expect(vtn.tokens == 1)
        // 10 s lifetime: refreshed once less than 5 s are left, before the requests go out.
        vtn.valid.remove("t1")   // and the VTN would refuse the old one from here on
        vtn.transport.requests = []
        let p = try s.poll(nowMonoMs: 5000, nowWallMs: 5000)
        #expect(vtn.tokens == 2 && p.events.count == 1)
        #expect(vtn.transport.lines.first == "POST https://auth.test/token")
        #expect(!vtn.transport.requests.contains { $0.method == .get && header($0, "Authorization") == "Bearer t1" })
        #expect(p.tokenExpiresWallMs == 15_000)
    }

    @Test func a401GetsOneNewTokenThenSaysSoPlainly() throws {
        let vtn = VTN()
        let s = VTNSession(config: config(), http: vtn.transport, readFile: files)
        _ = try s.poll(nowMonoMs: 0, nowWallMs: 0)
        vtn.valid = []   // revoked at the VTN
        _ = try s.poll(nowMonoMs: 1000, nowWallMs: 1000)
        #expect(vtn.tokens == 2)
        // A VTN that refuses every token: a clear error naming the request and what to check.
        let refusing = FakeTransport { (r) throws(HTTPError) -> HTTPResponse in
            r.url.hasSuffix("/token") ? ok(#"{"access_token":"x","token_type":"Bearer"}"#)
                : HTTPResponse(status: 401, body: Array(#"{"title":"Unauthorized","status":401,"detail":"bad token"}"#.utf8))
        }
        let s2 = VTNSession(config: config(auth: .clientCredentials(clientID: "c", secretFile: "/secret", tokenURL: "https://auth.test/token", scope: nil)),
                            http: refusing, readFile: files)
        #expect(throws: VENError(.auth, "GET https://vtn.test/oadr/programs?skip=0&limit=50: 401 Unauthorized (Unauthorized: bad token): the VTN refused the credentials; check openadr.auth")) {
            try s2.poll(nowMonoMs: 0, nowWallMs: 0)
        }
        #expect(refusing.lines.filter { $0.hasPrefix("POST") }.count == 2)
    }

    @Test func tokenEndpointErrorsNameTheRFC6749Error() {
        let t = FakeTransport { (r) throws(HTTPError) -> HTTPResponse in
            HTTPResponse(status: 401, body: Array(#"{"error":"invalid_client","error_description":"unknown client"}"#.utf8))
        }
        let s = VTNSession(config: config(auth: .clientCredentials(clientID: "c", secretFile: "/secret", tokenURL: "https://auth.test/token", scope: "read_all")),
                           http: t, readFile: files)
        #expect(throws: VENError(.auth, "token endpoint POST https://auth.test/token: HTTP 401 invalid_client: unknown client; check openadr.auth.client_id and client_secret_file")) {
            try s.poll(nowMonoMs: 0, nowWallMs: 0)
        }
        #expect(String(decoding: t.requests[0].body ?? [], as: UTF8.self).hasSuffix("&scope=read_all"))
    }

    @Test func notFoundAndTransportErrorsAreSaidPlainly() {
        let t404 = FakeTransport { (r) throws(HTTPError) -> HTTPResponse in
            HTTPResponse(status: 404, body: Array(#"{"title":"Not Found","status":404,"detail":"Unrecognized URL"}"#.utf8))
        }
        #expect(throws: VENError(.notFound, "GET https://vtn.test/oadr/programs?skip=0&limit=50: 404 Not Found (Not Found: Unrecognized URL); check openadr.vtn_url")) {
            try VTNSession(config: config(auth: nil), http: t404, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0)
        }
        let tls = FakeTransport { (r) throws(HTTPError) -> HTTPResponse in
            throw HTTPError(kind: .tls, code: 60, detail: "SSL certificate problem: self-signed certificate")
        }
        do {
            _ = try VTNSession(config: config(auth: nil), http: tls, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0)
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .tls)
            #expect(error.message == "GET https://vtn.test/oadr/programs?skip=0&limit=50: TLS failed: SSL certificate problem: self-signed certificate; check openadr.ca_file and the server's certificate")
        }
    }

    @Test func etagsAndUnchangedBodiesMakeAPollThatChangesNothingCheap() throws {
        let vtn = VTN()
        vtn.etags = true
        let s = VTNSession(config: config(), http: vtn.transport, readFile: files)
        #expect(try s.poll(nowMonoMs: 0, nowWallMs: 0).changed)
        var p = try s.poll(nowMonoMs: 1000, nowWallMs: 1000)
        #expect(!p.changed && p.notModified == 1 && p.events.count == 1)
        #expect(header(vtn.transport.requests.last!, "If-None-Match") != nil)
        vtn.eventsBody = "[]"
        p = try s.poll(nowMonoMs: 2000, nowWallMs: 2000)
        #expect(p.changed && p.events.isEmpty)
        // Without ETags: the same bytes count as unchanged too.
        vtn.etags = false
        _ = try s.poll(nowMonoMs: 3000, nowWallMs: 3000)
        #expect(try !s.poll(nowMonoMs: 4000, nowWallMs: 4000).changed)
    }

    @Test func malformedAnswersFailThePollWithTheRequestNamed() {
        let vtn = VTN()
        vtn.eventsBody = #"[{"id": "#
        #expect(throws: VENError.self) { try VTNSession(config: config(), http: vtn.transport, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0) }
        do {
            _ = try VTNSession(config: config(), http: vtn.transport, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0)
        } catch {
            #expect(error.kind == .badAnswer && error.message.hasPrefix("GET https://vtn.test/oadr/events?programID=p1&skip=0&limit=50: the VTN answered malformed JSON"))
        }
        vtn.eventsBody = #"{"id":"e1"}"#
        #expect(throws: VENError(.badAnswer, "GET https://vtn.test/oadr/events?programID=p1&skip=0&limit=50: the VTN answered an object, not a list; this poll is ignored")) {
            try VTNSession(config: config(), http: vtn.transport, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0)
        }
    }

    @Test func fullPagesAreFollowed() throws {
        let page = "[" + (0..<50).map { #"{"id":"e\#($0)","programID":"p1"}"# }.joined(separator: ",") + "]"
        let t = FakeTransport { (r) throws(HTTPError) -> HTTPResponse in
            if r.url.contains("/programs?") { return ok(programs) }
            return ok(r.url.contains("skip=0&") ? page : #"[{"id":"last","programID":"p1"}]"#)
        }
        let p = try VTNSession(config: config(auth: nil), http: t, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0)
        #expect(p.events.count == 51)
        #expect(t.lines.dropLast().last == "GET https://vtn.test/oadr/events?programID=p1&skip=50&limit=50")
    }

    @Test func theMQTTNotifierIsDiscoveredOnceAnHourAndNeverFailsThePoll() throws {
        var notifiers = #"{"WEBHOOK":true,"MQTT":{"URIS":["https://no","mqtt://broker.test:1884"],"serialization":"JSON","authentication":{"method":"OAUTH2_BEARER_TOKEN","username":"{clientID}"}}}"#
        let t = FakeTransport { (r) throws(HTTPError) -> HTTPResponse in
            switch path(r) {
            case let p where p.hasPrefix("/oadr/programs?"): return ok(programs)
            case let p where p.hasPrefix("/oadr/events?"): return ok("[]")
            case "/oadr/notifiers": return ok(notifiers)
            case "/oadr/notifiers/mqtt/topics/programs/p1/events":
                return ok(#"{"topics":{"CREATE":"programs/p1/events/create","UPDATE":"programs/p1/events/update","DELETE":"programs/p1/events/delete"}}"#)
            default: return ok(#"{"access_token":"tk","token_type":"Bearer"}"#)
            }
        }
        let c = config(auth: .clientCredentials(clientID: "ven-c", secretFile: "/secret", tokenURL: "https://auth.test/token", scope: nil))
        let s = VTNSession(config: c, http: t, readFile: files)
        var p = try s.poll(nowMonoMs: 0, nowWallMs: 0)
        #expect(p.notifier == MQTTNotifier(scheme: "mqtt", host: "broker.test", port: 1884, auth: .bearer(username: "ven-c"),
                                           topics: ["programs/p1/events/create", "programs/p1/events/update", "programs/p1/events/delete"]))
        #expect(p.accessToken == "tk" && p.notifierProblem == nil)
        t.requests = []
        p = try s.poll(nowMonoMs: 60_000, nowWallMs: 60_000)
        #expect(!t.lines.contains { $0.contains("/notifiers") } && p.notifier != nil)
        notifiers = #"{"WEBHOOK":true,"MQTT":{"URIS":["mqtts://b"],"serialization":"JSON","authentication":{"method":"CERTIFICATE","caCert":"","clientCert":"","clientKey":""}}}"#
        p = try s.poll(nowMonoMs: 3_700_000, nowWallMs: 3_700_000)
        #expect(p.notifier == nil && p.events.isEmpty)
        #expect(p.notifierProblem == "MQTT notifier unavailable (authentication CERTIFICATE is not supported (ANONYMOUS or OAUTH2_BEARER_TOKEN)); polling only")
        #expect(mqttEndpoint("mqtts://[::1]") ?? ("", "", 0) == ("mqtts", "::1", 8883))
        #expect(mqttEndpoint("tcp://h:99") ?? ("", "", 0) == ("mqtt", "h", 99))
        #expect(mqttEndpoint("wss://h") == nil)
    }

    @Test func aBearerTokenFileIsSentAsIs() throws {
        let t = FakeTransport { (r) throws(HTTPError) -> HTTPResponse in ok(r.url.contains("/programs?") ? programs : "[]") }
        _ = try VTNSession(config: config(auth: .bearerToken(file: "/token")), http: t, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0)
        #expect(t.requests.allSatisfy { header($0, "Authorization") == "Bearer static-token" })
        #expect(throws: VENError(.config, "cannot read openadr.auth.bearer_token_file /missing (or it is empty)")) {
            try VTNSession(config: config(auth: .bearerToken(file: "/missing")), http: t, readFile: files).poll(nowMonoMs: 0, nowWallMs: 0)
        }
    }
}

@Suite struct VENPollScheduleTests {
    @Test func successesKeepTheIntervalWithJitterAndFailuresBackOff() {
        var s = VENPollSchedule(intervalMs: 60_000, nowMs: 0, seed: 1)
        #expect(s.isDue(nowMs: 0))
        for i in 0..<20 {
            s.succeeded(nowMs: Int64(i) * 100_000)
            let d = s.nextMs - Int64(i) * 100_000
            #expect(d >= 54_000 && d <= 66_000)
        }
        var delays: [Int64] = []
        for _ in 0..<9 {
            s.failed(nowMs: 0)
            delays.append(s.nextMs)
        }
        let nominal: [Int64] = [5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]
        for (d, n) in zip(delays, nominal) { #expect(d <= n && d >= n - n / 5) }
        s.succeeded(nowMs: 0)
        #expect(s.failures == 0)
        s.pollNow(nowMs: 10)
        #expect(s.isDue(nowMs: 10))
    }

    @Test func tokenRefreshMargin() {
        #expect(TokenLifetime(obtainedMs: 0, lifetimeMs: 3_600_000).refreshMs == 2_880_000)   // a fifth left
        #expect(TokenLifetime(obtainedMs: 0, lifetimeMs: 60_000).refreshMs == 30_000)         // at least 30 s, at most half
        #expect(TokenLifetime(obtainedMs: 0, lifetimeMs: 10_000).refreshMs == 5000)
        #expect(TokenLifetime(obtainedMs: 0, lifetimeMs: nil).needsRefresh(nowMs: .max) == false)
    }
}
