import GridletAgent
import GridletCLI
import GridletCore
import GridletYAML

struct Boards {
    static let command = Command("boards", abstract: "List the built-in board descriptions, or print one (boards/*.yaml).", args: [
        .positional("name", "Print this board's YAML (a name, or a path to a board file to validate and print)."),
        .flag("json", "Print JSON (the list, or the board's serial ports and defaults)."),
    ]) { try Boards($0).run() }
    let name: String?, json: Bool
    init(_ p: Parsed) { name = p.optionalString("name"); json = p.flag("json") }

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
