import ArgumentParser
import CGridletSys
import Glibc
import GridletAgent

// Keep only the code in use resident: a static Swift binary otherwise has most of its ~10 MB of
// text mapped through read-ahead and fault-around (measured: 8 MB of a 14 MB RSS).
if getenv("GRIDLET_NO_TRIM") == nil { _ = gridlet_trim_code_pages() }

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
