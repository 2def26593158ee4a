@testable import GridletAgent
import Glibc
import GridletCore
import Testing

/// The reply is the acknowledgement (libmosquitto PUBACKs before the agent sees a command): `ok:true`
/// only when the command is on disk, also for a re-send after a `storage` failure.
@Suite(.serialized) struct StorageAcknowledgementTests {
    @Test func aResentCommandIsAcknowledgedOnlyOnceTheStateIsWritten() throws {
        let h = try AgentHarness()
        h.connect()
        h.run(for: 300)
        // A directory where the temporary state file goes: every write of control.json fails.
        let blocker = h.stateDir + "/control.json.tmp"
        #expect(mkdir(blocker, 0o755) == 0)
        defer { rmdir(blocker) }
        let event = #"{"id":"evt-1","duration_s":600,"limit_w":4140}"#
        func reply() throws -> String { try #require(h.mqtt.on("/reply").last).payload }

        h.command("event", event)
        h.step(); h.step()   // the reply follows the state write's report, a turn later
        #expect(try reply().contains(#""code":"storage""#))
        // The same command again changes nothing in memory, but the disk still lacks it.
        h.command("event", event)
        h.step(); h.step()   // the reply follows the state write's report, a turn later
        #expect(try reply().contains(#""code":"storage""#))
        // A ping does not depend on the disk.
        h.command("ping", "{}")
        h.step(); h.step()   // the reply follows the state write's report, a turn later
        #expect(try reply().contains(#""ok":true"#))

        rmdir(blocker)
        h.command("event", event)
        h.step(); h.step()   // the reply follows the state write's report, a turn later
        #expect(try reply().contains(#""ok":true"#))
        let stored = String(decoding: StateFile.read(h.stateDir + "/control.json") ?? [], as: UTF8.self)
        #expect(stored.contains("evt-1"))
    }
}
