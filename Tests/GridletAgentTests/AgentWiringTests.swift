@testable import GridletAgent
import Glibc
import GridletCore
import GridletSys
import GridletYAML
import Testing

/// The agent's wiring with the real state machines, over fakes and a manual clock.
@Suite(.serialized) struct AgentWiringTests {
    typealias H = AgentHarness

    @Test func dispatchIsWrittenWithinOneLoopTurn() throws {
        let h = try AgentHarness()
        h.connect()
        h.run(for: 500)
        #expect(h.charger.writes(to: H.setpoint).last == 16)     // default: the hardware max
        h.charger.clearWrites()
        h.command("event", #"{"id":"evt-1","duration_s":600,"limit_w":4140}"#)
        h.step()
        #expect(h.charger.writes(to: H.setpoint) == [6])
        // The reply is the acknowledgement: only once control.json is written (reported back to
        // the loop by the state store), never before.
        #expect(h.mqtt.on("/reply").isEmpty)
        h.step()
        let reply = try #require(h.mqtt.on("/reply").last)
        #expect(reply.payload.contains(#""ok":true"#))
        #expect(reply.payload.contains(#""id":"evt-1""#))
    }

    @Test func failedFailsafeCurrentIsRetriedWhileTheTimeoutWriteSucceeded() throws {
        let h = try AgentHarness(control: "  fallback_limit_w: 4140")
        h.charger.state.withLock { $0.failing = [H.failsafeCurrent] }
        h.run(for: 300)
        #expect(h.charger.writes(to: H.failsafeCurrent) == [6])
        #expect(h.charger.writes(to: H.failsafeTimeout) == [60])   // device_failsafe_timeout default 60 s
        h.run(for: 3000)
        let failedAttempts = h.charger.writes(to: H.failsafeCurrent).count
        #expect(failedAttempts >= 2 && failedAttempts <= 3, "backoff 1 s, 2 s: \(failedAttempts)")
        h.charger.state.withLock { $0.failing = [] }
        h.run(for: 5000)
        let written = h.charger.writes(to: H.failsafeCurrent).count
        #expect(written == failedAttempts + 1)
        #expect(h.charger.writes(to: H.failsafeTimeout).count == 1)   // its success stood on its own
        h.run(for: 20_000)
        #expect(h.charger.writes(to: H.failsafeCurrent).count == written)   // programmed: not again
    }

    @Test func aliveRefreshFollowsRefreshFraction() throws {
        let profile = try vestelLikeProfile(name: "vestel-fast", control: "refresh_fraction: 0.1")
        let h = try AgentHarness(control: "  device_failsafe_timeout: 60s", chargerProfile: profile)
        h.run(for: 100)
        h.charger.clearWrites()
        h.run(for: 30_000)
        // 60 s x 0.1 = every 6 s: 5 refreshes in 30 s (Vestel's default, a quarter, would be 2).
        #expect(h.charger.writes(to: H.alive).count == 5)
    }

    @Test func brokerLossFallsBackAfterCommLossTimeout() throws {
        let h = try AgentHarness(control: "  comm_loss_timeout: 30s\n  fallback_limit_w: 4140")
        h.connect()
        h.run(for: 1000)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        h.charger.clearWrites()
        h.disconnect()
        h.run(for: 29_000)
        #expect(!h.charger.writes(to: H.setpoint).contains(6))
        h.run(for: 1500)
        #expect(h.charger.writes(to: H.setpoint).last == 6)
        #expect(h.agent.decision?.source == "fallback")
        #expect(h.agent.decision?.commOK == false)
    }

    @Test func aChargerRefusingConnectionsIsNotBusyLooped() throws {
        let h = try AgentHarness()
        h.charger.state.withLock { $0.failing = [H.setpoint, H.alive, H.failsafeCurrent, H.failsafeTimeout] }
        h.run(for: 30_000, everyMs: 10)   // 3,000 turns
        for a in [H.setpoint, H.failsafeCurrent, H.failsafeTimeout, H.alive] {
            #expect(h.charger.writes(to: a).count <= 7, "register \(a): \(h.charger.writes(to: a).count) writes in 30 s")
        }
        #expect(h.agent.nextWaitMs() > 1)
    }

    @Test func recordsGoToTheBrokerAndLeaveTheQueueOnPuback() throws {
        let h = try AgentHarness(control: "")
        h.connect()
        h.run(for: 2000)
        let telemetry = h.mqtt.on("/telemetry")
        #expect(!telemetry.isEmpty)
        #expect(telemetry.allSatisfy { $0.payload.contains(#""historical":false"#) })
        let before = h.queue.stored.count
        for p in telemetry { h.agent.mailbox.post(.mqtt(.published(mid: p.mid, reasonCode: 0))) }
        h.step()
        #expect(h.queue.stored.count < before)
        #expect(h.agent.pipeline.inFlight == 0 || h.mqtt.on("/telemetry").count > telemetry.count)
    }
}

extension AgentWiringTests {
    /// SPEC §2: below min_current the charger pauses; at exactly min_current (4140 W on 3 x 230 V)
    /// a paused charger runs again.
    @Test func pausedChargerResumesAtExactlyMinCurrent() throws {
        let h = try AgentHarness()
        h.connect()
        h.command("event", #"{"id":"zero","duration_s":60,"limit_w":0}"#)
        h.run(for: 1000)
        #expect(h.charger.writes(to: H.setpoint).last == 0)
        h.command("event", #"{"id":"min","duration_s":600,"limit_w":4140,"primacy":0}"#)
        h.run(for: 1000)
        #expect(h.charger.writes(to: H.setpoint).last == 6)
        #expect(h.agent.paused == false)
    }
}

@Suite struct ClockSyncTests {
    @Test func timesyncdMarkerWinsOverARefusedAdjtimex() throws {
        var template = Array("/tmp/gridlet-sync-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { rmdir(dir) }
        let marker = dir + "/synchronized"
        // ProtectClock=yes: adjtimex refused (-1) and no marker: not synchronised.
        #expect(!ClockSync.isSynchronised(marker: marker, kernel: { -1 }))
        #expect(!ClockSync.isSynchronised(marker: marker, kernel: { 0 }))
        #expect(ClockSync.isSynchronised(marker: marker, kernel: { 1 }))
        let fd = open(marker, O_CREAT | O_WRONLY, 0o644)
        close(fd)
        defer { unlink(marker) }
        #expect(ClockSync.isSynchronised(marker: marker, kernel: { -1 }))
    }
}

/// Comm state across restarts (SPEC §2): an outage in progress is still in progress.
@Suite(.serialized) struct CommRestartTests {
    typealias H = AgentHarness

    static func writeComm(_ dir: String, contactMs: Int64, wallMs: Int64) {
        let text = #"{"last_contact_ms":\#(contactMs),"wall_ms":\#(wallMs)}"#
        let fd = open(dir + "/comm.json", O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    @Test func aRestartDuringAnOutageNeverWritesAboveTheFallback() throws {
        let now = ManualTime().wallMs()
        let h = try AgentHarness(control: "  comm_loss_timeout: 30s\n  fallback_limit_w: 4140", prepare: { dir in
            Self.writeComm(dir, contactMs: now - 200_000, wallMs: now - 5000)
        })
        // The broker is still down: no .connected. From the very first write, the fallback.
        h.run(for: 5000)
        let writes = h.charger.writes(to: H.setpoint)
        #expect(!writes.isEmpty)
        #expect(writes.allSatisfy { $0 <= 6 }, "written after the restart: \(writes)")
        #expect(h.agent.decision?.source == "fallback")
    }

    @Test func aRestartWithinTheTimeoutKeepsTheRemainingTime() throws {
        let now = ManualTime().wallMs()
        let h = try AgentHarness(control: "  comm_loss_timeout: 30s\n  fallback_limit_w: 4140", prepare: { dir in
            Self.writeComm(dir, contactMs: now - 20_000, wallMs: now - 1000)
        })
        h.run(for: 5000)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        h.run(for: 6000)   // 31 s after the last contact
        #expect(h.charger.writes(to: H.setpoint).last == 6)
    }

    @Test func firstBootWithoutHistoryCountsFromTheStart() throws {
        let h = try AgentHarness(control: "  comm_loss_timeout: 30s\n  fallback_limit_w: 4140")
        h.run(for: 5000)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        h.run(for: 26_000)
        #expect(h.charger.writes(to: H.setpoint).last == 6)
    }

    @Test func contactIsSavedWhileConnectedAndOnDisconnect() throws {
        let h = try AgentHarness(control: "  comm_loss_timeout: 30s")
        h.connect()
        h.run(for: 8000)
        let saved = try #require(StateFile.read(h.stateDir + "/comm.json")).map { Character(UnicodeScalar($0)) }
        #expect(String(saved).contains("last_contact_ms"))
        h.disconnect()
        let json = try JSONValue.parse(try #require(StateFile.read(h.stateDir + "/comm.json")))
        #expect(json["last_contact_ms"]?.doubleValue == Double(h.time.wallMs()))
    }
}

@Suite struct MailboxTests {
    @Test func commandsBeyondTheBoundAreRefusedAndCountedCompletionsNever() throws {
        let m = try Mailbox<Int>(capacity: 3)
        for i in 0..<5 { m.offer(i) }
        for i in 100..<110 { m.post(i) }   // completions: always accepted
        #expect(m.refused == 2)
        let got = m.take(timeoutMs: 0)
        #expect(got.filter { $0 < 100 } == [0, 1, 2])
        #expect(got.filter { $0 >= 100 }.count == 10)
        // The bound is on what is pending: after a take there is room again.
        #expect(m.offer(7))
        #expect(m.refused == 2)
    }

    /// The loop sleeps until an input arrives, not until its timeout.
    @Test func aPostFromAnotherThreadEndsTheWait() throws {
        let m = try Mailbox<Int>()
        let t0 = SystemClock.monoMs()
        let poster = try PosixThread.start { usleep(50_000); m.post(1) }
        let got = m.take(timeoutMs: 5000)
        poster.join()
        #expect(got == [1])
        #expect(SystemClock.monoMs() - t0 < 2000)
    }

    /// Posts made while the loop is awake (a burst of PUBACKs read on the loop itself) leave no
    /// signal behind: the next wait sleeps its whole timeout instead of a spurious empty turn.
    @Test func postsWhileAwakeLeaveNoSpuriousWakeUp() throws {
        let m = try Mailbox<Int>()
        for i in 0..<20 { m.post(i) }
        #expect(m.take(timeoutMs: 100).count == 20)
        let t0 = SystemClock.monoMs()
        #expect(m.take(timeoutMs: 150).isEmpty)
        #expect(SystemClock.monoMs() - t0 >= 140)
    }

    /// One poll over the mailbox and a socket: data on the socket ends the wait and is reported.
    @Test func aWatchedDescriptorEndsTheWait() throws {
        let m = try Mailbox<Int>()
        var sv: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv) == 0)
        defer { close(sv[0]); close(sv[1]) }
        let idle = m.take(timeoutMs: 20, watching: (sv[0], Int16(POLLIN)))
        #expect(idle.items.isEmpty && idle.ready == 0)
        var byte: UInt8 = 1
        #expect(write(sv[1], &byte, 1) == 1)
        let t0 = SystemClock.monoMs()
        let r = m.take(timeoutMs: 5000, watching: (sv[0], Int16(POLLIN)))
        #expect(r.ready & Int16(POLLIN) != 0)
        #expect(SystemClock.monoMs() - t0 < 2000)
    }

    @Test func aCommandFloodIsBoundedInTheAgent() throws {
        let h = try AgentHarness()
        h.connect()
        for i in 0..<200 { h.command("ping", #"{"id":"p\#(i)"}"#) }
        h.step()
        #expect(h.mqtt.on("/reply").count == h.agent.mailbox.capacity)
        #expect(h.agent.commandsDropped == 200 - h.agent.mailbox.capacity)
    }
}

extension AgentWiringTests {
    /// SPEC §2: persisted before acknowledged. A command the agent cannot store is refused with
    /// `storage` (the sender sends it again), though it is in effect.
    @Test func aCommandThatCannotBeStoredIsNotAcknowledged() throws {
        let h = try AgentHarness()
        h.connect()
        h.run(for: 500)
        _ = h.store?.failing.withLock { $0.insert(h.stateDir + "/control.json") }
        h.command("event", #"{"id":"evt-s","duration_s":600,"limit_w":4140}"#)
        h.step()
        h.step()
        let reply = try #require(h.mqtt.on("/reply").last)
        #expect(reply.payload.contains(#""ok":false"#))
        #expect(reply.payload.contains(#""code":"storage""#))
        #expect(h.charger.writes(to: H.setpoint).last == 6)
        h.store?.failing.withLock { $0.removeAll() }
        h.command("event", #"{"id":"evt-s","duration_s":600,"limit_w":4140}"#)   // the sender re-sends
        h.step()
        h.step()
        // Memory was ahead of the disk: written again, then acknowledged.
        #expect(h.mqtt.on("/reply").last?.payload.contains(#""ok":true"#) == true)
    }

    /// Responses keep the order they were decided in, whatever waits for the disk.
    @Test func responsesStayInOrderBehindAPendingWrite() throws {
        let h = try AgentHarness()
        h.connect()
        h.run(for: 500)
        h.command("event", #"{"id":"now","duration_s":600,"limit_w":4140}"#)
        h.run(for: 300)
        let statuses = h.queue.stored.filter { $0.kind == .response }.map { String(decoding: $0.payload, as: UTF8.self) }
            .filter { $0.contains(#""event":"now""#) }
        #expect(statuses.count == 2)
        #expect(statuses.first?.contains(#""status":1,"#) == true)   // received before started
        #expect(statuses.last?.contains(#""status":2,"#) == true)
    }
}

/// Failsafe programming is verified where the profile allows a read-back (issue "Fault-proof" 4).
@Suite(.serialized) struct FailsafeReadBackTests {
    typealias H = AgentHarness

    static func profile() throws -> DeviceProfile {
        try vestelLikeProfile(name: "vestel-readback", control: "failsafe_readback: true")
    }

    @Test func aFailsafeTheChargerDidNotKeepIsWrittenAgain() throws {
        let h = try AgentHarness(control: "  fallback_limit_w: 4140", chargerProfile: try Self.profile())
        h.charger.kept.withLock { $0[H.failsafeCurrent] = 0 }   // acknowledges the write, keeps 0
        h.run(for: 4000)
        let attempts = h.charger.writes(to: H.failsafeCurrent).count
        #expect(attempts >= 2 && attempts <= 4, "\(attempts) writes in 4 s: retried with backoff")
        #expect(h.charger.reads.filter { $0 == H.failsafeCurrent }.count >= 2)
        #expect(h.charger.writes(to: H.failsafeTimeout).count == 1)   // read back fine: written once
        h.charger.kept.withLock { $0.removeAll() }
        h.run(for: 20_000)
        let settled = h.charger.writes(to: H.failsafeCurrent).count
        h.run(for: 20_000)
        #expect(h.charger.writes(to: H.failsafeCurrent).count == settled)   // verified: not again
        #expect(h.agent.drivers[1]?.confirmed(.failsafeCurrent) == 6)
    }

    @Test func withoutReadbackNothingIsRead() throws {
        let h = try AgentHarness(control: "  fallback_limit_w: 4140")
        h.run(for: 3000)
        #expect(h.charger.reads.isEmpty)
    }
}

/// A Vestel-like charger profile (setpoint 5004, failsafe 2000/2002, alive 6000) with one more
/// `control:` line.
func vestelLikeProfile(name: String, control extra: String) throws -> DeviceProfile {
    try ProfileLibrary.parse("""
        name: \(name)
        kind: charger
        vendor: Test
        model: \(name)
        unit: 255
        transport: tcp
        defaults: { table: input, type: uint16, word_order: hi_first, verified: false }
        points:
          voltage_l1_v: { address: 1016 }
        control:
          charging_current: { address: 5004 }
          failsafe_current: { address: 2000 }
          failsafe_timeout: { address: 2002 }
          alive: { address: 6000, value: 1 }
          \(extra)
        """)
}
