import GridletCore
import GridletYAML
import Testing

private let base = """
site: {id: s1}
buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
devices: [{name: m, bus: lan, profile: p1}]
mqtt: {host: b}

"""

@Test func openADRSectionParsesWithDefaults() throws {
    let c = try parseConfig(base + """
    openadr:
      vtn_url: https://vtn.example.net/openadr3/3.1.1/
      auth:
        client_id: ven-1
        client_secret_file: /etc/gridlet/vtn.secret
      programs: [vpp-summer]
    """)
    let o = try #require(c.openADR)
    #expect(o == OpenADRConfig(vtnURL: "https://vtn.example.net/openadr3/3.1.1",
                               auth: .clientCredentials(clientID: "ven-1", secretFile: "/etc/gridlet/vtn.secret", tokenURL: nil, scope: nil),
                               venName: "s1", programs: ["vpp-summer"], resources: [], targets: [], pollIntervalMs: 60_000,
                               caFile: nil, requestTimeoutMs: 30_000, simpleLevels: [:]))
    #expect(o.files.map(\.key) == ["auth.client_secret_file"])
    #expect(o.register == true)
    #expect(try parseConfig(base).openADR == nil)
}

@Test func openADRSectionParsesEveryKey() throws {
    let c = try parseConfig(base + """
    openadr:
      vtn_url: http://127.0.0.1:8080
      auth: {bearer_token_file: /etc/gridlet/vtn.token}
      ven_name: ven-site-1
      programs: [a, b]
      resources: [evse]
      targets: [group-1, feeder-7]
      poll_interval: 5s
      timeout: 10s
      ca_file: /etc/gridlet/vtn-ca.pem
      simple_levels: {0: null, 1: 7000, 2: 3500, 3: 0}
      register: false
    """)
    let o = try #require(c.openADR)
    #expect(o.register == false)
    #expect(o.vtnURL == "http://127.0.0.1:8080")
    #expect(o.auth == .bearerToken(file: "/etc/gridlet/vtn.token"))
    #expect(o.venName == "ven-site-1" && o.programs == ["a", "b"] && o.resources == ["evse"] && o.targets == ["group-1", "feeder-7"])
    #expect(o.pollIntervalMs == 5000 && o.requestTimeoutMs == 10_000 && o.caFile == "/etc/gridlet/vtn-ca.pem")
    #expect(o.simpleLevels == [0: Double?.none, 1: 7000, 2: 3500, 3: 0] as [Int: Double?])
    #expect(o.files.map(\.key) == ["auth.bearer_token_file", "ca_file"])
}

@Test func openADRTokenURLAndScope() throws {
    let c = try parseConfig(base + """
    openadr:
      vtn_url: https://vtn.example.net
      auth: {client_id: x, client_secret_file: /s, token_url: "https://auth.example.net/token", scope: read_all}
      programs: [p]
    """)
    #expect(c.openADR?.auth == .clientCredentials(clientID: "x", secretFile: "/s", tokenURL: "https://auth.example.net/token", scope: "read_all"))
}

@Test func mqttMayBeLeftOutOnlyWithOpenADR() throws {
    let c = try parseConfig("""
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    openadr: {vtn_url: "https://v", programs: [p]}
    """)
    #expect(!c.mqttEnabled && c.openADR != nil)
    #expect(try parseConfig(base).mqttEnabled)
    #expect(throws: YAMLError.self) {
        try parseConfig("site: {id: s1}\nbuses: [{name: lan, kind: tcp, host: 10.0.0.2}]\ndevices: [{name: m, bus: lan, profile: p1}]\n")
    }
}

private func bad(_ name: String, _ section: String, _ path: String, _ line: Int, _ fragment: String) -> BadCase {
    BadCase(name: name, yaml: base + section, path: path, line: line, fragment: fragment)
}

let openADRBadCases: [BadCase] = [
    bad("misspelt key", "openadr: {vtn_url: https://v, programs: [p], poll_intervall: 5s}\n",
        "openadr.poll_intervall", 5, "did you mean 'poll_interval'"),
    bad("no vtn_url", "openadr: {programs: [p]}\n", "openadr.vtn_url", 5, "required key is missing"),
    bad("plain http to another host", "openadr: {vtn_url: http://vtn.example.net, programs: [p]}\n",
        "openadr.vtn_url", 5, "must use https://"),
    bad("not a URL", "openadr: {vtn_url: vtn.example.net, programs: [p]}\n", "openadr.vtn_url", 5, "expected an https:// URL"),
    bad("query in URL", "openadr: {vtn_url: \"https://v/x?a=1\", programs: [p]}\n", "openadr.vtn_url", 5, "without query"),
    bad("no programs", "openadr:\n  vtn_url: https://v\n", "openadr.programs", 6, "names of the programmes"),
    bad("empty programs", "openadr:\n  vtn_url: https://v\n  programs: []\n", "openadr.programs", 7, "at least one"),
    bad("duplicate programme", "openadr:\n  vtn_url: https://v\n  programs:\n    - a\n    - a\n", "openadr.programs[1]", 9, "listed twice"),
    bad("poll too fast", "openadr:\n  vtn_url: https://v\n  programs: [p]\n  poll_interval: 1s\n",
        "openadr.poll_interval", 8, "at least 5s"),
    bad("relative secret file", "openadr:\n  vtn_url: https://v\n  programs: [p]\n  auth:\n    client_id: c\n    client_secret_file: vtn.secret\n",
        "openadr.auth.client_secret_file", 10, "absolute path"),
    bad("client id without secret", "openadr:\n  vtn_url: https://v\n  programs: [p]\n  auth:\n    client_id: c\n",
        "openadr.auth.client_secret_file", 9, "required with client_id"),
    bad("both auth kinds", "openadr:\n  vtn_url: https://v\n  programs: [p]\n  auth:\n    client_id: c\n    bearer_token_file: /t\n",
        "openadr.auth.client_id", 9, "not both"),
    bad("simple level 4", "openadr:\n  vtn_url: https://v\n  programs: [p]\n  simple_levels:\n    1: 5000\n    4: 0\n",
        "openadr.simple_levels.4", 10, "0, 1, 2 and 3"),
    bad("negative simple limit", "openadr:\n  vtn_url: https://v\n  programs: [p]\n  simple_levels:\n    2: -1\n",
        "openadr.simple_levels.2", 9, "must be 0 or more"),
    bad("plain http token url", "openadr:\n  vtn_url: https://v\n  programs: [p]\n  auth:\n    client_id: c\n    client_secret_file: /s\n    token_url: http://auth.example.net/t\n",
        "openadr.auth.token_url", 11, "must use https://"),
]

@Test(arguments: openADRBadCases)
func invalidOpenADRSectionIsRejected(_ c: BadCase) {
    invalidConfigIsRejected(c)   // ConfigTests.swift: path, line, message and file
}
