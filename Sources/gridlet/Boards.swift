import ArgumentParser
import GridletAgent
import GridletCore
import GridletYAML

struct Boards: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the built-in board descriptions, or print one (boards/*.yaml).")
    @Argument(help: "Print this board's YAML (a name, or a path to a board file to validate and print).") var name: String?
    @Flag(name: .long, help: "Print JSON (the list, or the board's serial ports and defaults).") var json = false

    func run() throws {
        if let name {
            do {
                let b = try BoardLibrary.board(name)
                if json { print(Self.json(b).serialized); return }
                if let text = BuiltinBoards.yaml(named: name) { print(text, terminator: "") } else {
                    print("\(b.name): ok (\(b.serial.count) serial port(s), default device \(b.defaultDevice ?? "none"))")
                }
            } catch {
                throw Failure("\(error)", code: 2)
            }
            return
        }
        var rows: [JSONValue] = []
        for n in BoardLibrary.builtinNames {
            do {
                let b = try BoardLibrary.board(n)
                if json { rows.append(.object([("name", .string(b.name)), ("arch", .string(b.arch)), ("description", .string(b.description))])) }
                else { print("\(b.name.padding(24)) \(b.arch.padding(6)) \(b.description)") }
            } catch {
                throw Failure("built-in board \(n) is broken: \(error); this build is faulty: reinstall gridlet, and report it with the output of gridlet --version")
            }
        }
        if json { print(JSONValue.array(rows).serialized) }
    }

    static func json(_ b: Board) -> JSONValue {
        .object([("name", .string(b.name)), ("arch", .string(b.arch)), ("description", .string(b.description)),
                 ("default_device", b.defaultDevice.map { .string($0) } ?? .null),
                 ("serial", .array(b.serial.map { p in
                     .object([("device", .string(p.device)), ("rs485", .bool(p.rs485)), ("direction", .string(p.direction.rawValue))])
                 }))])
    }
}
