/// The `openadr:` section: gridlet as an OpenADR 3.1 VEN that polls a VTN for its programmes'
/// events (docs/openadr.md). Durations in milliseconds, powers in W.
public struct OpenADRConfig: Sendable, Equatable {
    /// How the VEN authenticates to the VTN.
    public enum Auth: Sendable, Equatable {
        /// OAuth2 client credentials (the OpenADR 3 default): the secret is read from a file; the
        /// token endpoint is `tokenURL`, or the `tokenURL` the VTN names at `GET /auth/server`.
        case clientCredentials(clientID: String, secretFile: String, tokenURL: String?, scope: String?)
        /// A long-lived bearer token provisioned out of band, read from a file before each poll
        /// (so it can be rotated without a restart).
        case bearerToken(file: String)
    }

    /// The VTN's base URL without a trailing '/', e.g. `https://vtn.example.net/openadr3/3.1.1`.
    public var vtnURL: String
    /// nil: the VTN takes unauthenticated requests (a public tariff).
    public var auth: Auth?
    /// This VEN's name at the VTN; default `site.id`.
    public var venName: String
    /// The programme names (`programName`) whose events this site follows.
    public var programs: [String]
    /// This site's resource names at the VTN (matched against event targets).
    public var resources: [String]
    /// Target strings sent with `GET /programs` and `GET /events` (`targets=`); an event with
    /// targets applies only when one of them is here, in `resources`, or is `venName`.
    public var targets: [String]
    public var pollIntervalMs: Int64
    /// CA bundle for the VTN's and the token endpoint's certificates; nil = the system's. Peer
    /// and host verification are always on.
    public var caFile: String?
    /// Per-request time limit (connect included).
    public var requestTimeoutMs: Int64
    /// `SIMPLE` level (0...3) -> limit in W; a level mapped to nil (or absent) sets no limit.
    public var simpleLevels: [Int: Double?]
    /// Look the VEN and its resources up at the VTN and create them when absent (docs/openadr.md).
    public var register = true

    public init(vtnURL: String, auth: Auth? = nil, venName: String, programs: [String], resources: [String] = [],
                targets: [String] = [], pollIntervalMs: Int64 = 60_000, caFile: String? = nil,
                requestTimeoutMs: Int64 = 30_000, simpleLevels: [Int: Double?] = [:]) {
        self.vtnURL = vtnURL; self.auth = auth; self.venName = venName; self.programs = programs
        self.resources = resources; self.targets = targets; self.pollIntervalMs = pollIntervalMs; self.caFile = caFile
        self.requestTimeoutMs = requestTimeoutMs; self.simpleLevels = simpleLevels
    }

    /// Files the agent must be able to read (key path below `openadr.`, path).
    public var files: [(key: String, path: String)] {
        var f: [(String, String)] = []
        switch auth {
        case let .clientCredentials(_, secretFile, _, _)?: f.append(("auth.client_secret_file", secretFile))
        case let .bearerToken(file)?: f.append(("auth.bearer_token_file", file))
        case nil: break
        }
        if let c = caFile { f.append(("ca_file", c)) }
        return f
    }
}

/// What an `http://` URL may point at: only this machine (a local VTN or a test); anything
/// else must be `https://`.
public func isLoopbackHost(_ host: String) -> Bool {
    host == "localhost" || host == "[::1]" || host.hasPrefix("127.")
}

/// Splits `scheme://host[:port]/path` into its scheme and host (IPv6 in brackets), or nil.
public func urlSchemeAndHost(_ url: String) -> (scheme: String, host: String)? {
    let parts = url.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count >= 3, parts[0].hasSuffix(":"), parts[1].isEmpty, parts[0].count > 1 else { return nil }
    let scheme = String(parts[0].dropLast()).lowercased()
    let rest = parts[2]
    let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
    if authority.contains("@") { return nil }
    var host = String(authority)
    if host.hasPrefix("[") {
        guard let close = host.firstIndex(of: "]") else { return nil }
        host = String(host[...close])
    } else if let colon = host.firstIndex(of: ":") {
        host = String(host[..<colon])
    }
    return host.isEmpty ? nil : (scheme, host.lowercased())
}

extension ConfigDecoder {
    static let openADRKeys = ["vtn_url", "auth", "ven_name", "programs", "resources", "targets", "poll_interval",
                              "ca_file", "timeout", "simple_levels", "register"]
    static let openADRAuthKeys = ["client_id", "client_secret_file", "token_url", "scope", "bearer_token_file"]

    func decodeOpenADR(_ m: inout YAMLMap, siteID: String) throws(YAMLError) -> OpenADRConfig {
        try checkKeys(m, Self.openADRKeys)
        let url = try m.requiredString("vtn_url")
        let vtn = try checkURL(m, "vtn_url", url)
        var auth: OpenADRConfig.Auth?
        if var a = try m.map("auth") {
            try checkKeys(a, Self.openADRAuthKeys)
            if a.has("bearer_token_file") {
                for k in ["client_id", "client_secret_file", "token_url", "scope"] where a.has(k) {
                    throw a.error(k, "use either bearer_token_file or client_id with client_secret_file, not both")
                }
                guard let f = try absolutePath(&a, "bearer_token_file") else { throw a.missing("bearer_token_file") }
                auth = .bearerToken(file: f)
            } else {
                guard let id = try a.string("client_id") else {
                    throw YAMLError(path: a.childPath("client_id"), line: a.node.line,
                                    message: "required: the OAuth2 client id the programme operator issued (or use bearer_token_file)", file: file)
                }
                if id.isEmpty || id.utf8.count > 4096 { throw a.error("client_id", "must be 1 to 4096 characters long") }
                guard let secret = try absolutePath(&a, "client_secret_file") else {
                    throw YAMLError(path: a.childPath("client_secret_file"), line: a.node.line,
                                    message: "required with client_id: an absolute path to a file holding the client secret", file: file)
                }
                var tokenURL: String?
                if let t = try a.string("token_url") { tokenURL = try checkURL(a, "token_url", t) }
                let scope = try a.string("scope")
                auth = .clientCredentials(clientID: id, secretFile: secret, tokenURL: tokenURL, scope: scope)
            }
            try a.finish()
        }
        let venName = try m.string("ven_name") ?? siteID
        if venName.isEmpty || venName.utf8.count > 128 { throw m.error("ven_name", "must be 1 to 128 characters long") }
        guard let programs = try names(&m, "programs") else {
            throw YAMLError(path: m.childPath("programs"), line: m.node.line,
                            message: "required: the names of the programmes to follow (programName at the VTN)", file: file)
        }
        if programs.isEmpty { throw m.error("programs", "list at least one programme name") }
        var c = OpenADRConfig(vtnURL: vtn, auth: auth, venName: venName, programs: programs)
        c.resources = try names(&m, "resources") ?? []
        c.targets = try names(&m, "targets") ?? []
        if let v = try m.durationMs("poll_interval", min: 5000, max: 3_600_000) { c.pollIntervalMs = v }
        if let v = try m.durationMs("timeout", min: 1000, max: 120_000) { c.requestTimeoutMs = v }
        c.caFile = try absolutePath(&m, "ca_file")
        if let v = try m.bool("register") { c.register = v }
        if var levels = try m.map("simple_levels") {
            for key in levels.keys {
                guard let level = Int(key), (0...3).contains(level), key.count == 1 else {
                    throw levels.error(key, "SIMPLE levels are 0, 1, 2 and 3, got '\(key)'")
                }
                c.simpleLevels[level] = .some(try nonNegative(&levels, key))
            }
            try levels.finish()
        }
        try m.finish()
        return c
    }

    /// A list of distinct non-empty strings of at most 128 characters (OpenADR names and targets).
    private func names(_ m: inout YAMLMap, _ key: String) throws(YAMLError) -> [String]? {
        guard let nodes = try m.sequence(key) else { return nil }
        var out: [String] = []
        for (i, n) in nodes.enumerated() {
            let path = "\(m.childPath(key))[\(i)]"
            guard case let .scalar(s, _) = n.value, !s.isEmpty, s.utf8.count <= 128 else {
                throw YAMLError(path: path, line: n.line, message: "expected a name of 1 to 128 characters, got \(describe(n))", file: file)
            }
            if out.contains(s) { throw YAMLError(path: path, line: n.line, message: "'\(s)' is listed twice", file: file) }
            out.append(s)
        }
        return out
    }

    /// `https://host[:port][/path]`, or `http://` to a loopback host; returned without a trailing '/'.
    private func checkURL(_ m: YAMLMap, _ key: String, _ url: String) throws(YAMLError) -> String {
        guard let (scheme, host) = urlSchemeAndHost(url), scheme == "https" || scheme == "http",
              !url.contains(where: { $0 == " " || $0 == "?" || $0 == "#" }) else {
            throw m.error(key, "expected an https:// URL without query or fragment, got '\(url)'")
        }
        if scheme == "http", !isLoopbackHost(host) {
            throw m.error(key, "must use https:// (TLS is required; http:// is accepted only for a VTN on this machine), got '\(url)'")
        }
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        return u
    }
}
