import Glibc
import GridletCore

/// Finds device profiles: builtin ones by name (`BuiltinProfiles`) or YAML files by path.
public enum ProfileLibrary {
    /// Names of the builtin profiles.
    public static var builtinNames: [String] { BuiltinProfiles.names }

    /// Parses a builtin profile; nil when there is no builtin profile of that name.
    public static func builtin(named name: String) throws(YAMLError) -> DeviceProfile? {
        guard let text = BuiltinProfiles.yaml(named: name) else { return nil }
        let file = "builtin:\(name)"
        return try DeviceProfile.decode(try YAMLParser.parse(text, file: file), file: file)
    }

    /// Parses a profile from YAML text.
    public static func parse(_ text: String, file: String? = nil) throws(YAMLError) -> DeviceProfile {
        try DeviceProfile.decode(try YAMLParser.parse(text, file: file), file: file)
    }

    /// Loads a profile file.
    public static func load(path: String) throws(YAMLError) -> DeviceProfile {
        guard let text = readTextFile(path) else {
            throw YAMLError(path: "", line: 0, message: "cannot read profile file: \(String(cString: strerror(errno))); check the path, or use a built-in profile name (gridlet profiles)", file: path)
        }
        return try parse(text, file: path)
    }

    /// A builtin name, or else a path to a profile file (anything containing `/` or ending in .yaml/.yml is a path).
    public static func profile(_ nameOrPath: String) throws(YAMLError) -> DeviceProfile {
        let looksLikePath = nameOrPath.contains("/") || nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml")
        if !looksLikePath {
            if let p = try builtin(named: nameOrPath) { return p }
            throw YAMLError(path: "", line: 0,
                            message: "unknown profile '\(nameOrPath)'; builtin profiles: \(builtinNames.joined(separator: ", "))")
        }
        return try load(path: nameOrPath)
    }

    private static func readTextFile(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { bytes.append(contentsOf: buf[0..<n]) }
            if n < buf.count {
                if ferror(f) != 0 { return nil }
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
