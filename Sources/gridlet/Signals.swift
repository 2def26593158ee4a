import Glibc
import Synchronization

let simulatorStopFlag = Atomic<Bool>(false)

func simulatorStop() -> Bool { simulatorStopFlag.load(ordering: .relaxed) }

func installSimulatorSignals() {
    signal(SIGTERM, onSimulatorSignal)
    signal(SIGINT, onSimulatorSignal)
}

private let onSimulatorSignal: @convention(c) (Int32) -> Void = { _ in
    simulatorStopFlag.store(true, ordering: .relaxed)
}

/// Writes to standard error without touching the C `stderr` global (not concurrency-safe in Swift 6).
func printError(_ text: String) {
    var bytes = Array((text.hasSuffix("\n") ? text : text + "\n").utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes = bytes.dropFirst(n)
    }
}
