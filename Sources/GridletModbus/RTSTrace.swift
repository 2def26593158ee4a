import CGridletSys

/// Test support for user-space RS-485 direction control. A pseudo-terminal has no RTS line,
/// so tests switch the RTS setter into a recording mode: the ioctls are skipped, the line
/// probe succeeds, and every RTS transition libmodbus asks for is recorded with its
/// CLOCK_MONOTONIC time. Never enabled by the agent.
public enum RTSTrace {
    public struct Transition: Sendable, Equatable {
        public let ns: Int64
        public let on: Bool
    }

    public static func enable() { gridlet_rts_test_mode(1) }
    public static func disable() { gridlet_rts_test_mode(0) }

    /// The transitions recorded since the last call (then cleared).
    public static func take() -> [Transition] {
        var ns = [Int64](repeating: 0, count: 256)
        var on = [Int32](repeating: 0, count: 256)
        let n = ns.withUnsafeMutableBufferPointer { nb in
            on.withUnsafeMutableBufferPointer { ob in
                Int(gridlet_rts_trace_read(nb.baseAddress, ob.baseAddress, 256))
            }
        }
        return (0..<n).map { Transition(ns: ns[$0], on: on[$0] != 0) }
    }
}
