import GridletAgent
import Testing

@Suite struct SocketPathTests {
    @Test func withoutConfigurationOrRuntimeDirectoryIsThePackagedDefault() {
        #expect(SocketPath.resolve(configured: nil, runtimeDirectory: nil) == "/run/gridlet/gridlet.sock")
    }

    /// `RUNTIME_DIRECTORY=` (set but empty) crashed the daemon once: it must fall back.
    @Test(arguments: ["", ":", "::"])
    func anEmptyRuntimeDirectoryFallsBackToTheDefault(_ env: String) {
        #expect(SocketPath.resolve(configured: nil, runtimeDirectory: env) == "/run/gridlet/gridlet.sock")
    }

    /// systemd lists one directory per `RuntimeDirectory=` entry, separated by colons.
    @Test func theFirstOfSeveralRuntimeDirectoriesIsUsed() {
        #expect(SocketPath.resolve(configured: nil, runtimeDirectory: "/run/a:/run/b") == "/run/a/gridlet.sock")
        #expect(SocketPath.resolve(configured: nil, runtimeDirectory: "a:b") == "a/gridlet.sock")
    }

    @Test func emptyEntriesBeforeTheFirstDirectoryAreSkipped() {
        #expect(SocketPath.resolve(configured: nil, runtimeDirectory: ":x") == "x/gridlet.sock")
        #expect(SocketPath.resolve(configured: nil, runtimeDirectory: "::/run/gridlet:") == "/run/gridlet/gridlet.sock")
    }

    @Test func aConfiguredSocketWins() {
        #expect(SocketPath.resolve(configured: "/srv/g.sock", runtimeDirectory: "/run/a:/run/b") == "/srv/g.sock")
        #expect(SocketPath.resolve(configured: "/srv/g.sock", runtimeDirectory: nil) == "/srv/g.sock")
    }

    /// An empty `site.socket` is not a path: it means "not configured".
    @Test func anEmptyConfiguredSocketCountsAsUnset() {
        #expect(SocketPath.resolve(configured: "", runtimeDirectory: "/run/a") == "/run/a/gridlet.sock")
    }
}
