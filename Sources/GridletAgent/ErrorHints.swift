import Glibc

/// What to do about a failure, for messages a user meets (every error names the next step).
extension Agent {
    /// After "cannot open the queue: ...", by the errno that stopped it.
    static func queueOpenHint(_ e: Int32) -> String {
        switch e {
        case EWOULDBLOCK:
            return "another gridlet runs with this state_dir (systemctl status gridlet); stop it, or give this one its own site.state_dir"
        case EACCES, EPERM, EROFS:
            return "let the gridlet user write site.state_dir, or set it to a writable directory"
        case ENOSPC:
            return "free space under site.state_dir, or lower queue.max_bytes"
        default:
            return "check site.state_dir (path, permissions, free space: df -h)"
        }
    }
}

/// The next step after a Modbus failure as the diagnostics print it (`gridlet read`, `gridlet
/// modbus`), by what the message says; nil when the message names nothing known.
public enum ModbusHint {
    public static func forMessage(_ text: String) -> String? {
        if text.contains("(ETIMEDOUT)") || text.contains("no answer within") {
            return "check the wiring (A/B swapped?), the unit id, baud and parity, and the RS-485 direction (docs/operations.md, Device not answering)"
        }
        if text.contains("(ECONNREFUSED)") || text.contains("connection refused") {
            return "check the device's IP address and port, and that nothing else holds its only Modbus TCP connection"
        }
        if text.contains("exception 2") { return "the register is not there: check the profile and the address (and whether the device numbers registers from 1)" }
        if text.contains("exception 1") { return "the device does not support this function: check the profile (input vs holding registers)" }
        if text.contains("(EHOSTUNREACH)") || text.contains("(ENETUNREACH)") { return "the host is not reachable: check the network and the IP address" }
        if text.contains("(EACCES)") || text.contains("Permission denied") { return "let the user read and write the serial device (group dialout)" }
        if text.contains("(ENOENT)") || text.contains("No such file") { return "the serial device does not exist: check the name (ls /dev/serial/by-id/)" }
        return nil
    }

    /// `text; hint` (or `text` alone).
    public static func explained(_ text: String) -> String { forMessage(text).map { "\(text); \($0)" } ?? text }
}
