/// Typed, path-tracking access to a `YAMLNode` mapping, used by the configuration and
/// profile decoders. Every error names the key path and line; `finish()` rejects keys
/// nobody asked for (unknown keys are errors, never silently ignored).
public struct YAMLMap {
    public let node: YAMLNode
    public let path: String
    public let file: String?
    private let pairs: [(key: String, keyLine: Int, value: YAMLNode)]
    private var used: Set<String> = []

    public init(_ node: YAMLNode, path: String, file: String? = nil) throws(YAMLError) {
        guard case let .mapping(pairs) = node.value else {
            if node.isNull {
                self.node = node; self.path = path; self.file = file; self.pairs = []
                return
            }
            throw YAMLError(path: path, line: node.line, message: "expected a mapping", file: file)
        }
        self.node = node
        self.path = path
        self.file = file
        self.pairs = pairs
    }

    public func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func error(_ key: String, _ message: String) -> YAMLError {
        let line = pairs.first(where: { $0.key == key })?.value.line ?? node.line
        return YAMLError(path: childPath(key), line: line, message: message, file: file)
    }

    public var keys: [String] { pairs.map(\.key) }

    /// The raw node for a key (marks it used); nil when absent or `null`.
    public mutating func node(_ key: String) -> YAMLNode? {
        used.insert(key)
        guard let n = pairs.first(where: { $0.key == key })?.value, !n.isNull else { return nil }
        return n
    }

    /// True when the key is present, even with a `null` value.
    public func has(_ key: String) -> Bool { pairs.contains { $0.key == key } }

    public mutating func string(_ key: String) throws(YAMLError) -> String? {
        guard let n = node(key) else { return nil }
        guard case let .scalar(s, _) = n.value else { throw error(key, "expected a string") }
        return s
    }

    public mutating func requiredString(_ key: String) throws(YAMLError) -> String {
        guard let s = try string(key) else { throw missing(key) }
        return s
    }

    public func missing(_ key: String) -> YAMLError {
        YAMLError(path: childPath(key), line: node.line, message: "required key is missing", file: file)
    }

    public mutating func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(YAMLError) -> Int? {
        guard let n = node(key) else { return nil }
        guard case let .scalar(s, quoted) = n.value, !quoted, let v = YAMLScalar.int(s) else {
            throw error(key, "expected an integer")
        }
        if let range, !range.contains(v) {
            throw error(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
        }
        return v
    }

    public mutating func double(_ key: String, in range: ClosedRange<Double>? = nil) throws(YAMLError) -> Double? {
        guard let n = node(key) else { return nil }
        guard case let .scalar(s, quoted) = n.value, !quoted, let v = YAMLScalar.double(s) else {
            throw error(key, "expected a number")
        }
        if let range, !range.contains(v) {
            throw error(key, "must be between \(YAMLScalar.format(range.lowerBound)) and \(YAMLScalar.format(range.upperBound)), got \(YAMLScalar.format(v))")
        }
        return v
    }

    public mutating func bool(_ key: String) throws(YAMLError) -> Bool? {
        guard let n = node(key) else { return nil }
        guard case let .scalar(s, quoted) = n.value, !quoted, let v = YAMLScalar.bool(s) else {
            throw error(key, "expected true or false")
        }
        return v
    }

    /// A duration such as `500ms`, `30s`, `5m`, `1h`, in milliseconds.
    public mutating func durationMs(_ key: String, min: Int64? = nil, max: Int64? = nil) throws(YAMLError) -> Int64? {
        guard let s = try string(key) else { return nil }
        guard let v = YAMLScalar.durationMs(s) else {
            throw error(key, "expected a duration with a unit (500ms, 30s, 5m, 1h), got '\(s)'")
        }
        if let min, v < min { throw error(key, "must be at least \(YAMLScalar.formatDuration(min)), got \(s)") }
        if let max, v > max { throw error(key, "must be at most \(YAMLScalar.formatDuration(max)), got \(s)") }
        return v
    }

    /// A size such as `64KiB`, `64MiB`, `1GiB`, in bytes.
    public mutating func sizeBytes(_ key: String, min: Int? = nil, max: Int? = nil) throws(YAMLError) -> Int? {
        guard let s = try string(key) else { return nil }
        guard let v = YAMLScalar.sizeBytes(s) else {
            throw error(key, "expected a size with a unit (64KiB, 64MiB, 1GiB), got '\(s)'")
        }
        if let min, v < min { throw error(key, "must be at least \(min) bytes, got \(s)") }
        if let max, v > max { throw error(key, "must be at most \(max) bytes, got \(s)") }
        return v
    }

    public mutating func sequence(_ key: String) throws(YAMLError) -> [YAMLNode]? {
        guard let n = node(key) else { return nil }
        guard case let .sequence(items) = n.value else { throw error(key, "expected a list") }
        return items
    }

    public mutating func map(_ key: String) throws(YAMLError) -> YAMLMap? {
        guard let n = node(key) else { return nil }
        return try YAMLMap(n, path: childPath(key), file: file)
    }

    /// Rejects any key that was not read.
    public func finish() throws(YAMLError) {
        for p in pairs where !used.contains(p.key) {
            throw YAMLError(path: childPath(p.key), line: p.keyLine, message: "unknown key", file: file)
        }
    }
}

/// Scalar conversions shared by YAML decoding (YAML 1.1 plain scalars, restricted to what
/// configuration files need).
public enum YAMLScalar {
    public static func int(_ s: String) -> Int? {
        var t = Substring(s)
        var negative = false
        if t.hasPrefix("-") { negative = true; t = t.dropFirst() } else if t.hasPrefix("+") { t = t.dropFirst() }
        if t.hasPrefix("-") || t.hasPrefix("+") { return nil }   // "--5", "+-5"
        let v: Int?
        if t.hasPrefix("0x") || t.hasPrefix("0X") {
            let hex = t.dropFirst(2)
            v = hex.hasPrefix("-") || hex.hasPrefix("+") ? nil : Int(hex, radix: 16)
        }
        else { v = Int(t.replacingUnderscores(), radix: 10) }
        guard let v else { return nil }
        return negative ? -v : v
    }

    public static func double(_ s: String) -> Double? {
        if let i = int(s) { return Double(i) }
        guard !s.isEmpty, let d = Double(s), d.isFinite else { return nil }
        return d
    }

    public static func bool(_ s: String) -> Bool? {
        switch s {
        case "true", "True", "TRUE", "yes", "on": return true
        case "false", "False", "FALSE", "no", "off": return false
        default: return nil
        }
    }

    public static func durationMs(_ s: String) -> Int64? {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (u, mult) in units where s.hasSuffix(u) {
            let num = s.dropLast(u.count)
            guard !num.isEmpty, let d = Double(num), d.isFinite, d >= 0 else { return nil }
            // "5m" must not be read as "5" + "m" of "ms" etc.: the unit table is ordered so "ms" comes first.
            let ms = (d * mult).rounded()
            guard ms < 9.2e18 else { return nil }   // Int64(_:) traps on overflow
            return Int64(ms)
        }
        return nil
    }

    public static func sizeBytes(_ s: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)]
        for (u, mult) in units where s.hasSuffix(u) {
            guard let n = Int(s.dropLast(u.count)), n >= 0 else { return nil }
            let (r, overflow) = n.multipliedReportingOverflow(by: mult)
            return overflow ? nil : r
        }
        return nil
    }

    public static func format(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    public static func formatDuration(_ ms: Int64) -> String {
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Substring {
    fileprivate func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
