/// `log:` section (docs/configuration.md). The agent maps the level to its logger; the
/// `--log-level` option of `gridlet run` overrides it.
public struct LogConfig: Sendable, Equatable {
    public enum Level: String, Sendable, Equatable, CaseIterable { case error, warning, notice, info, debug }
    public var level: Level        // default info
    public init(level: Level = .info) { self.level = level }
}
