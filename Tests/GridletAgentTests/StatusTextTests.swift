@testable import GridletAgent
import GridletCore
import Testing

/// `gridlet status` for people, against golden text (fixed clock, readings and zone).
@Suite struct StatusTextTests {
    static let newYork = try! TimeZoneRules(name: "America/New_York", posix: "EST5EDT,M3.2.0,M11.1.0")
    static let now = Timestamp.parse("2027-06-01T17:02:11.400Z")!   // 13:02:11 EDT

    static let troubled = """
        {"site":{"id":"site-001","timezone":"America/New_York"},
         "state":{"limit_w":4800,"applied_a":6,"paused":false,"source":"dispatch:evt-1","events":["evt-1"],
                  "comm":{"ok":true,"since":"2027-06-01T16:00:03.000Z"},"clock_synced":true,"schedules":[],
                  "next_transition":"2027-06-01T18:00:00.000Z",
                  "devices":{"meter":{"ok":true,"last_seen":"2027-06-01T17:02:10.200Z"},
                             "evse":{"ok":false,"last_seen":"2027-06-01T17:01:40.000Z"}}},
         "devices":{"meter":{"power_w":2333.464355,"import_wh":12345678.9,"export_wh":1234567.8,
                             "voltage_v":[231.704697,230.316986,229.948532],"current_a":[3.37,4.12,4.5],
                             "frequency_hz":49.987,"ok":true},
                    "evse":{"ok":false,"error":"evse (unit 255 on lan): read input registers 1008+14: no answer within 300 ms (ETIMEDOUT)"}},
         "queue":{"records":1234,"bytes":350000,"oldest_age_s":248.5,"dropped":0,"next_seq":5000,"skipped_on_recovery":0},
         "mqtt":{"connected":false,"broker":"broker.example.net:8883","in_flight":0,"published":10,"acked":10,"commands_dropped":0,
                 "last_error":"connection refused (ECONNREFUSED)","last_contact":"2027-06-01T16:58:03.000Z"},
         "buses":{"lan":{"endpoint":"192.168.1.50:502","rs485_direction":null}},
         "stored_events":["evt-1"]}
        """

    static let transitions = #"[{"at":"2027-06-01T18:00:00.000Z","source":"default","limit_w":11040}]"#

    func text(_ json: String, transitions: String = transitions) throws -> StatusText {
        StatusText(status: try JSONValue.parse(json), transitions: try JSONValue.parse(transitions).arrayValue ?? [],
                   nowMs: Self.now, zone: Self.newYork)
    }

    @Test func problemsFirstValuesWithUnitsLocalTimesWithAge() throws {
        let golden = """
            gridlet site-001, 13:02:11 EDT (America/New_York)
            PROBLEM    broker broker.example.net:8883 unreachable since 12:58:03 EDT, 4 min ago (connection refused (ECONNREFUSED)); 1234 records wait in the queue
            PROBLEM    evse not answering: evse (unit 255 on lan): read input registers 1008+14: no answer within 300 ms (ETIMEDOUT); last reading 13:01:40 EDT, 31 s ago
            limit      4.80 kW, chargers at 6 A
            source     dispatch evt-1 until 14:00, then default
            events     evt-1
            comm       ok since 12:00:03 EDT, 1 h ago
            clock      synchronised
            broker     NOT connected to broker.example.net:8883
            queue      1234 records (341.8 KiB), the oldest 4 min old
            meter      2.33 kW   231.7 / 230.3 / 229.9 V   3.4 / 4.1 / 4.5 A   49.99 Hz   import 12345.7 kWh   export 1234.6 kWh   (13:02:10 EDT, 1 s ago)
            evse       NOT ANSWERING: evse (unit 255 on lan): read input registers 1008+14: no answer within 300 ms (ETIMEDOUT)
            bus        lan: 192.168.1.50:502
            """
        #expect(try text(Self.troubled).render() == golden)
        #expect(try text(Self.troubled).line()
                == "13:02:11 EDT  dispatch evt-1 until 14:00  limit 4.80 kW  6 A  meter 2.33 kW  queue 1234  ! broker unreachable; evse not answering")
    }

    @Test func aHealthySiteOnDefaultNamesWhatComesNext() throws {
        var json = Self.troubled
        for (a, b) in [(#""connected":false"#, #""connected":true"#), (#""records":1234"#, #""records":0"#),
                       (#""source":"dispatch:evt-1","events":["evt-1"]"#, #""source":"default","events":[]"#),
                       (#""evse":{"ok":false,"last_seen""#, #""evse":{"ok":true,"last_seen""#),
                       (#""evse":{"ok":false,"error":"evse (unit 255 on lan): read input registers 1008+14: no answer within 300 ms (ETIMEDOUT)"}"#,
                        #""evse":{"power_w":11040,"voltage_v":[230,230,230],"current_a":[16,16,16],"charging":true,"ok":true}"#),
                       (#""limit_w":4800,"applied_a":6"#, #""limit_w":11040,"applied_a":16"#)] {
            json = json.replacing(a, with: b)
        }
        let next = #"[{"at":"2027-06-02T17:00:00.000Z","source":"schedule:summer-peak","limit_w":0}]"#
        let t = try text(json, transitions: next)
        #expect(t.problems.isEmpty)
        let lines = t.render().split(separator: "\n").map(String.init)
        #expect(lines[1] == "problems   none")
        #expect(lines[2] == "limit      11.04 kW, chargers at 16 A")
        #expect(lines[3] == "source     default (no event or schedule); next: schedule summer-peak at 2027-06-02 13:00")
        #expect(lines.contains("evse       11.04 kW   230.0 / 230.0 / 230.0 V   16.0 / 16.0 / 16.0 A   charging   (13:01:40 EDT, 31 s ago)"))
        #expect(t.line() == "13:02:11 EDT  default (no event or schedule); next: schedule summer-peak at 2027-06-02 13:00  limit 11.04 kW  16 A  meter 2.33 kW  evse 11.04 kW  queue 0  ok")
    }

    @Test func commLossStaleMeterAndAStuckQueueAreSaidInWords() throws {
        var json = Self.troubled
        for (a, b) in [(#""connected":false"#, #""connected":true"#),
                       (#""comm":{"ok":true"#, #""comm":{"ok":false"#),
                       (#""source":"dispatch:evt-1""#, #""source":"derate:meter_stale""#),
                       (#""clock_synced":true"#, #""clock_synced":false"#)] {
            json = json.replacing(a, with: b)
        }
        let ps = try text(json).problems.map(\.detail)
        #expect(ps == [
            "utility link lost since 12:00:03 EDT, 1 h ago: running the fallback limit (events already received keep running)",
            "evse not answering: evse (unit 255 on lan): read input registers 1008+14: no answer within 300 ms (ETIMEDOUT); last reading 13:01:40 EDT, 31 s ago",
            "site meter stale: no fresh reading, limit derated to the fallback",
            "queue not draining: 1234 records, the oldest 4 min old, while the broker is connected",
            "clock not synchronised: times may be off; check NTP (timedatectl status)",
        ])
        #expect(try text(json).sourceExplained == "derated (site meter stale)")
    }

    @Test func numbersTimesAndZones() {
        #expect(StatusText.number(231.704697, 1) == "231.7")
        #expect(StatusText.number(0.05, 1) == "0.1")
        #expect(StatusText.number(-3.14159, 2) == "-3.14")
        #expect(StatusText.number(-0.001, 1) == "0.0")
        #expect(StatusText.number(2, 2) == "2.00")
        #expect(StatusText.power(850.4) == "850 W")
        #expect(StatusText.power(2333.464355) == "2.33 kW")
        #expect(StatusText.power(-1500) == "-1.50 kW")
        let t = StatusText(status: .object([]), nowMs: Self.now, zone: Self.newYork)
        #expect(t.when(Self.now - 2000) == "13:02:09 EDT, 2 s ago")
        #expect(t.when(Self.now + 300_000) == "13:07:11 EDT, in 5 min")
        #expect(t.when(Self.now - 3 * 86_400_000) == "2027-05-29 13:02:11 EDT, 3 d ago")
        let winter = Timestamp.parse("2027-01-15T17:00:00.000Z")!
        #expect(t.clockTime(winter) == "2027-01-15 12:00:00 EST")
        #expect(StatusText.zone(named: nil).name == "UTC")
        #expect(StatusText(status: .object([]), nowMs: Self.now, zone: .utc).clockTime(Self.now) == "17:02:11 UTC")
    }
}

