import Glibc
import GridletCore

/// Finds board descriptions: built-in (compiled from boards/*.yaml) by name, then
/// `/usr/share/gridlet/boards/NAME.yaml`; anything containing `/` or ending in .yaml is a path.
public enum BoardLibrary {
    public static let systemDirectory = "/usr/share/gridlet/boards"

    public static var builtinNames: [String] { BuiltinBoards.names }

    public static func parse(_ text: String, file: String? = nil) throws(YAMLError) -> Board {
        try Board.decode(try YAMLParser.parse(text, file: file), file: file)
    }

    public static func board(_ nameOrPath: String) throws(YAMLError) -> Board {
        let looksLikePath = nameOrPath.contains("/") || nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml")
        if looksLikePath { return try parse(try YAMLParser.readTextFile(nameOrPath), file: nameOrPath) }
        if let text = BuiltinBoards.yaml(named: nameOrPath) { return try parse(text, file: "builtin board \(nameOrPath)") }
        let path = "\(systemDirectory)/\(nameOrPath).yaml"
        if access(path, R_OK) == 0 { return try parse(try YAMLParser.readTextFile(path), file: path) }
        throw YAMLError(path: "", line: 0, message: "unknown board '\(nameOrPath)'; built-in boards: \(builtinNames.joined(separator: ", ")) (or a path to a board file, or \(systemDirectory)/NAME.yaml)")
    }
}

/// Applies a board's defaults to a configuration document before it is decoded, so every
/// value is validated by the configuration decoder and every key written in the file wins:
/// - `queue.max_bytes`, `queue.sync`, `queue.sync_interval` when the file does not set them;
/// - for each `kind: rtu` bus without `device`: the board's default device;
/// - for each `kind: rtu` bus without `rs485`: the flag of the board's port with that device.
public enum BoardDefaults {
    public static func apply(_ board: Board, to root: YAMLNode) -> YAMLNode {
        guard case var .mapping(top) = root.value else { return root }
        func scalar(_ s: String, _ line: Int) -> YAMLNode { YAMLNode(.scalar(s, quoted: false), line: line) }

        var queueDefaults: [(String, String)] = []
        if let v = board.queue.maxBytes { queueDefaults.append(("max_bytes", "\(v)B")) }
        if let v = board.queue.sync { queueDefaults.append(("sync", v.rawValue)) }
        if let v = board.queue.syncIntervalMs { queueDefaults.append(("sync_interval", "\(v)ms")) }
        if !queueDefaults.isEmpty {
            if let qi = top.firstIndex(where: { $0.key == "queue" }) {
                let q = top[qi].value
                if case var .mapping(pairs) = q.value {
                    for (k, v) in queueDefaults where !pairs.contains(where: { $0.key == k }) {
                        pairs.append((key: k, keyLine: q.line, value: scalar(v, q.line)))
                    }
                    top[qi].value = YAMLNode(.mapping(pairs), line: q.line, column: q.column)
                } else if q.isNull {
                    top[qi].value = YAMLNode(.mapping(queueDefaults.map { (key: $0.0, keyLine: q.line, value: scalar($0.1, q.line)) }),
                                             line: q.line, column: q.column)
                }   // anything else: left for the decoder to reject
            } else {
                top.append((key: "queue", keyLine: root.line,
                            value: YAMLNode(.mapping(queueDefaults.map { (key: $0.0, keyLine: root.line, value: scalar($0.1, root.line)) }),
                                            line: root.line)))
            }
        }

        if let bi = top.firstIndex(where: { $0.key == "buses" }), case let .sequence(items) = top[bi].value.value {
            var out: [YAMLNode] = []
            for item in items {
                guard case var .mapping(pairs) = item.value,
                      let kind = pairs.first(where: { $0.key == "kind" })?.value, case .scalar("rtu", _) = kind.value else {
                    out.append(item); continue
                }
                if !pairs.contains(where: { $0.key == "device" }), let d = board.defaultDevice {
                    pairs.append((key: "device", keyLine: item.line, value: scalar(d, item.line)))
                }
                if !pairs.contains(where: { $0.key == "rs485" }),
                   let dn = pairs.first(where: { $0.key == "device" })?.value, case let .scalar(dev, _) = dn.value,
                   let port = board.port(dev) {
                    pairs.append((key: "rs485", keyLine: item.line, value: scalar(port.rs485 ? "true" : "false", item.line)))
                }
                out.append(YAMLNode(.mapping(pairs), line: item.line, column: item.column))
            }
            top[bi].value = YAMLNode(.sequence(out), line: top[bi].value.line, column: top[bi].value.column)
        }
        return YAMLNode(.mapping(top), line: root.line, column: root.column)
    }

    /// The `board:` value of a document, if any.
    public static func boardName(in root: YAMLNode) -> String? {
        guard case let .mapping(top) = root.value, let n = top.first(where: { $0.key == "board" })?.value,
              case let .scalar(s, _) = n.value, !n.isNull else { return nil }
        return s
    }
}
