import Testing
@testable import GridletCore

@Suite struct LifecycleTests {
    func statuses(_ r: [EventResponse]) -> [ResponseStatus] { r.map(\.status) }

    @Test func receivedStartedCompleted() {
        var e = engine()
        let ev = event("ev", at: 60, for: 600, limit: 3000)
        let out = e.handle(.event(ev), nowMs: t0)
        #expect(out.error == nil)
        #expect(out.changed)
        #expect(out.responses == [EventResponse(event: "ev", status: .received, atMs: t0, effectiveStartMs: t0 + 60_000)])
        #expect(e.advance(nowMs: t0 + 59_999).responses.isEmpty)
        #expect(e.step(t0 + 59_999).source == "default")
        let started = e.advance(nowMs: t0 + 60_000)
        #expect(started.changed)
        #expect(started.responses == [EventResponse(event: "ev", status: .started, atMs: t0 + 60_000, effectiveStartMs: t0 + 60_000)])
        #expect(e.events.first?.phase == .active)
        #expect(e.advance(nowMs: t0 + 300_000).responses.isEmpty)
        let done = e.advance(nowMs: t0 + 660_000)
        #expect(done.responses == [EventResponse(event: "ev", status: .completed, atMs: t0 + 660_000)])
        #expect(e.events.isEmpty)
        #expect(e.advance(nowMs: t0 + 700_000).responses.isEmpty)
    }

    @Test func windowMissedEntirelyReportsStartedThenCompleted() {
        var e = engine()
        _ = e.handle(.event(event("ev", at: 60, for: 60, limit: 3000)), nowMs: t0)
        let r = e.advance(nowMs: t0 + 1_000_000).responses
        #expect(statuses(r) == [.started, .completed])
        #expect(r.map(\.atMs) == [t0 + 60_000, t0 + 120_000])
    }

    @Test func responseJSONFields() {
        let r = EventResponse(event: "ev", status: .received, atMs: t0, effectiveStartMs: t0 + 1500)
        #expect(JSONValue.object(r.jsonFields).serialized
            == #"{"event":"ev","status":1,"status_name":"received","at":"2027-06-01T17:00:00.000Z","effective_start":"2027-06-01T17:00:01.500Z"}"#)
        let c = EventResponse(event: "x", status: .rejectedExpired, atMs: 0)
        #expect(JSONValue.object(c.jsonFields).serialized
            == #"{"event":"x","status":254,"status_name":"rejected_expired","at":"1970-01-01T00:00:00.000Z"}"#)
    }

    @Test func duplicateDeliveryIsSilent() {
        var e = engine()
        let ev = event("ev", for: 600, limit: 3000, randomize: 300)
        let first = e.handle(.event(ev), nowMs: t0)
        #expect(statuses(first.responses) == [.received])
        let start = e.events[0].effectiveStartMs
        for t in [t0 + 1000, t0 + 2000] {
            let again = e.handle(.event(ev), nowMs: t)
            #expect(again.responses.isEmpty)
            #expect(again.error == nil)
            #expect(!again.changed)
        }
        #expect(e.events.count == 1)
        #expect(e.events[0].effectiveStartMs == start)
    }

    @Test func updatedEventIsReceivedAgainAndKeepsItsDraw() {
        var e = engine()
        _ = e.handle(.event(event("ev", for: 600, limit: 3000, randomize: 300)), nowMs: t0)
        let start = e.events[0].effectiveStartMs
        let out = e.handle(.event(event("ev", for: 600, limit: 2000, randomize: 300)), nowMs: t0 + 10)
        #expect(out.responses == [EventResponse(event: "ev", status: .received, atMs: t0 + 10, effectiveStartMs: start)])
        #expect(e.events.map(\.limitW) == [2000])
        #expect(e.events[0].effectiveStartMs == start)
    }

    @Test(arguments: [(Int64(-3600), Int64(60)), (-60, 60), (-1, 1)])
    func expiredEventIsRejectedNotStored(startOffsetS: Int64, durationS: Int64) {
        var e = engine()
        let out = e.handle(.event(event("old", at: startOffsetS, for: durationS, limit: 3000)), nowMs: t0)
        #expect(out.error == nil)
        #expect(out.responses == [EventResponse(event: "old", status: .rejectedExpired, atMs: t0)])
        #expect(e.events.isEmpty)
    }

    @Test func storedEventResentWithPastEndIsDropped() {
        var e = engine()
        _ = e.handle(.event(event("ev", at: 60, for: 600, limit: 3000)), nowMs: t0)
        let out = e.handle(.event(event("ev", at: -600, for: 60, limit: 3000)), nowMs: t0 + 1)
        #expect(out.error == nil)
        #expect(statuses(out.responses) == [.rejectedExpired])
        #expect(e.events.isEmpty)
    }

    @Test func eventStartedInThePastStillRuns() {
        var e = engine()
        let out = e.handle(.event(event("ev", at: -60, for: 120, limit: 3000)), nowMs: t0)
        #expect(statuses(out.responses) == [.received])
        #expect(e.step(t0).source == "dispatch:ev")
    }

    @Test func at257thEventTooManyEvents() {
        var e = engine()
        for i in 0..<256 {
            let out = e.handle(.event(event("e\(i)", at: 60, limit: 1000)), nowMs: t0)
            #expect(out.error == nil)
        }
        #expect(e.events.count == 256)
        let out = e.handle(.event(event("e256", at: 60, limit: 1000)), nowMs: t0)
        #expect(out.error?.code == "too_many_events")
        #expect(out.responses == [EventResponse(event: "e256", status: .rejectedInvalid, atMs: t0)])
        #expect(!out.changed)
        #expect(e.events.count == 256)
        #expect(!e.events.contains { $0.id == "e256" })
        // Updating a stored one is still fine.
        #expect(e.handle(.event(event("e5", at: 60, limit: 900)), nowMs: t0).error == nil)
    }

    @Test func cancelImmediately() {
        var e = engine()
        _ = e.handle(.event(event("ev", for: 600, limit: 3000)), nowMs: t0)
        #expect(e.step(t0).source == "dispatch:ev")
        let out = e.handle(.cancel(id: "ev", randomizeS: 0), nowMs: t0 + 5000)
        #expect(out.error == nil)
        #expect(out.changed)
        #expect(out.responses == [EventResponse(event: "ev", status: .cancelled, atMs: t0 + 5000)])
        #expect(e.events.isEmpty)
        #expect(e.step(t0 + 5000).source == "default")
    }

    @Test func cancelUnknownIsNotFound() {
        var e = engine()
        let out = e.handle(.cancel(id: "nope", randomizeS: 0), nowMs: t0)
        #expect(out.error?.code == "not_found")
        #expect(out.error?.path == "id")
        #expect(out.responses.isEmpty)
        #expect(!out.changed)
    }

    @Test(arguments: Array(UInt64(1)...8))
    func cancelWithRandomization(seed: UInt64) throws {
        var e = engine(seed: seed)
        _ = e.handle(.event(event("ev", for: 3600, limit: 3000)), nowMs: t0)
        #expect(statuses(e.advance(nowMs: t0).responses) == [.started])
        let out = e.handle(.cancel(id: "ev", randomizeS: 60), nowMs: t0)
        #expect(out.error == nil)
        if out.responses.isEmpty {
            let at = try #require(e.events.first?.cancelAtMs)
            #expect(at > t0 && at <= t0 + 60_000)
            #expect(e.advance(nowMs: at - 1).responses.isEmpty)
            #expect(e.step(at - 1).source == "dispatch:ev")
            #expect(e.advance(nowMs: at).responses == [EventResponse(event: "ev", status: .cancelled, atMs: at)])
        } else {
            #expect(statuses(out.responses) == [.cancelled])
        }
        #expect(e.advance(nowMs: t0 + 60_000).responses.isEmpty)
        #expect(e.events.isEmpty)
    }

    @Test func optOutNotAllowed() {
        var e = engine()
        let ev = event("ev", for: 600, limit: 3000, optOut: false)
        _ = e.handle(.event(ev), nowMs: t0)
        let before = e.events
        let out = e.handle(.optOut(id: "ev"), nowMs: t0 + 1)
        #expect(out.error?.code == "not_allowed")
        #expect(out.responses.isEmpty)
        #expect(!out.changed)
        #expect(e.events == before)
        #expect(e.step(t0 + 1).source == "dispatch:ev")
    }

    @Test func optOutAllowed() {
        var e = engine()
        _ = e.handle(.event(event("ev", for: 600, limit: 3000, optOut: true)), nowMs: t0)
        #expect(e.step(t0).limitW == 3000)
        let out = e.handle(.optOut(id: "ev"), nowMs: t0 + 1)
        #expect(out.error == nil)
        #expect(out.responses == [EventResponse(event: "ev", status: .optedOut, atMs: t0 + 1)])
        // Kept as a final record until its end, so a re-delivery does not revive it.
        #expect(e.events.map(\.optedOut) == [true])
        let d = e.step(t0 + 1)
        #expect(d.source == "default")
        #expect(d.activeEvents.isEmpty)
        let again = e.handle(.optOut(id: "ev"), nowMs: t0 + 2)
        #expect(again.error == nil)
        #expect(again.responses.isEmpty)
        #expect(!again.changed)
        let redelivered = e.handle(.event(event("ev", for: 600, limit: 3000, optOut: true)), nowMs: t0 + 3)
        #expect(redelivered.responses.isEmpty)
        #expect(e.step(t0 + 4).source == "default")
        // Gone silently at its end: no completed (the opt-out was its final response).
        #expect(e.advance(nowMs: t0 + 600_000).responses.isEmpty)
        #expect(e.events.isEmpty)
    }

    @Test func eventsReplacesSetOnlyForHigherVersion() {
        var e = engine()
        // Disjoint windows, so that none supersedes another.
        let a = event("a", at: 60, limit: 1000), b = event("b", at: 3660, limit: 2000), c = event("c", at: 7260, limit: 3000)
        let v1 = e.handle(.events(version: 1, events: [a, b]), nowMs: t0)
        #expect(v1.error == nil)
        #expect(Set(v1.responses.map(\.event)) == ["a", "b"])
        #expect(statuses(v1.responses) == [.received, .received])
        #expect(e.eventsVersion == 1)
        for v in [0, 1] {
            let same = e.handle(.events(version: v, events: [c]), nowMs: t0 + 1)
            #expect(same.responses.isEmpty)
            #expect(!same.changed)
            #expect(e.events.map(\.id) == ["a", "b"])
        }
        let v2 = e.handle(.events(version: 2, events: [b, c]), nowMs: t0 + 2)
        #expect(v2.responses.contains(EventResponse(event: "a", status: .cancelled, atMs: t0 + 2)))
        #expect(v2.responses.contains { $0.event == "c" && $0.status == .received })
        #expect(!v2.responses.contains { $0.event == "b" })
        #expect(v2.responses.count == 2)
        #expect(e.events.map(\.id) == ["b", "c"])
        #expect(e.eventsVersion == 2)
        let v5 = e.handle(.events(version: 5, events: []), nowMs: t0 + 3)
        #expect(statuses(v5.responses) == [.cancelled, .cancelled])
        #expect(e.events.isEmpty)
    }

    @Test(arguments: Array(UInt64(1)...16))
    func randomizedStartWithinWindowAndPersisted(seed: UInt64) throws {
        var e = engine(seed: seed)
        let ev = event("ev", at: 600, for: 3600, limit: 3000, randomize: 900)
        let out = e.handle(.event(ev), nowMs: t0)
        let eff = try #require(out.responses.first?.effectiveStartMs)
        #expect(eff >= t0 + 600_000 && eff <= t0 + 1_500_000)
        #expect(e.events[0].effectiveStartMs == eff)
        #expect(e.events[0].endMs == eff + 3_600_000)

        // Save as text, restore into an engine with a different seed: the draw is kept.
        let text = e.persistentState.serialized
        var other = engine(seed: seed &+ 1000)
        other.restorePersistentState(try JSONValue.parse(text))
        #expect(other.events == e.events)
        #expect(other.handle(.event(ev), nowMs: t0 + 10).responses.isEmpty)
        #expect(other.events[0].effectiveStartMs == eff)
        #expect(other.advance(nowMs: eff - 1).responses.isEmpty)
        #expect(statuses(other.advance(nowMs: eff).responses) == [.started])
        #expect(other.step(eff).source == "dispatch:ev")
    }

    @Test func randomizedStartsDiffer() {
        var starts = Set<Int64>()
        for seed in UInt64(1)...10 {
            var e = engine(seed: seed)
            _ = e.handle(.event(event("ev", at: 0, for: 3600, limit: 3000, randomize: 900)), nowMs: t0)
            starts.insert(e.events[0].effectiveStartMs)
        }
        #expect(starts.count > 5)
    }

    @Test func persistentStateRoundTripsAllEvents() throws {
        var e = engine(seed: 7)
        _ = e.handle(.events(version: 9, events: [
            event("a", at: -10, for: 600, limit: 1234.5, primacy: 0, createdOffsetS: -100, optOut: true, maxOfflineS: 300),
            event("b", at: 60, for: 86_400, limit: 0, primacy: 64, randomize: 3600),
            event("c", at: 1200, for: 60, limit: 11_000),
        ]), nowMs: t0)
        _ = e.advance(nowMs: t0)
        _ = e.handle(.cancel(id: "c", randomizeS: 30), nowMs: t0)
        #expect(e.events.count == 3)
        #expect(e.events.first { $0.id == "a" }?.phase == .active)

        for state in [e.persistentState, try JSONValue.parse(e.persistentState.serialized)] {
            var r = engine(seed: 99)
            r.restorePersistentState(state)
            #expect(r.events == e.events)
            #expect(r.eventsVersion == 9)
            #expect(r.persistentState == e.persistentState)
            // A restored active event does not report started again.
            #expect(!r.advance(nowMs: t0 + 1).responses.contains { $0.event == "a" })
        }
    }

    @Test func restoreSkipsBrokenEntries() throws {
        var e = engine()
        e.restorePersistentState(try JSONValue.parse(#"""
            {"version":1,"events_version":3,"events":[{"id":"x"},
             {"id":"ok","created_ms":1,"start_ms":1811869200000,"duration_ms":60000,"limit_w":500,"primacy":2}]}
            """#))
        #expect(e.eventsVersion == 3)
        #expect(e.events.map(\.id) == ["ok"])
        #expect(e.events[0].phase == .scheduled)
        #expect(e.step(t0 + 1).limitW == 500)
    }
}
