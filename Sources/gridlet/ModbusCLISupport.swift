import GridletCore

/// Shared option parsing for the Modbus diagnostics commands (scan, modbus, simulate).
enum ModbusCLI {
    static func parity(_ s: String) throws -> Parity {
        switch s.lowercased() {
        case "none", "n": return .none
        case "even", "e": return .even
        case "odd", "o": return .odd
        default: throw Failure("--parity: expected none, even or odd, got '\(s)'", code: 2)
        }
    }

    /// `100ms`, `1s`, or a bare number of milliseconds.
    static func durationMs(_ s: String, option: String) throws -> Int {
        if let v = YAMLScalar.durationMs(s) { return Int(v) }
        if let v = Int(s) { return v }
        throw Failure("\(option): expected a duration like 100ms or 1s, got '\(s)'", code: 2)
    }

    /// `HOST:PORT` (port default 502).
    static func hostPort(_ s: String) throws -> (String, Int) {
        guard let colon = s.lastIndex(of: ":") else { return (s, 502) }
        guard let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else {
            throw Failure("expected HOST:PORT, got '\(s)'", code: 2)
        }
        return (String(s[..<colon]), port)
    }
}
