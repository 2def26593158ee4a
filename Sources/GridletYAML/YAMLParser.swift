import CYAML
import GridletCore

/// Parses YAML text with libyaml's document API into `YAMLNode`s that keep line numbers.
/// Aliases are resolved by libyaml; duplicate mapping keys and multi-document streams are errors.
public enum YAMLParser {
    /// Parses one document. An empty document yields an empty mapping.
    public static func parse(_ text: String, file: String? = nil) throws(YAMLError) -> YAMLNode {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) != 0 else {
            throw YAMLError(path: "", line: 0, message: "cannot initialise the YAML parser", file: file)
        }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        var document = yaml_document_t()
        let result: Result<YAMLNode, YAMLError> = bytes.withUnsafeBufferPointer { buf in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            guard yaml_parser_load(&parser, &document) != 0 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                let context = parser.context.map { String(cString: $0) + ": " } ?? ""
                return .failure(YAMLError(path: "", line: Int(parser.problem_mark.line) + 1,
                                          message: "invalid YAML: \(context)\(problem)", file: file))
            }
            defer { yaml_document_delete(&document) }
            guard let root = yaml_document_get_root_node(&document) else {
                return .success(YAMLNode(.mapping([]), line: 1))
            }
            do {
                let node = try convert(root, document: &document, path: "", file: file, depth: 0)
                // A second document in the same stream is almost always a mistake in a config file.
                var second = yaml_document_t()
                if yaml_parser_load(&parser, &second) != 0 {
                    defer { yaml_document_delete(&second) }
                    if let extra = yaml_document_get_root_node(&second) {
                        return .failure(YAMLError(path: "", line: Int(extra.pointee.start_mark.line) + 1,
                                                  message: "only one YAML document is allowed", file: file))
                    }
                }
                return .success(node)
            } catch let e as YAMLError {
                return .failure(e)
            } catch {
                return .failure(YAMLError(path: "", line: 0, message: "\(error)", file: file))
            }
        }
        return try result.get()
    }

    private static func convert(_ node: UnsafeMutablePointer<yaml_node_t>, document: inout yaml_document_t,
                                path: String, file: String?, depth: Int) throws -> YAMLNode {
        let line = Int(node.pointee.start_mark.line) + 1
        let column = Int(node.pointee.start_mark.column) + 1
        guard depth < 64 else { throw YAMLError(path: path, line: line, message: "nesting too deep", file: file) }
        switch node.pointee.type {
        case YAML_SCALAR_NODE:
            let s = node.pointee.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
            let quoted = s.style == YAML_SINGLE_QUOTED_SCALAR_STYLE || s.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE
                || s.style == YAML_LITERAL_SCALAR_STYLE || s.style == YAML_FOLDED_SCALAR_STYLE
            return YAMLNode(.scalar(text, quoted: quoted), line: line, column: column)
        case YAML_SEQUENCE_NODE:
            var items: [YAMLNode] = []
            var item = node.pointee.data.sequence.items.start
            let top = node.pointee.data.sequence.items.top
            var index = 0
            while let p = item, p != top {
                guard let child = yaml_document_get_node(&document, p.pointee) else { break }
                items.append(try convert(child, document: &document, path: "\(path)[\(index)]", file: file, depth: depth + 1))
                index += 1
                item = p + 1
            }
            return YAMLNode(.sequence(items), line: line, column: column)
        case YAML_MAPPING_NODE:
            var pairs: [(key: String, keyLine: Int, value: YAMLNode)] = []
            var pair = node.pointee.data.mapping.pairs.start
            let top = node.pointee.data.mapping.pairs.top
            while let p = pair, p != top {
                guard let k = yaml_document_get_node(&document, p.pointee.key),
                      let v = yaml_document_get_node(&document, p.pointee.value) else { break }
                let keyLine = Int(k.pointee.start_mark.line) + 1
                guard k.pointee.type == YAML_SCALAR_NODE else {
                    throw YAMLError(path: path, line: keyLine, message: "mapping keys must be plain strings", file: file)
                }
                let ks = k.pointee.data.scalar
                let key = String(decoding: UnsafeBufferPointer(start: ks.value, count: ks.length), as: UTF8.self)
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if pairs.contains(where: { $0.key == key }) {
                    throw YAMLError(path: childPath, line: keyLine, message: "duplicate key", file: file)
                }
                pairs.append((key, keyLine, try convert(v, document: &document, path: childPath, file: file, depth: depth + 1)))
                pair = p + 1
            }
            return YAMLNode(.mapping(pairs), line: line, column: column)
        default:
            return YAMLNode(.scalar("", quoted: false), line: line, column: column)
        }
    }
}
