#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GridletCore

extension GridletConfig {
    /// Parses YAML text and decodes it as the agent configuration.
    public static func parse(text: String, file: String? = nil,
                             profileExists: (String) -> Bool) throws(YAMLError) -> GridletConfig {
        let root = try YAMLParser.parse(text, file: file)
        return try decode(root, file: file, profileExists: profileExists)
    }

    /// Reads, parses and decodes a configuration file. A file that cannot be read is a
    /// `YAMLError` with line 0.
    public static func load(path: String, profileExists: (String) -> Bool) throws(YAMLError) -> GridletConfig {
        let text = try YAMLParser.readTextFile(path)
        return try parse(text: text, file: path, profileExists: profileExists)
    }
}

extension YAMLParser {
    /// Largest file `readTextFile` accepts; configuration and profile files are a few KiB.
    public static let maxFileBytes = 4 << 20

    /// Reads a whole UTF-8 text file with stdio. Errors are `YAMLError`s with line 0 naming the file.
    public static func readTextFile(_ path: String) throws(YAMLError) -> String {
        func fail(_ what: String) -> YAMLError {
            YAMLError(path: "", line: 0, message: "cannot read \(path): \(what)", file: path)
        }
        guard let f = fopen(path, "rb") else { throw fail(String(cString: strerror(errno))) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if bytes.count > maxFileBytes { throw fail("larger than \(maxFileBytes) bytes") }
            if n < chunk.count {
                if ferror(f) != 0 { throw fail(String(cString: strerror(errno))) }
                break
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw fail("not valid UTF-8 text") }
        return text
    }

    /// Reads and parses a YAML file; errors carry the path as `file`.
    public static func parseFile(_ path: String) throws(YAMLError) -> YAMLNode {
        try parse(try readTextFile(path), file: path)
    }
}
