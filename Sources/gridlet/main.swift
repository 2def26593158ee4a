import ArgumentParser
import Glibc
import GridletAgent

CodePages.trim()

// Map ArgumentParser's exit codes to ours: usage errors exit 2, failures 1.
do {
    var command = try Gridlet.parseAsRoot()
    try command.run()
} catch let failure as Failure {
    printError("gridlet: \(failure.description)")
    exit(failure.code)
} catch let refused as DiagnosticsError {
    printError("gridlet: \(refused.description)")
    exit(refused.isUsage ? 2 : 1)
} catch {
    let code = Gridlet.exitCode(for: error).rawValue
    let message = Gridlet.fullMessage(for: error)
    if code == 0 {
        if !message.isEmpty { print(message) }
        exit(0)
    }
    if !message.isEmpty { printError(message) }
    exit(code == 64 ? 2 : code)
}
