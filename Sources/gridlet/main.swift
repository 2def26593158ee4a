import Glibc
import GridletAgent
import GridletCLI

CodePages.trim()

// Exit codes (SPEC §5): 0 ok (help and --version too), 1 failure, 2 usage or configuration error.
let parser = CommandLineParser(root: gridletCommand, version: gridletVersion)
switch parser.parse(Array(CommandLine.arguments.dropFirst())) {
case let .help(path):
    print(parser.helpText(path))
case .version:
    print(gridletVersion)
case let .usageError(text):
    printError(text)
    exit(2)
case let .run(path, parsed):
    do {
        try path.last!.run!(parsed)
    } catch let failure as Failure {
        if !failure.description.isEmpty { printError("gridlet: \(failure.description)") }
        exit(failure.code)
    } catch let refused as DiagnosticsError {
        printError("gridlet: \(refused.description)")
        exit(refused.isUsage ? 2 : 1)
    } catch {
        printError("gridlet: \(error)")
        exit(1)
    }
}
