import GridletCore
import Testing

/// Parses a command as the agent does.
func parse(_ name: String, _ json: String, at now: Int64) -> ParsedCommand {
    CommandParser.parse(name: name, payload: Array(json.utf8), nowMs: now)
}

func command(_ name: String, _ json: String, at now: Int64) throws -> Command {
    try parse(name, json, at: now).result.get()
}

@Suite struct CommAcrossRestartsTests {
    @Test func anOutageInProgressIsStillInProgressAfterARestart() {
        var before = engine(settings(timeoutMs: 120_000))
        before.sessionDisconnected(nowMs: t0)
        let saved = before.contactMs(nowMs: t0 + 60_000)
        #expect(saved == t0)
        // Restart 150 s into the outage: lost at once, since t0 + 120 s.
        var after = engine(settings(timeoutMs: 120_000), connected: false)
        after.restoreComm(lastContactMs: saved, wallMs: t0 + 150_000, nowMs: t0 + 150_000)
        let d = after.step(t0 + 150_000)
        #expect(d.source == "fallback")
        #expect(!d.commOK)
        #expect(d.commSinceMs == t0 + 120_000)
    }

    @Test func aShortOutageKeepsItsRemainingTime() {
        var e = engine(settings(timeoutMs: 120_000), connected: false)
        e.restoreComm(lastContactMs: t0, wallMs: t0 + 30_000, nowMs: t0 + 30_000)
        #expect(e.step(t0 + 30_000).source == "default")
        #expect(e.step(t0 + 120_000).source == "default")
        #expect(e.step(t0 + 120_001).source == "fallback")
    }

    @Test func firstBootWithoutHistoryCountsContactFromTheStart() {
        var e = engine(settings(timeoutMs: 120_000), connected: false)
        e.restoreComm(lastContactMs: nil, wallMs: nil, nowMs: t0)
        #expect(e.step(t0 + 1000).source == "default")
        #expect(e.step(t0 + 120_001).source == "fallback")
    }

    @Test func aSavedContactInTheFutureMeansTheClockWentBackAndCommIsLost() {
        var e = engine(settings(timeoutMs: 120_000), connected: false)
        e.restoreComm(lastContactMs: t0 + 3_600_000, wallMs: t0 + 3_600_000, nowMs: t0)
        #expect(e.step(t0).source == "fallback")
    }

    @Test func aClockBehindTheLastSavedWallTimeIsNotTrusted() {
        var s = settings()
        s.buildDateMs = t0 - 86_400_000
        var e = engine(s, connected: false)
        e.restoreComm(lastContactMs: t0 + 10_000, wallMs: t0 + 10_000, nowMs: t0)
        #expect(!e.clockTrusted(nowMs: t0, synced: false))
        #expect(e.clockTrusted(nowMs: t0, synced: true))
        #expect(e.clockTrusted(nowMs: t0 + 10_000, synced: false))
        let d = e.decide(nowMs: t0, inputs: ControlInputs(hardwareMaxW: hw, clockSynced: false))
        #expect(!d.clockTrusted)
    }
}

@Suite struct CommandKeptTests {
    @Test func anEventWithoutStartIsAnchoredAtItsFirstReceipt() throws {
        var e = engine()
        let json = #"{"id":"e1","duration_s":600,"limit_w":3000}"#
        let first = e.handle(try command("event", json, at: t0), nowMs: t0)
        #expect(first.changed)
        #expect(e.events[0].startMs == t0)
        // QoS 1 redelivery 5 s later: nothing moves, nothing to persist.
        let again = e.handle(try command("event", json, at: t0 + 5000), nowMs: t0 + 5000)
        #expect(!again.changed)
        #expect(again.responses.isEmpty)
        #expect(e.events[0].startMs == t0)
        #expect(e.events[0].createdMs == t0)
        // A newer set carrying the same event does not move it either.
        let set = #"{"version":4,"events":[{"id":"e1","duration_s":600,"limit_w":3000}]}"#
        _ = e.handle(try command("events", set, at: t0 + 60_000), nowMs: t0 + 60_000, payloadDigest: payloadDigest(Array(set.utf8)))
        #expect(e.events[0].startMs == t0)
        #expect(e.events[0].endMs == t0 + 600_000)
        // The anchor is persisted with the event.
        var restored = engine()
        restored.restorePersistentState(e.persistentState)
        _ = restored.handle(try command("event", json, at: t0 + 120_000), nowMs: t0 + 120_000)
        #expect(restored.events[0].startMs == t0)
    }

    @Test func anExplicitStartStillMovesTheEvent() throws {
        var e = engine()
        _ = e.handle(try command("event", #"{"id":"e1","duration_s":600,"limit_w":3000}"#, at: t0), nowMs: t0)
        let moved = e.handle(try command("event", #"{"id":"e1","start":"2027-06-01T18:00:00.000Z","duration_s":600,"limit_w":3000}"#,
                                         at: t0 + 1000), nowMs: t0 + 1000)
        #expect(moved.changed)
        #expect(e.events[0].startMs == t0 + 3_600_000)
    }
}

@Suite struct VersionTests {
    let v3 = #"{"version":3,"events":[{"id":"a","duration_s":600,"limit_w":1000}]}"#

    @Test func aStaleVersionIsRefusedAndSaysTheCurrentOne() throws {
        var e = engine()
        #expect(e.handle(try command("events", v3, at: t0), nowMs: t0, payloadDigest: payloadDigest(Array(v3.utf8))).error == nil)
        let lower = e.handle(try command("events", #"{"version":2,"events":[]}"#, at: t0 + 1), nowMs: t0 + 1)
        #expect(lower.error?.code == "stale_version")
        #expect(lower.error?.currentVersion == 3)
        #expect(lower.error?.path == "version")
        #expect(!lower.changed)
        #expect(e.events.map(\.id) == ["a"])
        let sameVersionOtherSet = e.handle(try command("events", #"{"version":3,"events":[]}"#, at: t0 + 2), nowMs: t0 + 2)
        #expect(sameVersionOtherSet.error?.code == "stale_version")
        #expect(e.events.map(\.id) == ["a"])
    }

    @Test func theSameRetainedSetRedeliveredIsNotAnError() throws {
        var e = engine()
        _ = e.handle(try command("events", v3, at: t0), nowMs: t0, payloadDigest: payloadDigest(Array(v3.utf8)))
        let again = e.handle(try command("events", v3, at: t0 + 1000), nowMs: t0 + 1000, payloadDigest: payloadDigest(Array(v3.utf8)))
        #expect(again.error == nil)
        #expect(!again.changed)
        // Also after a restart.
        var restored = engine()
        restored.restorePersistentState(e.persistentState)
        #expect(restored.handle(try command("events", v3, at: t0 + 2000), nowMs: t0 + 2000, payloadDigest: payloadDigest(Array(v3.utf8))).error == nil)
    }

    @Test func aResetLetsALowerVersionIn() throws {
        var e = engine()
        _ = e.handle(try command("events", v3, at: t0), nowMs: t0, payloadDigest: payloadDigest(Array(v3.utf8)))
        #expect(e.resetVersion(.events) == 3)
        let low = e.handle(try command("events", #"{"version":1,"events":[]}"#, at: t0 + 1), nowMs: t0 + 1)
        #expect(low.error == nil)
        #expect(e.eventsVersion == 1)
        #expect(e.events.isEmpty)
    }

    @Test func schedulesVersionsBehaveTheSame() throws {
        var e = engine()
        let s = #"{"version":5,"schedules":[]}"#
        #expect(e.handle(try command("schedules", s, at: t0), nowMs: t0, payloadDigest: payloadDigest(Array(s.utf8))).error == nil)
        #expect(e.handle(try command("schedules", s, at: t0 + 1), nowMs: t0 + 1, payloadDigest: payloadDigest(Array(s.utf8))).error == nil)
        #expect(e.handle(try command("schedules", #"{"version":4,"schedules":[]}"#, at: t0 + 2), nowMs: t0 + 2).error?.currentVersion == 5)
        #expect(e.resetVersion(.schedules) == 5)
        #expect(e.handle(try command("schedules", #"{"version":4,"schedules":[]}"#, at: t0 + 3), nowMs: t0 + 3).error == nil)
    }

    @Test func absurdVersionsAreRefused() {
        for v in ["-1", "1e12", "2147483648", "1.5"] {
            let p = parse("events", #"{"version":\#(v),"events":[]}"#, at: t0)
            guard case let .failure(err) = p.result else { Issue.record("version \(v) accepted"); continue }
            #expect(err.path == "version")
        }
    }
}

@Suite struct ResponseCodeTests {
    @Test func eachBadEntryOfAnEventsSetIsNamed() {
        let p = parse("events", #"{"version":1,"events":[{"id":"ok","duration_s":60,"limit_w":1},{"id":"x","duration_s":0,"limit_w":1},{"id":"y","limit_w":-1,"duration_s":5},{"nope":1}]}"#, at: t0)
        #expect(p.rejectedIDs == ["x", "y"])
        guard case let .failure(err) = p.result else { Issue.record("set with bad entries accepted"); return }
        #expect(err.path == "events[1].duration_s")
    }

    @Test func optOutOfAnUnknownIdIsRejectedInvalid() {
        var e = engine()
        let out = e.handle(.optOut(id: "ghost"), nowMs: t0)
        #expect(out.error?.code == "not_found")
        #expect(out.responses == [EventResponse(event: "ghost", status: .rejectedInvalid, atMs: t0)])
    }

    @Test func anEventForASiteWithNothingToControlIsNotApplicable() {
        var s = settings()
        s.hasControllableDevice = false
        var e = engine(s)
        let out = e.handle(.event(event("e", limit: 1000)), nowMs: t0)
        #expect(out.error == nil)
        #expect(out.responses.map(\.status) == [.rejectedNotApplicable])
        #expect(e.events.isEmpty)
    }
}

@Suite struct ControlStateReadBackTests {
    @Test func outOfRangeEntriesAreSkippedNeverTrapped() throws {
        let text = #"""
        {"version":2,"events_version":1e300,"schedules_version":3,
         "events":[
          {"id":"ok","created_ms":1811869200000,"start_ms":1811869200000,"duration_ms":600000,"limit_w":3000,"primacy":1},
          {"id":"neg","created_ms":1811869200000,"start_ms":1811869200000,"duration_ms":600000,"limit_w":-5,"primacy":1},
          {"id":"huge","created_ms":1e30,"start_ms":1811869200000,"duration_ms":600000,"limit_w":1,"primacy":1},
          {"id":"prim","created_ms":1811869200000,"start_ms":1811869200000,"duration_ms":600000,"limit_w":1,"primacy":99},
          {"id":"bad id!","created_ms":1811869200000,"start_ms":1811869200000,"duration_ms":600000,"limit_w":1,"primacy":1},
          {"id":"delay","created_ms":1811869200000,"start_ms":1811869200000,"duration_ms":600000,"limit_w":1,"primacy":1,
           "randomize_start_s":10,"random_delay_ms":99000}],
         "restore":{"from_w":-7,"ramp_start_ms":0},
         "last_target_w":-1}
        """#
        var e = engine()
        let problems = e.restorePersistentState(try JSONValue.parse(Array(text.utf8)))
        #expect(e.events.map(\.id) == ["ok"])
        #expect(e.eventsVersion == -1)
        #expect(e.schedulesVersion == 3)
        #expect(problems.count >= 6, "\(problems)")
        #expect(e.step(t0 + 1000).source == "dispatch:ok")
    }
}
