import GridletCore

/// What one complete poll of the VTN read.
public struct VTNPoll: Sendable, Equatable {
    /// False when every answer was the same as at the previous poll (304, or the same bytes).
    public var changed: Bool
    /// `GET /programs` (all pages).
    public var programs: [JSONValue]
    /// `GET /events?programID=...` for every followed programme the VTN offers (all pages).
    public var events: [JSONValue]
    public var requests: Int
    public var notModified: Int
    /// Wall time the access token expires (nil: no OAuth token, or no `expires_in`).
    public var tokenExpiresWallMs: Int64?
    /// The VTN's MQTT notifier, when it offers a usable one (VTNNotifier.swift).
    public var notifier: MQTTNotifier?
    /// Why there is no notifier, when there is none.
    public var notifierProblem: String?
    /// The access token in use, for a notifier broker that takes it as password.
    public var accessToken: String?

    public init(changed: Bool, programs: [JSONValue], events: [JSONValue], requests: Int = 0, notModified: Int = 0,
                tokenExpiresWallMs: Int64? = nil, notifier: MQTTNotifier? = nil) {
        self.changed = changed; self.programs = programs; self.events = events; self.requests = requests
        self.notModified = notModified; self.tokenExpiresWallMs = tokenExpiresWallMs; self.notifier = notifier
    }
}

/// Why a poll failed, in words an operator can act on.
public struct VENError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case auth, notFound = "not_found", http, tls, connect, timeout, badAnswer = "bad_answer", config, stopped
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// The VEN's conversation with the VTN over an `HTTPTransport`: the OAuth2 client-credentials
/// token (endpoint from `GET /auth/server` unless configured; refreshed before it expires and
/// once after a 401), `GET /programs` and `GET /events` per followed programme, filtered by
/// targets, paged, with `If-None-Match` where the VTN sends ETags. Runs on the VEN's thread.
public final class VTNSession {
    public static let pageSize = 50
    public static let maxPages = 20

    let config: OpenADRConfig
    let http: any HTTPTransport
    let readFile: (String) -> String?
    var token: String?
    public private(set) var tokenLifetime: TokenLifetime?
    var tokenWallExpiry: Int64?
    var tokenURL: String?
    var cache: [String: (etag: String?, digest: UInt64, value: [JSONValue])] = [:]
    var requests = 0
    var notModified = 0
    var changed = false
    var notifier: MQTTNotifier?
    var notifierProblem: String?
    var notifierCheckedMs: Int64?
    var notifierProgramIDs: [String] = []

    /// `readFile`: the first line of a file, or nil when it cannot be read.
    public init(config: OpenADRConfig, http: any HTTPTransport, readFile: @escaping (String) -> String?) {
        self.config = config
        self.http = http
        self.readFile = readFile
        if case let .clientCredentials(_, _, url, _)? = config.auth { tokenURL = url }
    }

    /// One complete poll; the clocks only time the token.
    public func poll(nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> VTNPoll {
        requests = 0
        notModified = 0
        changed = false
        let programs = try list(path: "/programs", query: [], nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
        var events: [JSONValue] = []
        var ids: [String] = []
        for name in config.programs {
            // The programme's id by name (the mapping reports names the VTN does not offer).
            guard let id = programs.first(where: { $0["programName"]?.stringValue == name })?["id"]?.stringValue else { continue }
            ids.append(id)
            events += try list(path: "/events", query: [("programID", id)], nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
        }
        if !ids.isEmpty { refreshNotifier(programIDs: ids, nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) }
        var poll = VTNPoll(changed: changed, programs: programs, events: events, requests: requests, notModified: notModified,
                           tokenExpiresWallMs: tokenWallExpiry, notifier: notifier)
        poll.notifierProblem = notifierProblem
        poll.accessToken = token
        return poll
    }

    // MARK: lists

    func list(path: String, query: [(String, String)], nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> [JSONValue] {
        var all: [JSONValue] = []
        for page in 0..<Self.maxPages {
            var q = query
            for t in config.targets { q.append(("targets", t)) }
            q.append(("skip", String(page * Self.pageSize)))
            q.append(("limit", String(Self.pageSize)))
            let url = config.vtnURL + path + "?" + q.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
            let items = try fetchList(url, nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
            all += items
            if items.count < Self.pageSize { break }
        }
        return all
    }

    func fetchList(_ url: String, nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> [JSONValue] {
        let cached = cache[url]
        var retried = false
        while true {
            var headers = ["Accept: application/json"]
            if let bearer = try bearerToken(nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) { headers.append("Authorization: Bearer \(bearer)") }
            if let etag = cached?.etag { headers.append("If-None-Match: \(etag)") }
            let request = HTTPRequest(.get, url, headers: headers)
            let r = try send(request)
            switch r.status {
            case 200:
                let digest = payloadDigest(r.body)
                if let cached, cached.digest == digest { cache[url]?.etag = r.etag; return cached.value }
                let value: JSONValue
                do { value = try JSONValue.parse(r.body) } catch {
                    throw VENError(.badAnswer, "\(request.line): the VTN answered malformed JSON (\(error)); this poll is ignored")
                }
                guard let items = value.arrayValue else {
                    throw VENError(.badAnswer, "\(request.line): the VTN answered \(kind(of: value)), not a list; this poll is ignored")
                }
                cache[url] = (r.etag, digest, items)
                changed = true
                return items
            case 304 where cached != nil:
                notModified += 1
                return cached!.value
            case 401 where !retried && isOAuth:
                // The token was revoked or expired early: one new token, one more try.
                token = nil
                retried = true
            default:
                throw statusError(request, r)
            }
        }
    }

    var isOAuth: Bool { if case .clientCredentials? = config.auth { return true }; return false }

    func send(_ request: HTTPRequest) throws(VENError) -> HTTPResponse {
        requests += 1
        do {
            return try http.perform(request)
        } catch {
            let k: VENError.Kind
            switch error.kind {
            case .tls: k = .tls
            case .timeout: k = .timeout
            case .stopped: k = .stopped
            case .resolve, .connect, .other: k = .connect
            case .tooLarge: k = .badAnswer
            }
            throw VENError(k, "\(request.line): \(error)")
        }
    }

    func statusError(_ request: HTTPRequest, _ r: HTTPResponse) -> VENError {
        let detail = problemText(r.body)
        switch r.status {
        case 401:
            return VENError(.auth, "\(request.line): 401 Unauthorized\(detail): the VTN refused the credentials; check openadr.auth")
        case 403:
            return VENError(.auth, "\(request.line): 403 Forbidden\(detail): this VEN may not read it; ask the programme operator")
        case 404:
            return VENError(.notFound, "\(request.line): 404 Not Found\(detail); check openadr.vtn_url")
        default:
            return VENError(.http, "\(request.line): HTTP \(r.status)\(detail)")
        }
    }

    // MARK: token

    /// The bearer token for the next request, fetched or refreshed as needed; nil without auth.
    func bearerToken(nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> String? {
        switch config.auth {
        case nil:
            return nil
        case let .bearerToken(file)?:
            guard let t = readFile(file), !t.isEmpty else {
                throw VENError(.config, "cannot read openadr.auth.bearer_token_file \(file) (or it is empty)")
            }
            return t
        case let .clientCredentials(clientID, secretFile, _, scope)?:
            if let token, !(tokenLifetime?.needsRefresh(nowMs: nowMonoMs) ?? false) { return token }
            guard let secret = readFile(secretFile), !secret.isEmpty else {
                throw VENError(.config, "cannot read openadr.auth.client_secret_file \(secretFile) (or it is empty)")
            }
            let url = try tokenEndpoint()
            var form = [("grant_type", "client_credentials"), ("client_id", clientID), ("client_secret", secret)]
            if let scope { form.append(("scope", scope)) }
            let body = form.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
            let request = HTTPRequest(.post, url, headers: ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"],
                                      body: Array(body.utf8))
            let r = try send(request)
            guard r.status == 200 else {
                var text = "token endpoint \(request.line): HTTP \(r.status)"
                if let v = try? JSONValue.parse(r.body), let e = v["error"]?.stringValue {
                    text += " \(e)" + (v["error_description"]?.stringValue.map { ": \($0)" } ?? "")
                } else {
                    text += problemText(r.body)
                }
                throw VENError(.auth, text + "; check openadr.auth.client_id and client_secret_file")
            }
            guard let v = try? JSONValue.parse(r.body), let t = v["access_token"]?.stringValue, !t.isEmpty,
                  t.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw VENError(.badAnswer, "token endpoint \(request.line): the answer has no usable access_token")
            }
            if let type = v["token_type"]?.stringValue, type.lowercased() != "bearer" {
                throw VENError(.badAnswer, "token endpoint \(request.line): token_type is \(type), not Bearer")
            }
            let lifetime = v["expires_in"]?.doubleValue.flatMap { $0 > 0 && $0 < 1e9 ? Int64($0 * 1000) : nil }
            token = t
            tokenLifetime = TokenLifetime(obtainedMs: nowMonoMs, lifetimeMs: lifetime)
            tokenWallExpiry = lifetime.map { nowWallMs + $0 }
            return t
        }
    }

    /// The configured token URL, else the one `GET /auth/server` names (asked once).
    func tokenEndpoint() throws(VENError) -> String {
        if let tokenURL { return tokenURL }
        let request = HTTPRequest(.get, config.vtnURL + "/auth/server", headers: ["Accept: application/json"])
        let r = try send(request)
        guard r.status == 200 else { throw statusError(request, r) }
        guard let v = try? JSONValue.parse(r.body), let url = v["tokenURL"]?.stringValue else {
            throw VENError(.badAnswer, "\(request.line): the answer has no tokenURL; set openadr.auth.token_url")
        }
        guard let (scheme, host) = urlSchemeAndHost(url), scheme == "https" || (scheme == "http" && isLoopbackHost(host)) else {
            throw VENError(.badAnswer, "\(request.line): tokenURL '\(url)' is not an https:// URL; set openadr.auth.token_url")
        }
        tokenURL = url
        return url
    }

    public var tokenExpiresWallMs: Int64? { tokenWallExpiry }
}

/// ` (title: detail)` from an RFC 7807 problem body, or empty.
func problemText(_ body: [UInt8]) -> String {
    guard let v = try? JSONValue.parse(body) else { return "" }
    let parts = [v["title"]?.stringValue, v["detail"]?.stringValue].compactMap { $0 }.filter { !$0.isEmpty }
    return parts.isEmpty ? "" : " (\(parts.joined(separator: ": ")))"
}

func kind(of v: JSONValue) -> String {
    switch v {
    case .object: return "an object"
    case .array: return "a list"
    case .string: return "a string"
    case .number: return "a number"
    case .bool: return "a boolean"
    case .null: return "null"
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
public func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E:
            out.unicodeScalars.append(Unicode.Scalar(b))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out.unicodeScalars.append("%")
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(b >> 4)]))
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(b & 0xF)]))
        }
    }
    return out
}
