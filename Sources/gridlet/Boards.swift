import ArgumentParser
import GridletCore
import GridletYAML

struct Boards: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the built-in board descriptions, or print one (boards/*.yaml).")
    @Argument(help: "Print this board's YAML (a name, or a path to a board file to validate and print).") var name: String?

    func run() throws {
        if let name {
            do {
                let b = try BoardLibrary.board(name)
                if let text = BuiltinBoards.yaml(named: name) { print(text, terminator: "") } else {
                    print("\(b.name): ok (\(b.serial.count) serial port(s), default device \(b.defaultDevice ?? "none"))")
                }
            } catch {
                throw Failure("\(error)", code: 2)
            }
            return
        }
        for n in BoardLibrary.builtinNames {
            do {
                let b = try BoardLibrary.board(n)
                print("\(b.name.padding(24)) \(b.arch.padding(6)) \(b.description)")
            } catch {
                throw Failure("built-in board \(n) is broken: \(error)")
            }
        }
    }
}
