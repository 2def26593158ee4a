import Testing
@testable import GridletCore

@Suite struct CommandParserTests {
    static let now: Int64 = 1_811_869_200_000 // 2027-06-01T17:00:00Z

    static func parse(_ name: String, _ text: String) -> ParsedCommand {
        CommandParser.parse(name: name, payload: Array(text.utf8), nowMs: now)
    }

    static func error(_ p: ParsedCommand) -> CommandError? {
        if case let .failure(e) = p.result { return e }
        return nil
    }

    @Test func fullEvent() throws {
        let p = Self.parse("event", #"""
            {"id":"ev-1","created":"2027-06-01T16:00:00Z","start":"2027-06-01T19:00:00+02:00","duration_s":3600,
             "limit_w":4140,"primacy":0,"randomize_start_s":60,"opt_out":true,"max_offline_s":900}
            """#)
        #expect(p.name == "event")
        #expect(p.id == "ev-1")
        let cmd = try p.result.get()
        #expect(cmd == .event(DispatchEvent(id: "ev-1", createdMs: Self.now - 3_600_000, startMs: Self.now, durationMs: 3_600_000,
                                            limitW: 4140, primacy: 0, randomizeStartS: 60, optOutAllowed: true, maxOfflineS: 900)))
        #expect(cmd.name == "event")
    }

    @Test func eventDefaults() throws {
        let p = Self.parse("event", #"{"id":"a","duration_s":1.5,"limit_w":0}"#)
        guard case let .event(e) = try p.result.get() else { Issue.record("not an event"); return }
        #expect(e.createdMs == Self.now)
        #expect(e.startMs == Self.now)
        #expect(e.durationMs == 1500)
        #expect(e.limitW == 0)
        #expect(e.primacy == 1)
        #expect(e.randomizeStartS == 0)
        #expect(e.optOutAllowed == false)
        #expect(e.maxOfflineS == nil)
        #expect(e.phase == .scheduled)
        #expect(e.cancelAtMs == nil)
    }

    @Test(arguments: [
        // (name, payload, code, path, reported id)
        ("event", #"not json"#, "invalid_json", "", nil),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1}x"#, "invalid_json", "", nil),
        ("event", #"[1]"#, "invalid", "", nil),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"colour":"red"}"#, "unknown_field", "colour", "e1"),
        ("event", #"{"id":"e1","duration_s":60}"#, "missing_field", "limit_w", "e1"),
        ("event", #"{"id":"e1","limit_w":60}"#, "missing_field", "duration_s", "e1"),
        ("event", #"{"duration_s":60,"limit_w":1}"#, "missing_field", "id", nil),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":null}"#, "missing_field", "limit_w", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":-1}"#, "invalid", "limit_w", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":"5"}"#, "invalid", "limit_w", "e1"),
        ("event", #"{"id":"e1","duration_s":0,"limit_w":1}"#, "invalid", "duration_s", "e1"),
        ("event", #"{"id":"e1","duration_s":-5,"limit_w":1}"#, "invalid", "duration_s", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"primacy":65}"#, "invalid", "primacy", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"primacy":-1}"#, "invalid", "primacy", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"primacy":1.5}"#, "invalid", "primacy", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"opt_out":"yes"}"#, "invalid", "opt_out", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"start":"2027-02-30T00:00:00Z"}"#, "invalid", "start", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"created":12345}"#, "invalid", "created", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"randomize_start_s":-1}"#, "invalid", "randomize_start_s", "e1"),
        ("event", #"{"id":"e1","duration_s":60,"limit_w":1,"max_offline_s":0}"#, "invalid", "max_offline_s", "e1"),
        ("event", #"{"id":"bad id","duration_s":60,"limit_w":1}"#, "invalid", "id", nil),
        ("event", #"{"id":"","duration_s":60,"limit_w":1}"#, "invalid", "id", nil),
        ("event", #"{"id":7,"duration_s":60,"limit_w":1}"#, "invalid", "id", nil),
        ("cancel", #"{}"#, "missing_field", "id", nil),
        ("cancel", #"{"id":"e1","randomize_s":-1}"#, "invalid", "randomize_s", "e1"),
        ("cancel", #"{"id":"e1","extra":1}"#, "unknown_field", "extra", "e1"),
        ("optout", #"{"id":"e1","why":"x"}"#, "unknown_field", "why", "e1"),
        ("optout", #"{}"#, "missing_field", "id", nil),
        ("ping", #"{"x":1}"#, "unknown_field", "x", nil),
        ("events", #"{"events":[]}"#, "missing_field", "version", nil),
        ("events", #"{"version":1}"#, "missing_field", "events", nil),
        ("events", #"{"version":-1,"events":[]}"#, "invalid", "version", nil),
        ("events", #"{"version":1,"events":[5]}"#, "invalid", "events[0]", nil),
        ("events", #"{"version":1,"events":[{"id":"a","duration_s":1,"limit_w":1,"bogus":1}]}"#, "unknown_field", "events[0].bogus", nil),
        ("events", #"{"version":1,"events":[{"id":"a","duration_s":1,"limit_w":1},{"id":"b","duration_s":1}]}"#,
         "missing_field", "events[1].limit_w", nil),
        ("events", #"{"version":1,"events":[{"id":"a","duration_s":1,"limit_w":1},{"id":"a","duration_s":2,"limit_w":1}]}"#,
         "invalid", "events[1].id", nil),
        ("reboot", #"{}"#, "unsupported", "", nil),
    ] as [(String, String, String, String, String?)])
    func rejects(name: String, payload: String, code: String, path: String, id: String?) throws {
        let p = Self.parse(name, payload)
        let e = try #require(Self.error(p))
        #expect(e.code == code)
        #expect(e.path == path)
        #expect(!e.message.isEmpty)
        #expect(p.id == id)
        #expect(p.name == name)
    }

    @Test func payloadSizeLimit() throws {
        func payload(_ size: Int) -> [UInt8] {
            let head = Array(#"{"id":"big","duration_s":60,"limit_w":1}"#.utf8)
            return head + Array(repeating: 0x20, count: size - head.count)
        }
        let ok = CommandParser.parse(name: "event", payload: payload(64 * 1024), nowMs: Self.now)
        #expect((try? ok.result.get()) != nil)
        let big = CommandParser.parse(name: "event", payload: payload(64 * 1024 + 1), nowMs: Self.now)
        #expect(Self.error(big)?.code == "too_large")
    }

    @Test(arguments: [
        ("cancel", #"{"id":"e1"}"#, Command.cancel(id: "e1", randomizeS: 0)),
        ("cancel", #"{"id":"e1","randomize_s":30}"#, Command.cancel(id: "e1", randomizeS: 30)),
        ("optout", #"{"id":"e:1.x_y-z"}"#, Command.optOut(id: "e:1.x_y-z")),
        ("ping", #"{}"#, Command.ping),
        ("events", #"{"version":3,"events":[]}"#, Command.events(version: 3, events: [])),
    ])
    func simpleCommands(name: String, payload: String, expected: Command) throws {
        let p = Self.parse(name, payload)
        #expect(try p.result.get() == expected)
        #expect(expected.name == name)
    }

    @Test func eventsList() throws {
        let p = Self.parse("events", #"""
            {"version":7,"events":[{"id":"a","duration_s":60,"limit_w":1000},
                                   {"id":"b","start":"2027-06-01T18:00:00Z","duration_s":60,"limit_w":2000,"primacy":0}]}
            """#)
        guard case let .events(version, list) = try p.result.get() else { Issue.record("not events"); return }
        #expect(version == 7)
        #expect(list.map(\.id) == ["a", "b"])
        #expect(list[1].startMs == Self.now + 3_600_000)
        #expect(list[1].primacy == 0)
    }

    @Test(arguments: [
        ("a", true), ("A-z_0.9:x", true), (String(repeating: "x", count: 64), true),
        ("", false), (String(repeating: "x", count: 65), false), ("a b", false), ("a/b", false), ("é", false), ("a#", false),
    ])
    func validID(id: String, ok: Bool) {
        #expect(CommandParser.validID(id) == ok)
    }
}
