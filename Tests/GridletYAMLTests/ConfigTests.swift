import GridletCore
import GridletYAML
import Testing

let knownProfiles: Set<String> = ["eastron-sdm630", "vestel-evc04", "p1"]
func profileExists(_ name: String) -> Bool { knownProfiles.contains(name) }

func parseConfig(_ text: String) throws(YAMLError) -> GridletConfig {
    try GridletConfig.parse(text: text, file: "test.yaml", profileExists: profileExists)
}

let fullExample = """
site:
  id: site-001
  timezone: America/New_York
  state_dir: /var/lib/gridlet
  socket: /run/gridlet/gridlet.sock
  nominal_voltage: 230
  max_import_w: 11000
buses:
  - name: rs485
    kind: rtu
    device: /dev/ttyUSB0
    baud: 9600
    parity: E
    data_bits: 8
    stop_bits: 1
    rs485: true
    timeout: 500ms
    retries: 2
    gap: 20ms
  - name: lan
    kind: tcp
    host: 192.168.1.50
    port: 502
devices:
  - name: meter
    bus: rs485
    unit: 1
    profile: eastron-sdm630
    role: site-meter
    poll: 1s
  - name: evse
    bus: lan
    unit: 255
    profile: vestel-evc04
    role: charger
    phases: 3
    max_current: 32
    min_current: 6
  - name: custom
    bus: lan
    unit: 0
    profile: /etc/gridlet/profiles/custom.yaml
mqtt:
  host: broker.example.net
  port: 8883
  client_id: gridlet-site-001
  username: site-001
  password_file: /etc/gridlet/mqtt.pass
  tls: { ca_file: /etc/gridlet/ca.pem, cert_file: /etc/gridlet/c.pem, key_file: /etc/gridlet/k.pem, insecure: false }
  topic_prefix: gridlet/eu
  keepalive: 30s
telemetry:
  interval: 30s
  ledger_interval: 15m
queue:
  max_bytes: 64MiB
  sync: always
  sync_interval: 250ms
  replay_rate: 100
control:
  default_limit_w: null
  comm_loss_timeout: 120s
  heartbeat_required: false
  fallback_limit_w: 1400
  device_failsafe_timeout: 60s
  restore_delay: 30s
  restore_random: 120s
  ramp_w_per_s: 500
  min_dwell: 60s
  meter_stale_after: 10s
schedules:
  - id: summer-peak
    limit_w: 0
    days: [mon, tue, wed, thu, fri]
    from: "13:00"
    to: "21:00"
    season: { from: "06-01", to: "09-30" }
    except: holidays
    opt_out: true
    primacy: 100
  - id: night
    limit_w: 3680.5
    from: 22:00
    to: "24:00"
holidays:
  holidays: ["2027-05-31", "2027-06-18"]
  leap: [2028-02-29]
"""

@Test func fullExampleParses() throws {
    let c = try parseConfig(fullExample)
    #expect(c.site == SiteConfig(id: "site-001", timezone: "America/New_York", stateDir: "/var/lib/gridlet",
                                 socket: "/run/gridlet/gridlet.sock", nominalVoltage: 230, maxImportW: 11000))
    #expect(c.buses.count == 2)
    #expect(c.buses[0] == BusConfig(name: "rs485", kind: .rtu(device: "/dev/ttyUSB0", baud: 9600, parity: .even, dataBits: 8,
                                                             stopBits: 1, rs485: true), timeoutMs: 500, retries: 2, gapMs: 20))
    #expect(c.buses[1] == BusConfig(name: "lan", kind: .tcp(host: "192.168.1.50", port: 502), timeoutMs: 500, retries: 2, gapMs: 0))
    #expect(c.devices.count == 3)
    #expect(c.devices[0] == DeviceConfig(name: "meter", bus: "rs485", unit: 1, profile: "eastron-sdm630", role: .siteMeter, pollMs: 1000))
    #expect(c.devices[1] == DeviceConfig(name: "evse", bus: "lan", unit: 255, profile: "vestel-evc04", role: .charger,
                                         pollMs: 1000, phases: 3, maxCurrent: 32, minCurrent: 6))
    #expect(c.devices[2].profile == "/etc/gridlet/profiles/custom.yaml")
    #expect(c.devices[2].unit == 0)
    #expect(c.devices[2].role == .meter)
    #expect(c.siteMeter?.name == "meter")
    #expect(c.chargers.map(\.name) == ["evse"])
    #expect(c.mqtt == MQTTConfig(host: "broker.example.net", port: 8883, clientID: "gridlet-site-001", username: "site-001",
                                 passwordFile: "/etc/gridlet/mqtt.pass",
                                 tls: TLSConfig(caFile: "/etc/gridlet/ca.pem", certFile: "/etc/gridlet/c.pem",
                                                keyFile: "/etc/gridlet/k.pem", insecure: false),
                                 topicPrefix: "gridlet/eu", keepaliveMs: 30_000))
    #expect(c.mqtt.root(siteID: c.site.id) == "gridlet/eu/site-001")
    #expect(c.telemetry == TelemetryConfig(intervalMs: 30_000, ledgerIntervalMs: 900_000))
    #expect(c.queue == QueueConfig(maxBytes: 64 << 20, sync: .always, syncIntervalMs: 250, replayRate: 100))
    #expect(c.control == ControlConfig())
    #expect(c.control.defaultLimitW == nil)
    #expect(c.schedules.count == 2)
    #expect(c.schedules[0] == ScheduleConfig(id: "summer-peak", limitW: 0, days: [.mon, .tue, .wed, .thu, .fri], from: "13:00",
                                             to: "21:00", seasonFrom: "06-01", seasonTo: "09-30", except: "holidays",
                                             optOut: true, primacy: 100))
    #expect(c.schedules[1] == ScheduleConfig(id: "night", limitW: 3680.5, days: Weekday.allCases, from: "22:00", to: "24:00"))
    #expect(c.holidays == ["holidays": ["2027-05-31", "2027-06-18"], "leap": ["2028-02-29"]])
}

let minimal = """
site:
  id: s1
buses:
  - name: lan
    kind: tcp
    host: 10.0.0.2
devices:
  - name: meter
    bus: lan
    profile: p1
mqtt:
  host: broker
"""

@Test func minimalConfigGetsDefaults() throws {
    let c = try parseConfig(minimal)
    #expect(c.site == SiteConfig(id: "s1", timezone: "UTC", stateDir: "/var/lib/gridlet", socket: nil, nominalVoltage: 230, maxImportW: nil))
    #expect(c.buses == [BusConfig(name: "lan", kind: .tcp(host: "10.0.0.2", port: 502), timeoutMs: 500, retries: 2, gapMs: 0)])
    #expect(c.devices == [DeviceConfig(name: "meter", bus: "lan", unit: 1, profile: "p1", role: .meter, pollMs: 1000)])
    #expect(c.mqtt == MQTTConfig(host: "broker", port: 1883, clientID: "gridlet-s1", username: nil, passwordFile: nil, tls: nil,
                                 topicPrefix: "gridlet", keepaliveMs: 30_000))
    #expect(c.telemetry == TelemetryConfig(intervalMs: 30_000, ledgerIntervalMs: 900_000))
    #expect(c.queue == QueueConfig(maxBytes: 67_108_864, sync: .batch, syncIntervalMs: 250, replayRate: 100))
    #expect(c.control == ControlConfig(defaultLimitW: nil, commLossTimeoutMs: 120_000, heartbeatRequired: false,
                                       fallbackLimitW: 1400, deviceFailsafeTimeoutMs: 60_000, restoreDelayMs: 30_000,
                                       restoreRandomMs: 120_000, rampWPerS: 500, minDwellMs: 60_000, meterStaleAfterMs: 10_000))
    #expect(c.schedules.isEmpty)
    #expect(c.holidays.isEmpty)
    #expect(c.siteMeter == nil)
}

/// An unpaced drain (bench/drain.sh): the broker and the 16 in flight set the pace, not the rate.
@Test func replayRateUpToAMillionPerSecond() throws {
    let c = try parseConfig(minimal + "\nqueue: {replay_rate: 1000000}\n")
    #expect(c.queue.replayRate == 1_000_000)
}

@Test func rtuDefaultsAndTLSDefaultPort() throws {
    let c = try parseConfig("""
    site: {id: s1}
    buses: [{name: b, kind: rtu, device: /dev/ttyS0}]
    devices:
      - {name: evse, bus: b, profile: p1, role: charger, max_current: 5, phases: 1}
    mqtt: {host: broker, tls: {}}
    """)
    #expect(c.buses[0] == BusConfig(name: "b", kind: .rtu(device: "/dev/ttyS0", baud: 9600, parity: .none, dataBits: 8,
                                                         stopBits: 1, rs485: false), timeoutMs: 500, retries: 2, gapMs: 20))
    #expect(c.devices[0].phases == 1)
    #expect(c.devices[0].maxCurrent == 5)
    #expect(c.devices[0].minCurrent == 5)   // default 6, capped at max_current
    #expect(c.mqtt.tls == TLSConfig())
    #expect(c.mqtt.port == 8883)
}

@Test func rtuOverTCPBus() throws {
    let c = try parseConfig("""
    site: {id: s1}
    buses: [{name: gw, kind: rtu-over-tcp, host: 192.168.1.80, port: 8899}, {name: gw2, kind: rtu-over-tcp, host: gw.local}]
    devices: [{name: m, bus: gw, profile: p1, unit: 7}]
    mqtt: {host: broker}
    """)
    #expect(c.buses[0] == BusConfig(name: "gw", kind: .rtuOverTCP(host: "192.168.1.80", port: 8899), gapMs: 20))
    #expect(c.buses[1].kind == .rtuOverTCP(host: "gw.local", port: 502))
    #expect(c.devices[0].unit == 7)
}

@Test func rs485DirectionKeys() throws {
    func bus(_ extra: String) throws -> BusConfig {
        try parseConfig("""
        site: {id: s1}
        buses: [{name: b, kind: rtu, device: /dev/ttyUSB0\(extra)}]
        devices: [{name: m, bus: b, profile: p1}]
        mqtt: {host: broker}
        """).buses[0]
    }
    #expect(try bus(", rs485: true").rs485Mode == .auto)
    #expect(try bus(", rs485: true").rtsDelayUs == nil)
    #expect(try bus(", rs485: true, rs485_mode: kernel").rs485Mode == .kernel)
    let up = try bus(", rs485: true, rs485_mode: rts-up, rts_delay_us: 500")
    #expect(up.rs485Mode == .rtsUp && up.rtsDelayUs == 500)
    #expect(try bus(", rs485: true, rs485_mode: rts-down").rs485Mode == .rtsDown)
    #expect(try bus(", rs485: true, rts_delay_us: 0").rtsDelayUs == 0)
}

struct BadCase: CustomTestStringConvertible, Sendable {
    let name: String
    let yaml: String
    let path: String
    let line: Int
    let fragment: String
    var testDescription: String { name }
}

let badCases: [BadCase] = [
    BadCase(name: "unknown top-level key", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    telemetery: {interval: 5s}
    """, path: "telemetery", line: 5, fragment: "unknown key; did you mean 'telemetry'?"),
    BadCase(name: "unknown nested key", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - {name: m, bus: lan, profile: p1}
      - name: evse
        bus: lan
        profile: p1
        role: charger
        max_curent: 32
    mqtt: {host: b}
    """, path: "devices[1].max_curent", line: 9, fragment: "unknown key; did you mean 'max_current'?"),
    BadCase(name: "unknown key, no suggestion", yaml: """
    site: {id: s1, colour: blue}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "site.colour", line: 1, fragment: "unknown key; valid keys: id, timezone"),
    BadCase(name: "wrong type", yaml: """
    site:
      id: s1
      nominal_voltage: high
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "site.nominal_voltage", line: 3, fragment: "expected a number"),
    BadCase(name: "section of wrong type", yaml: """
    site: {id: s1}
    buses: {name: lan}
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "buses", line: 2, fragment: "expected a list"),
    BadCase(name: "out of range max_current", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - {name: m, bus: lan, profile: p1}
      - name: evse
        bus: lan
        profile: p1
        role: charger
        max_current: 100
    mqtt: {host: b}
    """, path: "devices[1].max_current", line: 9, fragment: "must be between 1 and 80, got 100"),
    BadCase(name: "dangling bus reference", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - name: m
        bus: rs485
        profile: p1
    mqtt: {host: b}
    """, path: "devices[0].bus", line: 5, fragment: "no bus named 'rs485'; defined buses: lan"),
    BadCase(name: "unknown profile", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - name: m
        bus: lan
        profile: acme-9000
    mqtt: {host: b}
    """, path: "devices[0].profile", line: 6, fragment: "unknown profile 'acme-9000'"),
    BadCase(name: "duplicate device name", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - {name: m, bus: lan, profile: p1}
      - {name: m, bus: lan, profile: p1, unit: 2}
    mqtt: {host: b}
    """, path: "devices[1].name", line: 5, fragment: "duplicate device name 'm' (first defined at line 4)"),
    BadCase(name: "duplicate bus name", yaml: """
    site: {id: s1}
    buses:
      - {name: lan, kind: tcp, host: 10.0.0.2}
      - {name: lan, kind: tcp, host: 10.0.0.3}
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[1].name", line: 4, fragment: "duplicate bus name"),
    BadCase(name: "duration without unit", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    telemetry:
      interval: 30
    """, path: "telemetry.interval", line: 6, fragment: "expected a duration with a unit (500ms, 30s, 5m, 1h), got '30'"),
    BadCase(name: "bad size unit", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    queue:
      sync: none
      max_bytes: 64MB
    """, path: "queue.max_bytes", line: 7, fragment: "expected a size with a unit"),
    BadCase(name: "size below minimum", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    queue: {max_bytes: 1KiB}
    """, path: "queue.max_bytes", line: 5, fragment: "must be at least 65536 bytes"),
    BadCase(name: "ledger interval 7m", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    telemetry:
      ledger_interval: 7m
    """, path: "telemetry.ledger_interval", line: 6, fragment: "must be one of 1m, 5m, 15m, 30m, 60m, got 7m"),
    BadCase(name: "bad site id", yaml: """
    site:
      id: "site 001"
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "site.id", line: 2, fragment: "site id must be 1 to 64 characters"),
    BadCase(name: "timezone shape", yaml: """
    site: {id: s1, timezone: ../etc/passwd}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "site.timezone", line: 1, fragment: "IANA time zone"),
    BadCase(name: "primacy 10", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    schedules:
      - id: peak
        limit_w: 0
        from: "13:00"
        to: "21:00"
        primacy: 10
    """, path: "schedules[0].primacy", line: 10, fragment: "must be between 65 and 191, got 10"),
    BadCase(name: "missing mqtt.host", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt:
      port: 1883
    """, path: "mqtt.host", line: 5, fragment: "required key is missing"),
    BadCase(name: "missing section", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    mqtt: {host: b}
    """, path: "devices", line: 1, fragment: "required section is missing"),
    BadCase(name: "empty document", yaml: "", path: "site", line: 1, fragment: "required section is missing"),
    BadCase(name: "invalid YAML syntax", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - name: m
       bus: lan
    mqtt: {host: b}
    """, path: "", line: 5, fragment: "invalid YAML"),
    BadCase(name: "duplicate YAML key", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt:
      host: a
      host: b
    """, path: "mqtt.host", line: 6, fragment: "duplicate key"),
    BadCase(name: "charger without max_current", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - name: evse
        bus: lan
        profile: p1
        role: charger
    mqtt: {host: b}
    """, path: "devices[0].max_current", line: 4, fragment: "required for chargers"),
    BadCase(name: "min_current above max_current", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - name: evse
        bus: lan
        profile: p1
        role: charger
        max_current: 16
        min_current: 20
    mqtt: {host: b}
    """, path: "devices[0].min_current", line: 9, fragment: "must not exceed max_current (16), got 20"),
    BadCase(name: "phases on a meter", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - name: m
        bus: lan
        profile: p1
        phases: 3
    mqtt: {host: b}
    """, path: "devices[0].phases", line: 7, fragment: "applies to chargers only"),
    BadCase(name: "two site meters", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - {name: m1, bus: lan, profile: p1, role: site-meter}
      - {name: m2, bus: lan, profile: p1, role: site-meter, unit: 2}
    mqtt: {host: b}
    """, path: "devices[1].role", line: 5, fragment: "only one device can be the site-meter; 'm1' already is"),
    BadCase(name: "bad role", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m1, bus: lan, profile: p1, role: inverter}]
    mqtt: {host: b}
    """, path: "devices[0].role", line: 3, fragment: "must be one of site-meter, charger, meter"),
    BadCase(name: "unit 0 on rtu bus", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu, device: /dev/ttyUSB0}]
    devices:
      - name: m
        bus: b
        unit: 0
        profile: p1
    mqtt: {host: b}
    """, path: "devices[0].unit", line: 6, fragment: "must be between 1 and 247 for rtu buses, got 0"),
    BadCase(name: "except names missing holiday list", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    holidays:
      national: ["2027-01-01"]
    schedules:
      - id: peak
        limit_w: 0
        from: "13:00"
        to: "21:00"
        except: holidays
    """, path: "schedules[0].except", line: 12, fragment: "no holiday list named 'holidays' under holidays:; defined lists: national"),
    BadCase(name: "bad holiday date", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    holidays:
      national:
        - "2027-01-01"
        - 2027-02-30
    """, path: "holidays.national[1]", line: 8, fragment: "expected a valid date YYYY-MM-DD, got '2027-02-30'"),
    BadCase(name: "tcp bus with baud", yaml: """
    site: {id: s1}
    buses:
      - name: lan
        kind: tcp
        host: 10.0.0.2
        baud: 9600
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].baud", line: 6, fragment: "applies to rtu buses only"),
    BadCase(name: "rtu bus with port", yaml: """
    site: {id: s1}
    buses:
      - name: b
        kind: rtu
        device: /dev/ttyUSB0
        port: 502
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].port", line: 6, fragment: "applies to tcp buses only"),
    BadCase(name: "rtu over tcp (host on an rtu bus)", yaml: """
    site: {id: s1}
    buses:
      - name: b
        kind: rtu
        host: 192.168.1.50
        device: /dev/ttyUSB0
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].host", line: 5, fragment: "forwards raw RTU frames over TCP use kind: rtu-over-tcp with host and port"),
    BadCase(name: "rtu-over-tcp with baud", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu-over-tcp, host: 10.0.0.7, baud: 9600}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].baud", line: 2, fragment: "applies to rtu buses only (this bus has kind: rtu-over-tcp); the serial settings are made in the adapter"),
    BadCase(name: "rtu-over-tcp unit 0", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu-over-tcp, host: 10.0.0.7}]
    devices: [{name: m, bus: b, profile: p1, unit: 0}]
    mqtt: {host: b}
    """, path: "devices[0].unit", line: 3, fragment: "must be between 1 and 247"),
    BadCase(name: "unknown rs485_mode", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu, device: /dev/ttyUSB0, rs485: true, rs485_mode: rts}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].rs485_mode", line: 2, fragment: "must be one of auto, kernel, rts-up, rts-down, got 'rts'"),
    BadCase(name: "rs485_mode without rs485", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu, device: /dev/ttyUSB0, rs485_mode: rts-up}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].rs485_mode", line: 2, fragment: "applies with rs485: true only"),
    BadCase(name: "rts_delay_us with kernel mode", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu, device: /dev/ttyUSB0, rs485: true, rs485_mode: kernel, rts_delay_us: 100}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].rts_delay_us", line: 2, fragment: "kernel delays are set in the device tree"),
    BadCase(name: "rts_delay_us out of range", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu, device: /dev/ttyUSB0, rs485: true, rts_delay_us: 200000}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].rts_delay_us", line: 2, fragment: "must be between 0 and 100000"),
    BadCase(name: "replay_rate above the unpaced maximum", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    queue: {replay_rate: 1000001}
    """, path: "queue.replay_rate", line: 5, fragment: "must be between 1 and 1000000"),
    BadCase(name: "rs485_mode on a tcp bus", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: tcp, host: 10.0.0.2, rs485_mode: kernel}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].rs485_mode", line: 2, fragment: "applies to rtu buses only"),
    BadCase(name: "non-standard baud", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: rtu, device: /dev/ttyUSB0, baud: 9601}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].baud", line: 2, fragment: "must be one of 1200, 2400"),
    BadCase(name: "bad bus kind", yaml: """
    site: {id: s1}
    buses: [{name: b, kind: serial}]
    devices: [{name: m, bus: b, profile: p1}]
    mqtt: {host: b}
    """, path: "buses[0].kind", line: 2, fragment: "must be one of rtu, tcp, rtu-over-tcp, got 'serial'"),
    BadCase(name: "cert without key", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt:
      host: b
      tls:
        cert_file: /etc/c.pem
    """, path: "mqtt.tls.cert_file", line: 7, fragment: "key_file is missing"),
    BadCase(name: "topic prefix wildcard", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b, topic_prefix: "grid/+"}
    """, path: "mqtt.topic_prefix", line: 4, fragment: "without '+' or '#'"),
    BadCase(name: "topic prefix empty level", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b, topic_prefix: "grid/"}
    """, path: "mqtt.topic_prefix", line: 4, fragment: "without empty levels"),
    BadCase(name: "keepalive below minimum", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b, keepalive: 2s}
    """, path: "mqtt.keepalive", line: 4, fragment: "must be at least 5s, got 2s"),
    BadCase(name: "failsafe timeout not whole seconds", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    control: {device_failsafe_timeout: 4500ms}
    """, path: "control.device_failsafe_timeout", line: 5, fragment: "must be whole seconds"),
    BadCase(name: "relative state_dir", yaml: """
    site: {id: s1, state_dir: var/lib}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "site.state_dir", line: 1, fragment: "must be an absolute path"),
    BadCase(name: "schedule from 24:00", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    schedules: [{id: x, limit_w: 0, from: "24:00", to: "06:00"}]
    """, path: "schedules[0].from", line: 5, fragment: "between 00:00 and 23:59"),
    BadCase(name: "schedule to 24:01", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    schedules: [{id: x, limit_w: 0, from: "22:00", to: "24:01"}]
    """, path: "schedules[0].to", line: 5, fragment: "between 00:00 and 24:00, got '24:01'"),
    BadCase(name: "bad weekday", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    schedules:
      - id: x
        limit_w: 0
        days:
          - mon
          - funday
        from: "00:00"
        to: "06:00"
    """, path: "schedules[0].days[1]", line: 10, fragment: "must be one of mon, tue"),
    BadCase(name: "bad season day", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    schedules:
      - id: x
        limit_w: 0
        from: "00:00"
        to: "06:00"
        season: {from: "02-30", to: "03-01"}
    """, path: "schedules[0].season.from", line: 10, fragment: "expected a month and day MM-DD"),
    BadCase(name: "duplicate schedule id", yaml: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    schedules:
      - {id: x, limit_w: 0, from: "00:00", to: "06:00"}
      - {id: x, limit_w: 0, from: "06:00", to: "07:00"}
    """, path: "schedules[1].id", line: 7, fragment: "duplicate schedule id 'x'"),
    BadCase(name: "no buses", yaml: """
    site: {id: s1}
    buses: []
    devices: [{name: m, bus: lan, profile: p1}]
    mqtt: {host: b}
    """, path: "buses", line: 2, fragment: "at least one bus is required"),
]

@Test(arguments: badCases)
func invalidConfigIsRejected(_ c: BadCase) {
    do {
        let cfg = try parseConfig(c.yaml)
        Issue.record("expected an error at \(c.path), got \(cfg)")
    } catch {
        #expect(error.path == c.path)
        #expect(error.line == c.line)
        #expect(error.message.contains(c.fragment), "message: \(error.message)")
        #expect(error.file == "test.yaml")
    }
}

@Test func errorDescriptionNamesFileLineAndPath() {
    do {
        _ = try parseConfig("site: {id: s1, bogus: 1}\n")
        Issue.record("expected an error")
    } catch {
        #expect(error.description.hasPrefix("test.yaml:1: site.bogus: unknown key"))
    }
}

@Test func profilePathsAreNotLookedUp() throws {
    var asked: [String] = []
    let c = try GridletConfig.parse(text: """
    site: {id: s1}
    buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
    devices:
      - {name: a, bus: lan, profile: ./acme.yaml}
      - {name: b, bus: lan, profile: p1, unit: 2}
    mqtt: {host: b}
    """, file: nil) { asked.append($0); return $0 == "p1" }
    #expect(asked == ["p1"])
    #expect(c.devices.map(\.profile) == ["./acme.yaml", "p1"])
}

@Test func resumeHysteresisDefaultsToZeroAndIsRangeChecked() throws {
    let base = fullExample.replacing("  meter_stale_after: 10s\n", with: "  meter_stale_after: 10s\n  resume_hysteresis_a: 1.5\n")
    #expect(try parseConfig(fullExample).control.resumeHysteresisA == 0)
    #expect(try parseConfig(base).control.resumeHysteresisA == 1.5)
    let bad = fullExample.replacing("  meter_stale_after: 10s\n", with: "  meter_stale_after: 10s\n  resume_hysteresis_a: 11\n")
    #expect(throws: YAMLError.self) { try parseConfig(bad) }
}
