import Glibc
import GridletCore
import GridletYAML
import Testing

/// boards/ in the source tree (two levels above this file's directory).
let boardsDirectory: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)   // Tests/GridletYAMLTests/BoardTests.swift
    return parts.joined(separator: "/") + "/boards"
}()

func boardFiles() -> [String] {
    guard let d = opendir(boardsDirectory) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasSuffix(".yaml") { names.append(String(name.dropLast(5))) }
    }
    return names.sorted()
}

@Test func everyBoardFileIsEmbeddedVerbatim() throws {
    let files = boardFiles()
    #expect(files == ["beaglebone-black", "generic-x86_64", "raspberry-pi-4", "raspberry-pi-5", "revolution-pi-connect"])
    #expect(BuiltinBoards.names.sorted() == files, "run scripts/embed-boards after adding or removing a board file")
    for name in files {
        let text = try YAMLParser.readTextFile("\(boardsDirectory)/\(name).yaml")
        #expect(BuiltinBoards.yaml(named: name) == text, "boards/\(name).yaml differs from the embedded copy: run scripts/embed-boards")
    }
}

@Test(arguments: ["beaglebone-black", "generic-x86_64", "raspberry-pi-4", "raspberry-pi-5", "revolution-pi-connect"])
func everyBoardFileLoads(_ name: String) throws {
    let b = try BoardLibrary.board("\(boardsDirectory)/\(name).yaml")
    #expect(b.name == name)
    #expect(!b.serial.isEmpty)
    let dev = try #require(b.defaultDevice)
    #expect(b.port(dev) != nil)
    #expect(b.queue.maxBytes != nil && b.queue.sync != nil)
    #expect(!b.notes.isEmpty && !b.storage.isEmpty)
    // The built-in copy decodes to the same board.
    #expect(try BoardLibrary.board(name) == b)
}

let boardConfig = """
board: raspberry-pi-4
site: { id: s1 }
buses:
  - { name: hat, kind: rtu, baud: 9600 }
  - { name: usb, kind: rtu, device: /dev/ttyUSB0 }
  - { name: explicit, kind: rtu, device: /dev/ttyAMA0, rs485: false }
  - { name: lan, kind: tcp, host: 10.0.0.2 }
devices:
  - { name: m, bus: hat, profile: eastron-sdm630 }
mqtt: { host: broker }
"""

func decodeWithBoard(_ text: String, board: String? = nil) throws(YAMLError) -> GridletConfig {
    let root = try YAMLParser.parse(text, file: "t.yaml")
    let name = board ?? BoardDefaults.boardName(in: root)
    let merged = try name.map { n throws(YAMLError) in BoardDefaults.apply(try BoardLibrary.board(n), to: root) } ?? root
    return try GridletConfig.decode(merged, file: "t.yaml", profileExists: profileExists)
}

@Test func boardDefaultsFillWhatTheFileOmits() throws {
    let c = try decodeWithBoard(boardConfig)
    #expect(c.board == "raspberry-pi-4")
    #expect(c.buses[0].kind == .rtu(device: "/dev/ttyAMA0", baud: 9600, parity: .none, dataBits: 8, stopBits: 1, rs485: true))
    // A device the board lists gets the board's rs485 flag for that port.
    #expect(c.buses[1].kind == .rtu(device: "/dev/ttyUSB0", baud: 9600, parity: .none, dataBits: 8, stopBits: 1, rs485: false))
    // Explicit keys win.
    #expect(c.buses[2].kind == .rtu(device: "/dev/ttyAMA0", baud: 9600, parity: .none, dataBits: 8, stopBits: 1, rs485: false))
    #expect(c.buses[3].kind == .tcp(host: "10.0.0.2", port: 502))
    #expect(c.queue == QueueConfig(maxBytes: 64 << 20, sync: .batch, syncIntervalMs: 250, replayRate: 100))
}

@Test func explicitQueueKeysWinOverTheBoard() throws {
    let c = try decodeWithBoard(boardConfig + "\nqueue: { max_bytes: 1MiB, replay_rate: 7 }\n", board: "beaglebone-black")
    // --board overrides the file's board: key; the file's queue keys override the board's.
    #expect(c.queue == QueueConfig(maxBytes: 1 << 20, sync: .batch, syncIntervalMs: 500, replayRate: 7))
    #expect(c.buses[0].kind == .rtu(device: "/dev/ttyS1", baud: 9600, parity: .none, dataBits: 8, stopBits: 1, rs485: true))
}

@Test func withoutABoardAnRtuBusNeedsADevice() {
    let text = boardConfig.replacingBoardLine()
    #expect(throws: YAMLError.self) { try decodeWithBoard(text) }
}

@Test func unknownBoardIsAnError() {
    do {
        _ = try BoardLibrary.board("no-such-board")
        Issue.record("expected an error")
    } catch {
        #expect(error.message.contains("unknown board 'no-such-board'"))
        #expect(error.message.contains("raspberry-pi-4"))
    }
}

@Test(arguments: [
    ("extra: 1\n", "extra", "unknown key"),
    ("serial:\n  - { device: /dev/ttyS0, use: x, rs485: true, direction: auto }\n", "serial[0].rs485", "direction auto goes with rs485: false"),
    ("serial:\n  - { device: /dev/ttyS0, use: x, rs485: false, direction: sideways }\n", "serial[0].direction", "must be one of"),
    ("defaults: { device: /dev/ttyS9 }\n", "defaults.device", "must be one of the serial devices"),
    ("defaults: { queue: { sync: sometimes } }\n", "defaults.queue.sync", "must be one of"),
])
func invalidBoardIsRejected(_ c: (String, String, String)) {
    var text = "name: t\ndescription: d\narch: arm64\nstorage: s\nnotes: n\n"
    if !c.0.hasPrefix("serial") { text += "serial:\n  - { device: /dev/ttyS0, use: x, rs485: false, direction: none }\n" }
    text += c.0
    do {
        _ = try BoardLibrary.parse(text, file: "b.yaml")
        Issue.record("expected an error for \(c.0)")
    } catch {
        #expect(error.path == c.1)
        #expect(error.message.contains(c.2), "\(error)")
    }
}

@Test func logLevelFromTheConfig() throws {
    let base = "site: { id: s }\nbuses: [ { name: b, kind: tcp, host: h } ]\ndevices: [ { name: m, bus: b, profile: eastron-sdm630 } ]\nmqtt: { host: h }\n"
    #expect(try parseConfig(base).log.level == .info)
    #expect(try parseConfig(base + "log: { level: debug }\n").log.level == .debug)
    #expect(try parseConfig(base + "log: { level: warning }\n").log.level == .warning)
    do {
        _ = try parseConfig(base + "log: { level: loud }\n")
        Issue.record("expected an error")
    } catch {
        #expect(error.path == "log.level" && error.line == 5)
        #expect(error.message.contains("error, warning, notice, info, debug"))
    }
    #expect(throws: YAMLError.self) { try parseConfig(base + "log: { lvl: debug }\n") }
}

extension String {
    func replacingBoardLine() -> String {
        split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("board:") }.joined(separator: "\n")
    }
}
