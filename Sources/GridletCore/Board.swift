/// A board description (`boards/<name>.yaml`, docs/boards.md): serial ports, RS-485 direction
/// control, LEDs, recommended queue settings for the board's storage, and notes. A board named
/// by `board:` in the configuration or `gridlet run --board` supplies defaults that the
/// configuration file overrides key by key (see `BoardDefaults` in GridletYAML).
public struct Board: Sendable, Equatable {
    /// How the RS-485 transceiver's driver enable (DE/RE) is switched.
    public enum Direction: String, Sendable, Equatable, CaseIterable {
        /// The UART's RTS line drives DE/RE; the kernel's RS-485 mode (TIOCSRS485) toggles it: `rs485: true`.
        case rts
        /// A GPIO drives DE/RE, switched by the kernel's RS-485 mode (rts-gpios in the device tree): `rs485: true`.
        case gpio
        /// The vendor kernel enables RS-485 mode at boot; `rs485: true` only re-asserts it.
        case kernel
        /// The transceiver or USB adapter switches by itself: `rs485: false`.
        case auto
        /// Not an RS-485 port (RS-232, console): `rs485: false`.
        case none
    }

    public struct SerialPort: Sendable, Equatable {
        public var device: String
        public var use: String
        public var rs485: Bool
        public var direction: Direction
    }

    public struct LED: Sendable, Equatable {
        public var name: String
        public var path: String
        public var use: String
    }

    public struct QueueDefaults: Sendable, Equatable {
        public var maxBytes: Int?
        public var sync: QueueSync?
        public var syncIntervalMs: Int64?
    }

    public var name: String
    public var description: String
    /// Debian architecture of the package to install (arm64, armhf, amd64).
    public var arch: String
    public var serial: [SerialPort]
    public var leds: [LED]
    /// Device used by rtu buses that do not name one.
    public var defaultDevice: String?
    public var queue: QueueDefaults
    public var storage: String
    public var notes: String

    public static let archs = ["arm64", "armhf", "amd64"]

    /// The port entry for a device path, if the board lists it.
    public func port(_ device: String) -> SerialPort? { serial.first { $0.device == device } }

    /// Decodes and validates a board document. Unknown keys are errors.
    public static func decode(_ root: YAMLNode, file: String? = nil) throws(YAMLError) -> Board {
        var top = try YAMLMap(root, path: "", file: file)
        let name = try top.requiredString("name")
        if name.isEmpty || !name.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_" }) {
            throw top.error("name", "expected lower-case letters, digits, '-' and '_', got '\(name)'")
        }
        let description = try top.requiredString("description")
        let arch = try top.requiredString("arch")
        guard archs.contains(arch) else { throw top.error("arch", "must be one of \(archs.joined(separator: ", ")), got '\(arch)'") }
        guard let serialNodes = try top.sequence("serial"), !serialNodes.isEmpty else {
            throw top.has("serial") ? top.error("serial", "list at least one serial port") : top.missing("serial")
        }
        var serial: [SerialPort] = []
        for (i, n) in serialNodes.enumerated() {
            var m = try YAMLMap(n, path: "serial[\(i)]", file: file)
            let device = try m.requiredString("device")
            guard device.hasPrefix("/dev/") else { throw m.error("device", "expected a /dev path, got '\(device)'") }
            if serial.contains(where: { $0.device == device }) { throw m.error("device", "\(device) is listed twice") }
            let use = try m.requiredString("use")
            guard let rs485 = try m.bool("rs485") else { throw m.missing("rs485") }
            let d = try m.requiredString("direction")
            guard let direction = Direction(rawValue: d) else {
                throw m.error("direction", "must be one of \(Direction.allCases.map(\.rawValue).joined(separator: ", ")), got '\(d)'")
            }
            let needsFlag = direction == .rts || direction == .gpio || direction == .kernel
            if rs485 != needsFlag {
                throw m.error("rs485", "direction \(d) goes with rs485: \(needsFlag)")
            }
            try m.finish()
            serial.append(SerialPort(device: device, use: use, rs485: rs485, direction: direction))
        }
        var leds: [LED] = []
        for (i, n) in (try top.sequence("leds") ?? []).enumerated() {
            var m = try YAMLMap(n, path: "leds[\(i)]", file: file)
            let led = LED(name: try m.requiredString("name"), path: try m.requiredString("path"), use: try m.requiredString("use"))
            guard led.path.hasPrefix("/sys/class/leds/") else { throw m.error("path", "expected a /sys/class/leds/ path, got '\(led.path)'") }
            try m.finish()
            leds.append(led)
        }
        var defaultDevice: String?
        var queue = QueueDefaults()
        if var d = try top.map("defaults") {
            if let dev = try d.string("device") {
                guard serial.contains(where: { $0.device == dev }) else {
                    throw d.error("device", "must be one of the serial devices listed (\(serial.map(\.device).joined(separator: ", "))), got '\(dev)'")
                }
                defaultDevice = dev
            }
            if var q = try d.map("queue") {
                queue.maxBytes = try q.sizeBytes("max_bytes", min: 64 << 10)
                if let s = try q.string("sync") {
                    guard let v = QueueSync(rawValue: s) else { throw q.error("sync", "must be one of always, batch, none, got '\(s)'") }
                    queue.sync = v
                }
                queue.syncIntervalMs = try q.durationMs("sync_interval", min: 1, max: 60_000)
                try q.finish()
            }
            try d.finish()
        }
        let storage = try top.requiredString("storage")
        let notes = try top.requiredString("notes")
        try top.finish()
        return Board(name: name, description: description, arch: arch, serial: serial, leds: leds,
                     defaultDevice: defaultDevice, queue: queue, storage: storage, notes: notes)
    }
}
