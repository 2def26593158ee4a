#if canImport(Glibc)
import Glibc
#endif
import GridletCore
import GridletYAML
import Testing

private func pairs(_ n: YAMLNode) -> [(key: String, keyLine: Int, value: YAMLNode)] {
    if case let .mapping(p) = n.value { return p }
    Issue.record("expected a mapping at line \(n.line)")
    return []
}

private func items(_ n: YAMLNode) -> [YAMLNode] {
    if case let .sequence(i) = n.value { return i }
    Issue.record("expected a sequence at line \(n.line)")
    return []
}

@Test func nestedNodesKeepTheirLines() throws {
    let root = try YAMLParser.parse("""
    # comment
    a:
      b:
        - x
        - c: 1

          d: [2, 3]
    e: {f: g}
    """)
    let top = pairs(root)
    #expect(top.map(\.key) == ["a", "e"])
    #expect(top.map(\.keyLine) == [2, 8])
    let b = pairs(top[0].value)[0]
    #expect(b.key == "b" && b.keyLine == 3)
    let list = items(b.value)
    #expect(list.map(\.line) == [4, 5])
    #expect(list[0].column == 7)
    let inner = pairs(list[1])
    #expect(inner.map(\.keyLine) == [5, 7])
    #expect(items(inner[1].value).map(\.line) == [7, 7])
    let g = pairs(top[1].value)[0].value
    #expect(g.value == .scalar("g", quoted: false))
    #expect(g.line == 8 && g.column == 8)
}

@Test func quotedAndPlainScalars() throws {
    let root = try YAMLParser.parse("""
    a: 13:00
    b: "13:00"
    c: 'x'
    d: null
    e: "null"
    f:
    g: ~
    h: |
      text
    i: end
    """)
    let p = pairs(root)
    #expect(p[0].value.value == .scalar("13:00", quoted: false))
    #expect(p[1].value.value == .scalar("13:00", quoted: true))
    #expect(p[2].value.value == .scalar("x", quoted: true))
    #expect(p[3].value.isNull)
    #expect(!p[4].value.isNull)
    #expect(p[5].value.isNull)
    #expect(p[6].value.isNull)
    #expect(p[7].value.value == .scalar("text\n", quoted: true))
}

@Test func emptyDocumentIsAnEmptyMapping() throws {
    #expect(try YAMLParser.parse("").value == .mapping([]))
    #expect(try YAMLParser.parse("# only a comment\n").value == .mapping([]))
}

@Test func syntaxErrorsNameTheLine() {
    #expect(throws: YAMLError.self) { try YAMLParser.parse("a: [1, 2\nb: 3\n") }
    do {
        _ = try YAMLParser.parse("a: 1\nb: \"unterminated\n", file: "x.yaml")
        Issue.record("expected an error")
    } catch {
        #expect(error.path == "")
        #expect(error.line == 3)
        #expect(error.file == "x.yaml")
        #expect(error.message.hasPrefix("invalid YAML"))
    }
}

@Test func duplicateKeysAndSecondDocumentsAreErrors() {
    do {
        _ = try YAMLParser.parse("a:\n  b: 1\n  b: 2\n")
        Issue.record("expected an error")
    } catch {
        #expect(error.path == "a.b")
        #expect(error.line == 3)
        #expect(error.message == "duplicate key")
    }
    do {
        _ = try YAMLParser.parse("a: 1\n---\nb: 2\n")
        Issue.record("expected an error")
    } catch {
        #expect(error.line == 3)
        #expect(error.message.contains("only one YAML document"))
    }
}

@Test func integerScalars() {
    #expect(YAMLScalar.int("0x34") == 52)
    #expect(YAMLScalar.int("0X1f") == 31)
    #expect(YAMLScalar.int("-12") == -12)
    #expect(YAMLScalar.int("+7") == 7)
    #expect(YAMLScalar.int("1_000") == 1000)
    #expect(YAMLScalar.int("12.5") == nil)
    #expect(YAMLScalar.int("") == nil)
    #expect(YAMLScalar.int("0x") == nil)
    #expect(YAMLScalar.int("--5") == nil)
    #expect(YAMLScalar.int("+-5") == nil)
    #expect(YAMLScalar.int("0x-5") == nil)
    #expect(YAMLScalar.int("abc") == nil)
    #expect(YAMLScalar.double("12.5") == 12.5)
    #expect(YAMLScalar.double("0x10") == 16)
    #expect(YAMLScalar.double(".inf") == nil)
    #expect(YAMLScalar.bool("yes") == true)
    #expect(YAMLScalar.bool("false") == false)
    #expect(YAMLScalar.bool("1") == nil)
}

@Test func durations() {
    #expect(YAMLScalar.durationMs("500ms") == 500)
    #expect(YAMLScalar.durationMs("30s") == 30_000)
    #expect(YAMLScalar.durationMs("5m") == 300_000)
    #expect(YAMLScalar.durationMs("1h") == 3_600_000)
    #expect(YAMLScalar.durationMs("1.5s") == 1500)
    #expect(YAMLScalar.durationMs("60m") == YAMLScalar.durationMs("1h"))
    #expect(YAMLScalar.durationMs("30") == nil)
    #expect(YAMLScalar.durationMs("s") == nil)
    #expect(YAMLScalar.durationMs("-1s") == nil)
    #expect(YAMLScalar.durationMs("1e300h") == nil)   // must not trap
    #expect(YAMLScalar.formatDuration(900_000) == "15m")
    #expect(YAMLScalar.formatDuration(1500) == "1500ms")
}

@Test func sizes() {
    #expect(YAMLScalar.sizeBytes("64KiB") == 65_536)
    #expect(YAMLScalar.sizeBytes("64MiB") == 67_108_864)
    #expect(YAMLScalar.sizeBytes("1GiB") == 1 << 30)
    #expect(YAMLScalar.sizeBytes("512B") == 512)
    #expect(YAMLScalar.sizeBytes("64MB") == nil)
    #expect(YAMLScalar.sizeBytes("64") == nil)
    #expect(YAMLScalar.sizeBytes("1.5MiB") == nil)
    #expect(YAMLScalar.sizeBytes("99999999999999999GiB") == nil)
}

@Test func loadReportsUnreadableFile() {
    let path = "/nonexistent-gridlet-dir/gridlet.yaml"
    do {
        _ = try GridletConfig.load(path: path) { _ in true }
        Issue.record("expected an error")
    } catch {
        #expect(error.line == 0)
        #expect(error.path == "")
        #expect(error.file == path)
        #expect(error.message.contains("cannot read \(path)"))
        #expect(error.message.contains("No such file"))
    }
    do {
        _ = try YAMLParser.parseFile("/tmp")
        Issue.record("expected an error")
    } catch {
        #expect(error.line == 0)
        #expect(error.message == "cannot read /tmp: Is a directory")
    }
}

@Test func loadReadsAFile() throws {
    let path = "/tmp/gridlet-config-test-\(getpid()).yaml"
    let text = "site: {id: s1}\nbuses: [{name: lan, kind: tcp, host: h}]\ndevices: [{name: m, bus: lan, profile: p1}]\nmqtt: {host: b}\n"
    guard let f = fopen(path, "wb") else { Issue.record("cannot create \(path)"); return }
    _ = Array(text.utf8).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
    defer { unlink(path) }
    let c = try GridletConfig.load(path: path) { $0 == "p1" }
    #expect(c.site.id == "s1")
    #expect(c.mqtt.clientID == "gridlet-s1")
    do {
        _ = try GridletConfig.load(path: path) { _ in false }
        Issue.record("expected an error")
    } catch {
        #expect(error.file == path)
        #expect(error.path == "devices[0].profile")
        #expect(error.line == 3)
        #expect(error.description.hasPrefix("\(path):3: devices[0].profile: unknown profile"))
    }
}

/// The YAML examples in docs/configuration.md that are whole configurations must be valid.
@Test func documentationExamplesAreValid() throws {
    var dir = "\(#filePath)"
    for _ in 0..<3 { dir = String(dir[..<(dir.lastIndex(of: "/") ?? dir.startIndex)]) }
    let text = try YAMLParser.readTextFile("\(dir)/docs/configuration.md")
    var blocks: [String] = []
    var current: [Substring]?
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if current == nil, line == "```yaml" { current = [] }
        else if current != nil, line == "```" { blocks.append(current!.joined(separator: "\n")); current = nil }
        else if current != nil { current!.append(line) }
    }
    let configs = blocks.filter { $0.hasPrefix("site:") }
    #expect(configs.count == 2)
    for b in configs {
        let c = try GridletConfig.parse(text: b, file: "docs") { knownProfiles.contains($0) }
        #expect(c.site.id == "site-001")
    }
}
