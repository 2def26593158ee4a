import GridletAgent
import GridletCore
import Testing

/// Where `gridlet modbus` and `gridlet scan` send their transactions. No daemon runs in these
/// tests: the configuration's socket does not exist, so every request goes direct.
@Suite struct ModbusDiagnosticsSessionTests {
    static func configuration() throws -> ConfigLoading.Loaded {
        try ConfigLoading.load(text: """
            site:
              id: test
              timezone: UTC
              state_dir: /tmp/gridlet-session-test
              socket: /nonexistent/gridlet.sock
            buses:
              - name: field
                kind: tcp
                host: 127.0.0.1
                port: 1
            devices:
              - name: meter
                bus: field
                profile: eastron-sdm630
            mqtt:
              host: 127.0.0.1
            """, file: "test.yaml")
    }

    @Test func anUnknownBusIsAUsageErrorThatListsTheConfiguredOnes() throws {
        let loaded = try Self.configuration()
        #expect(throws: DiagnosticsError("no bus 'nope' in test.yaml; configured: field", isUsage: true)) {
            _ = try ModbusDiagnosticsSession(.configured("nope"), timeoutMs: 100, configuration: loaded, configPath: "test.yaml")
        }
    }

    @Test func aBusNeedsAConfiguration() {
        let why = "bus 'field' needs a configuration, and /etc/gridlet/gridlet.yaml was not loaded; pass --config PATH"
        #expect(throws: DiagnosticsError(why, isUsage: true)) {
            _ = try ModbusDiagnosticsSession(.configured("field"), timeoutMs: 100, configuration: nil,
                                             configPath: "/etc/gridlet/gridlet.yaml")
        }
    }

    /// The same endpoint as a configured bus is that bus (through the daemon when it runs).
    @Test func aGivenEndpointOfAConfiguredBusGoesByItsName() throws {
        let loaded = try Self.configuration()
        let tcp = BusConfig.Kind.tcp(host: "127.0.0.1", port: 1)
        #expect(try ModbusDiagnosticsSession(.given(tcp, name: "127.0.0.1:1"), timeoutMs: 100, configuration: loaded,
                                             configPath: "test.yaml").busName == "field")
        #expect(try ModbusDiagnosticsSession(.given(tcp, name: "127.0.0.1:1"), timeoutMs: 100, configuration: nil,
                                             configPath: "test.yaml").busName == "127.0.0.1:1")
        let other = BusConfig.Kind.rtuOverTCP(host: "127.0.0.1", port: 1)
        #expect(try ModbusDiagnosticsSession(.given(other, name: "adapter"), timeoutMs: 100, configuration: loaded,
                                             configPath: "test.yaml").busName == "adapter")
    }

    @Test func aRefusedConnectionIsAnAnswerNotAThrow() throws {
        let session = try ModbusDiagnosticsSession(.configured("field"), timeoutMs: 200, configuration: try Self.configuration(),
                                                   configPath: "test.yaml")
        defer { session.close() }
        let answer = try JSONValue.parse(try session.perform(.read(function: 4, address: 0, count: 2), unit: 1))
        #expect(answer["ok"]?.boolValue == false)
        #expect(answer["via"]?.stringValue == "direct")
        #expect(answer["bus"]?.stringValue == "field")
        #expect(answer["error"]?.stringValue?.contains("ECONNREFUSED") == true)
    }

    @Test func aDirectRTUScanOutsideTheUnitIdsIsRefusedBeforeItStarts() throws {
        let rtu = BusConfig.Kind.rtu(device: "/dev/null", baud: 9600, parity: .none, dataBits: 8, stopBits: 1, rs485: false)
        let session = try ModbusDiagnosticsSession(.given(rtu, name: "/dev/null"), timeoutMs: 10, configuration: nil, configPath: "-")
        var events: [ModbusDiagnosticsSession.ScanProgress] = []
        #expect(throws: DiagnosticsError("RTU unit ids are 1...247; pass --from/--to within it", isUsage: true)) {
            _ = try session.scan(0...3) { events.append($0) }
        }
        #expect(events.isEmpty)
    }

    @Test func aScanReportsEveryUnitAndAnswersAsTheDaemonDoes() throws {
        let session = try ModbusDiagnosticsSession(.configured("field"), timeoutMs: 100, configuration: try Self.configuration(),
                                                   configPath: "test.yaml")
        var events: [ModbusDiagnosticsSession.ScanProgress] = []
        let answer = try JSONValue.parse(try session.scan(1...2) { events.append($0) })
        #expect(events.first == .started(throughDaemon: false))
        let unanswered = events.compactMap { e -> Int? in if case let .probed(u, p) = e, !p.found { u } else { nil } }
        #expect(unanswered == [1, 2])
        #expect(answer["ok"]?.boolValue == true)
        #expect(answer["scanned"]?.doubleValue == 2)
        #expect(answer["found"]?.arrayValue?.isEmpty == true)
    }
}
