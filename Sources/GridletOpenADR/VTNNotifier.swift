import GridletCore

/// The VTN's MQTT notifier (OpenADR 3.1 `GET /notifiers`), as the VEN uses it: a broker to
/// subscribe to for the followed programmes' event topics. A notification only makes the VEN poll
/// now; the poll stays the source of truth, so a missed notification is never a missed event.
public struct MQTTNotifier: Sendable, Equatable {
    public enum Auth: Sendable, Equatable {
        case anonymous
        /// `OAUTH2_BEARER_TOKEN`: the user name given (`{clientID}` replaced), the access token as password.
        case bearer(username: String)
    }
    public var scheme: String   // mqtt | mqtts
    public var host: String
    public var port: Int
    public var auth: Auth
    public var topics: [String]

    public var uri: String { "\(scheme)://\(host):\(port)" }
}

extension VTNSession {
    /// How often the notifier binding and topics are asked again (and at start, and when the
    /// followed programmes' ids change).
    static let notifierRecheckMs: Int64 = 3_600_000

    /// Asks `GET /notifiers` and the events topics of each followed programme, when due. Never
    /// fails the poll: a VTN without a (usable) MQTT notifier leaves `notifier` nil and says why
    /// in `notifierProblem`.
    func refreshNotifier(programIDs: [String], nowMonoMs: Int64, nowWallMs: Int64) {
        if let checked = notifierCheckedMs, nowMonoMs - checked < Self.notifierRecheckMs, programIDs == notifierProgramIDs { return }
        notifierCheckedMs = nowMonoMs
        notifierProgramIDs = programIDs
        do {
            notifier = try discoverNotifier(programIDs: programIDs, nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
            notifierProblem = notifier == nil ? "the VTN offers no MQTT notifier; polling only" : nil
        } catch {
            notifier = nil
            notifierProblem = "MQTT notifier unavailable (\(error.message)); polling only"
        }
    }

    func discoverNotifier(programIDs: [String], nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> MQTTNotifier? {
        let binding = try getObject("/notifiers", nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)
        guard let mqtt = binding["MQTT"], mqtt != .null else { return nil }
        if let s = mqtt["serialization"]?.stringValue, s != "JSON" {
            throw VENError(.badAnswer, "serialization \(s) is not JSON")
        }
        var endpoint: (String, String, Int)?
        for u in mqtt["URIS"]?.arrayValue ?? [] {
            if let s = u.stringValue, let e = mqttEndpoint(s) { endpoint = e; break }
        }
        guard let (scheme, host, port) = endpoint else { throw VENError(.badAnswer, "no mqtt:// or mqtts:// URI in URIS") }
        let auth: MQTTNotifier.Auth
        switch mqtt["authentication"]?["method"]?.stringValue {
        case "ANONYMOUS"?:
            auth = .anonymous
        case "OAUTH2_BEARER_TOKEN"?:
            var user = mqtt["authentication"]?["username"]?.stringValue ?? "{clientID}"
            if user == "{clientID}", case let .clientCredentials(id, _, _, _)? = config.auth { user = id }
            auth = .bearer(username: user)
        case let m:
            throw VENError(.badAnswer, "authentication \(m ?? "(none)") is not supported (ANONYMOUS or OAUTH2_BEARER_TOKEN)")
        }
        var topics: [String] = []
        for id in programIDs {
            let t = try getObject("/notifiers/mqtt/topics/programs/\(percentEncode(id))/events", nowMonoMs: nowMonoMs, nowWallMs: nowWallMs)["topics"]
            if let all = t?["ALL"]?.stringValue {
                topics.append(all)
            } else {
                topics += ["CREATE", "UPDATE", "DELETE"].compactMap { t?[$0]?.stringValue }
            }
        }
        topics = topics.filter { !$0.isEmpty }
        guard !topics.isEmpty else { throw VENError(.badAnswer, "no topics for the programmes' events") }
        return MQTTNotifier(scheme: scheme, host: host, port: port, auth: auth, topics: topics)
    }

    /// One JSON object from the VTN (no ETag: asked rarely).
    func getObject(_ path: String, nowMonoMs: Int64, nowWallMs: Int64) throws(VENError) -> JSONValue {
        var headers = ["Accept: application/json"]
        if let bearer = try bearerToken(nowMonoMs: nowMonoMs, nowWallMs: nowWallMs) { headers.append("Authorization: Bearer \(bearer)") }
        let request = HTTPRequest(.get, config.vtnURL + path, headers: headers)
        let r = try send(request)
        guard r.status == 200 else { throw statusError(request, r) }
        guard let v = try? JSONValue.parse(r.body), v.objectValue != nil else {
            throw VENError(.badAnswer, "\(request.line): the answer is not a JSON object")
        }
        return v
    }
}

/// `mqtt://host[:port]` or `mqtts://host[:port]` (also `tcp://`, `ssl://`), default ports 1883 and 8883.
func mqttEndpoint(_ uri: String) -> (scheme: String, host: String, port: Int)? {
    guard let (scheme, host) = urlSchemeAndHost(uri) else { return nil }
    let tls: Bool
    switch scheme {
    case "mqtt", "tcp": tls = false
    case "mqtts", "ssl": tls = true
    default: return nil
    }
    var port = tls ? 8883 : 1883
    let afterScheme = uri.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
    if afterScheme.count > 2, let colon = afterScheme[2].lastIndex(of: ":"), !afterScheme[2].hasSuffix("]") {
        guard let p = Int(afterScheme[2][afterScheme[2].index(after: colon)...]), (1...65535).contains(p) else { return nil }
        port = p
    }
    let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
    return (tls ? "mqtts" : "mqtt", bare, port)
}
