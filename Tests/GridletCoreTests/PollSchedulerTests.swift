import GridletCore
import Testing

@Suite struct PollSchedulerTests {
    @Test func eachDeviceKeepsItsOwnInterval() {
        var s = PollScheduler(intervalsMs: [100, 250])
        #expect(s.due(nowMs: 0) == [0, 1])
        #expect(s.due(nowMs: 0) == [], "in flight: no overlap")
        s.completed(0, success: true, nowMs: 30)
        s.completed(1, success: true, nowMs: 40)
        #expect(s.nextWaitMs(nowMs: 40) == 60)
        #expect(s.due(nowMs: 99) == [])
        #expect(s.due(nowMs: 100) == [0])
        s.completed(0, success: true, nowMs: 120)
        #expect(s.due(nowMs: 200) == [0])
        #expect(s.nextWaitMs(nowMs: 200) == 50, "device 0 in flight, device 1 due at 250")
        s.completed(0, success: true, nowMs: 210)
        #expect(s.due(nowMs: 250) == [1])
    }

    @Test func slowAnswerDoesNotOverlapButDoesNotDrift() {
        var s = PollScheduler(intervalsMs: [100])
        #expect(s.due(nowMs: 0) == [0])
        #expect(s.due(nowMs: 150) == [], "still in flight")
        s.completed(0, success: true, nowMs: 180)
        #expect(s.due(nowMs: 180) == [0], "overdue: polled at once when the answer came")
        s.completed(0, success: true, nowMs: 190)
        #expect(s.due(nowMs: 279) == [] && s.due(nowMs: 280) == [0])
    }

    @Test func failuresBackOffExponentiallyCappedAt30s() {
        var s = PollScheduler(intervalsMs: [1000, 1000])
        var now: Int64 = 0
        var waits: [Int64] = []
        for _ in 0..<8 {
            #expect(s.due(nowMs: now).contains(0))
            s.completed(0, success: false, nowMs: now)
            let next = now + s.backoffMs(0)
            waits.append(s.backoffMs(0))
            #expect(s.due(nowMs: next - 1).contains(0) == false)
            now = next
            // Device 1 is unaffected: due every second.
            s.completed(1, success: true, nowMs: now)
        }
        #expect(waits == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
        #expect(s.isStale(0, nowMs: now))
        // One success resets the backoff and the stale mark.
        #expect(s.due(nowMs: now).contains(0))
        s.completed(0, success: true, nowMs: now + 5)
        #expect(!s.isStale(0, nowMs: now + 5) && s.backoffMs(0) == 1000)
        #expect(s.due(nowMs: now + 1000).contains(0))
    }

    @Test func shortIntervalsBackOffToThirtySecondsWithoutOverflow() {
        var s = PollScheduler(intervalsMs: [100])
        for i in 0..<40 { _ = s.due(nowMs: Int64(i) * 40_000); s.completed(0, success: false, nowMs: Int64(i) * 40_000) }
        #expect(s.backoffMs(0) == 30_000 && s.failures(0) == 40)
    }

    @Test func staleWithoutRecentSuccess() {
        var s = PollScheduler(intervalsMs: [1000], staleAfterMs: [3000])
        #expect(s.isStale(0, nowMs: 0), "never read")
        _ = s.due(nowMs: 0)
        s.completed(0, success: true, nowMs: 10)
        #expect(!s.isStale(0, nowMs: 3010))
        #expect(s.isStale(0, nowMs: 3011), "poll hanging in flight for too long")
    }
}
