import Glibc
import GridletCore
import GridletYAML

/// Loads and fully validates a configuration: the YAML checks, then what needs the file
/// system (profile files, time zone, readable password and TLS files).
public enum ConfigLoading {
    public struct Loaded: Sendable {
        public var config: GridletConfig
        public var profiles: [String: DeviceProfile]
    }

    /// - Parameter board: a board name or file that overrides the file's `board:` key (`--board`).
    public static func load(path: String, board: String? = nil) throws(YAMLError) -> Loaded {
        let text = try YAMLParser.readTextFile(path)
        return try load(text: text, file: path, board: board)
    }

    public static func load(text: String, file: String, board: String? = nil) throws(YAMLError) -> Loaded {
        var root = try YAMLParser.parse(text, file: file)
        // Board defaults are merged into the document first, so the file's own keys win.
        if let name = board ?? BoardDefaults.boardName(in: root) {
            do throws(YAMLError) {
                root = BoardDefaults.apply(try BoardLibrary.board(name), to: root)
            } catch {
                throw YAMLError(path: "board", line: line(root, key: "board"), message: "\(error)", file: file)
            }
        }
        var config = try GridletConfig.decode(root, file: file, profileExists: { ProfileLibrary.builtinNames.contains($0) })
        if let board { config.board = board }
        var profiles: [String: DeviceProfile] = [:]
        for (i, d) in config.devices.enumerated() where profiles[d.profile] == nil {
            do throws(YAMLError) {
                var path = d.profile
                if !path.hasPrefix("/"), d.profile.contains("/") {
                    path = StateFile.directory(of: file) + "/" + path
                }
                profiles[d.profile] = try ProfileLibrary.profile(d.profile.contains("/") ? path : d.profile)
            } catch {
                throw YAMLError(path: "devices[\(i)].profile", line: line(root, device: i, key: "profile"),
                                message: "\(error)", file: file)
            }
            if d.role == .charger, profiles[d.profile]?.control == nil, profiles[d.profile]?.power == nil {
                throw YAMLError(path: "devices[\(i)].role", line: line(root, device: i, key: "role"),
                                message: "profile \(d.profile) has no charger control registers; use role: meter or a charger profile",
                                file: file)
            }
            for (key, set) in [("max_discharge_w", d.maxDischargeW != nil), ("min_soc_pct", d.minSocPct != nil)]
            where set && profiles[d.profile]?.power == nil {
                throw YAMLError(path: "devices[\(i)].\(key)", line: line(root, device: i, key: key),
                                message: "applies to bidirectional devices only (a profile with a power: section, e.g. sunspec-der or wallbox-quasar); profile \(d.profile) cannot discharge",
                                file: file)
            }
        }
        let tz = config.site.timezone
        if tz != "UTC", access("/usr/share/zoneinfo/" + tz, R_OK) != 0 {
            throw YAMLError(path: "site.timezone", line: line(root, section: "site", key: "timezone"),
                            message: "unknown time zone '\(tz)' (no /usr/share/zoneinfo/\(tz)); install tzdata or use an IANA name such as Europe/Berlin",
                            file: file)
        }
        for (key, value) in [("password_file", config.mqtt.passwordFile), ("tls.ca_file", config.mqtt.tls?.caFile),
                             ("tls.cert_file", config.mqtt.tls?.certFile), ("tls.key_file", config.mqtt.tls?.keyFile)] {
            if let p = value, access(p, R_OK) != 0 {
                throw YAMLError(path: "mqtt.\(key)", line: line(root, section: "mqtt", key: key.split(separator: ".").first.map(String.init) ?? key),
                                message: "cannot read \(p): \(String(cString: strerror(errno)))", file: file)
            }
        }
        for (key, p) in config.openADR?.files ?? [] where access(p, R_OK) != 0 {
            throw YAMLError(path: "openadr.\(key)", line: line(root, section: "openadr", key: key.split(separator: ".").first.map(String.init) ?? key),
                            message: "cannot read \(p): \(String(cString: strerror(errno)))", file: file)
        }
        return Loaded(config: config, profiles: profiles)
    }

    private static func line(_ root: YAMLNode, key: String) -> Int {
        guard case let .mapping(top) = root.value else { return root.line }
        return top.first(where: { $0.key == key })?.value.line ?? 0
    }

    private static func line(_ root: YAMLNode, section: String, key: String) -> Int {
        guard case let .mapping(top) = root.value, let s = top.first(where: { $0.key == section })?.value,
              case let .mapping(pairs) = s.value else { return root.line }
        return pairs.first(where: { $0.key == key })?.value.line ?? s.line
    }

    private static func line(_ root: YAMLNode, device: Int, key: String) -> Int {
        guard case let .mapping(top) = root.value, let s = top.first(where: { $0.key == "devices" })?.value,
              case let .sequence(items) = s.value, device < items.count else { return root.line }
        guard case let .mapping(pairs) = items[device].value else { return items[device].line }
        return pairs.first(where: { $0.key == key })?.value.line ?? items[device].line
    }
}
