/// A parsed YAML document node that remembers where it came from, so configuration and
/// profile errors can name the key path and the line. Produced by GridletYAML (libyaml);
/// the core only consumes it and never touches the C library.
public struct YAMLNode: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        /// A scalar exactly as written. `quoted` is true for '...' and "..." scalars, so
        /// `"13:00"` stays a string and `null`/`~`/empty plain scalars can be told apart.
        case scalar(String, quoted: Bool)
        case sequence([YAMLNode])
        /// Keys in document order; duplicate keys are rejected by the parser.
        case mapping([(key: String, keyLine: Int, value: YAMLNode)])

        public static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case let (.scalar(x, qx), .scalar(y, qy)): return x == y && qx == qy
            case let (.sequence(x), .sequence(y)): return x == y
            case let (.mapping(x), .mapping(y)):
                return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            default: return false
            }
        }
    }

    public var value: Value
    /// 1-based line of the node's start in its source.
    public var line: Int
    /// 1-based column.
    public var column: Int

    public init(_ value: Value, line: Int, column: Int = 1) {
        self.value = value
        self.line = line
        self.column = column
    }

    /// True for a plain `null`, `~` or empty scalar.
    public var isNull: Bool {
        if case let .scalar(s, quoted) = value, !quoted { return s.isEmpty || s == "null" || s == "~" || s == "Null" || s == "NULL" }
        return false
    }
}

/// An error in a YAML document (syntax) or in what it says (validation): always names where.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Key path such as `devices[1].max_current`; empty for the document root or syntax errors.
    public var path: String
    public var line: Int
    public var message: String
    /// The file the document came from, when known.
    public var file: String?

    public init(path: String, line: Int, message: String, file: String? = nil) {
        self.path = path
        self.line = line
        self.message = message
        self.file = file
    }

    public var description: String {
        let where_ = file.map { "\($0):\(line)" } ?? "line \(line)"
        return path.isEmpty ? "\(where_): \(message)" : "\(where_): \(path): \(message)"
    }
}
