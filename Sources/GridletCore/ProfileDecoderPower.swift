/// The `power:` and `layout:` sections of a device profile (bidirectional devices).
///
/// ```yaml
/// power:
///   setpoint: { address: 260, type: int16 }          # signed W; also scale, scale_factor (sunssf register)
///   sign: import_positive                             # or export_positive (SunSpec: + = discharge)
///   reversion_timeout: { address: 88 }                # seconds: the device's own failsafe
///   reversion_setpoint: { address: 40303, type: int32, scale_factor: 40332 }   # optional
///   setup:                                            # written once, in order, before the first setpoint
///     - { address: 81, value: 1 }
///   refresh_fraction: 0.25
/// layout: { 40000: 0x5375, 40001: 0x6E53 }            # fixed registers the device (and the simulator) serves
/// ```
extension DeviceProfile {
    static func decodePower(_ m: inout YAMLMap, kind: DeviceKind) throws(YAMLError) -> BidirectionalControl? {
        guard var p = try m.map("power") else { return nil }
        if kind != .charger { throw m.error("power", "only charger profiles (role: charger devices) have a power section") }
        guard let setpoint = try p.register("setpoint") else { throw p.missing("setpoint") }
        if setpoint.type == .uint16 || setpoint.type == .uint32 || setpoint.type == .uint64 {
            throw p.error("setpoint", "a signed setpoint needs a signed type (int16, int32, float32 or float64), got \(setpoint.type.rawValue)")
        }
        guard let signText = try p.string("sign") else { throw p.missing("sign") }
        guard let sign = PowerSign(rawValue: signText) else {
            throw p.error("sign", "expected import_positive (+ = charge) or export_positive (+ = discharge), got '\(signText)'")
        }
        let timeout = try p.register("reversion_timeout")
        let reversion = try p.register("reversion_setpoint")
        var setup: [SetupWrite] = []
        if let items = try p.sequence("setup") {
            for (i, item) in items.enumerated() {
                var w = try YAMLMap(item, path: "\(p.childPath("setup"))[\(i)]", file: p.file)
                let reg = try w.registerBody()
                guard let value = try w.double("value") else { throw w.missing("value") }
                try w.finish()
                setup.append(SetupWrite(register: reg, value: value))
            }
        }
        let fraction = try p.double("refresh_fraction", in: 0.05...0.9)
        try p.finish()
        return BidirectionalControl(setpoint: setpoint, sign: sign, reversionTimeout: timeout, reversionSetpoint: reversion,
                                    setup: setup, refreshFraction: fraction)
    }

    static func decodeLayout(_ m: inout YAMLMap) throws(YAMLError) -> [Int: UInt16] {
        guard let n = m.node("layout") else { return [:] }
        guard case let .mapping(pairs) = n.value else {
            throw m.error("layout", "expected a mapping of register addresses to values ({ 40000: 0x5375 })")
        }
        var out: [Int: UInt16] = [:]
        for pair in pairs {
            let path = "\(m.childPath("layout")).\(pair.key)"
            guard let a = YAMLScalar.int(pair.key), (0...65535).contains(a) else {
                throw YAMLError(path: path, line: pair.keyLine, message: "expected a register address 0...65535", file: m.file)
            }
            guard case let .scalar(s, false) = pair.value.value, let v = YAMLScalar.int(s), (-32768...65535).contains(v) else {
                throw YAMLError(path: path, line: pair.value.line, message: "expected a register value -32768...65535", file: m.file)
            }
            out[a] = v < 0 ? UInt16(bitPattern: Int16(v)) : UInt16(v)
        }
        return out
    }
}
