/// Why a diagnostics command (`read`, `modbus`, `scan`, `simulate`) could not do what was asked.
/// The layer decides which kind of failure it is because only it knows whether the request or
/// the bus was at fault; the command line turns `isUsage` into exit 2 (fix the command or the
/// configuration) and anything else into exit 1 (the bus, the device or the daemon failed).
public struct DiagnosticsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public var isUsage: Bool
    public init(_ description: String, isUsage: Bool = false) {
        self.description = description
        self.isUsage = isUsage
    }
}
