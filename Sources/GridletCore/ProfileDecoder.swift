/// Decodes a device profile document (see BuiltinProfiles for examples).
///
/// ```yaml
/// name: eastron-sdm630
/// kind: meter                # meter | charger
/// vendor: Eastron
/// model: SDM630
/// unit: 1                    # default unit id
/// transport: rtu             # what the real device offers: rtu, tcp or rtu,tcp
/// sources: ["..."]
/// notes: "..."
/// defaults: { table: input, type: float32, word_order: hi_first, verified: false }
/// points:
///   power_w: { address: 0x0034, unit: W }
///   import_wh: { address: 0x0048, scale: 1000, unit: Wh }
/// control:                   # chargers only (required for chargers)
///   charging_current: { address: 5004, type: uint16 }
///   failsafe_current: { address: 2000 }
///   failsafe_timeout: { address: 2002 }
///   alive: { address: 6000, value: 1 }
///   resolution: 1
///   fault: { point: charge_point_state, values: { 8: faulted } }
/// ```
/// Point keys: address (required), table, type, word_order, scale, unit, verified.
/// Control keys also: setpoint_validity_s (the charger drops the setpoint after it), refresh_fraction,
/// failsafe_readback (read the failsafe registers back after writing them),
/// fault (`{ point, nonzero, values, bits }`, see `ChargerFault`).
/// SunSpec profiles have `sunspec: { bases: [40000, 0, 50000], models: [201, ..., 214] }` and
/// points `{ sunspec: W, unit: W }` (SunSpec point ID instead of address; see `SunSpec`).
/// Unknown keys anywhere are errors.
extension DeviceProfile {
    public static func decode(_ node: YAMLNode, file: String?) throws(YAMLError) -> DeviceProfile {
        var m = try YAMLMap(node, path: "", file: file)
        // Sections in document order: an error names the first bad key as before.
        let identity = try decodeIdentity(&m, file: file)
        let sunspec = try decodeSunSpec(&m, file: file)
        let defaults = try decodePointDefaults(&m)
        let points = try decodePoints(&m, defaults: defaults, sunspec: sunspec != nil)
        let control = try decodeControl(&m, kind: identity.kind, points: points)
        let power = try decodePower(&m, kind: identity.kind)
        let layout = try decodeLayout(&m)
        try m.finish()
        var profile = DeviceProfile(name: identity.name, kind: identity.kind, vendor: identity.vendor, model: identity.model,
                                    defaultUnit: identity.unit, transport: identity.transport, notes: identity.notes,
                                    sources: identity.sources, points: points, control: control, sunspec: sunspec)
        profile.power = power
        profile.layout = layout
        return profile
    }

    /// name, kind, vendor, model, unit, transport, sources, notes.
    private static func decodeIdentity(_ m: inout YAMLMap, file: String?) throws(YAMLError) -> ProfileIdentity {
        let name = try m.requiredString("name")
        if name.isEmpty { throw m.error("name", "must not be empty") }
        let kindText = try m.requiredString("kind")
        guard let kind = DeviceKind(rawValue: kindText) else {
            throw m.error("kind", "expected meter or charger, got '\(kindText)'")
        }
        let vendor = try m.string("vendor") ?? ""
        let model = try m.string("model") ?? ""
        let unit = try m.int("unit", in: 0...255) ?? 1
        let transport = try m.string("transport") ?? "rtu"
        let allowedTransports: Set<String> = ["rtu", "tcp"]
        let parts = transport.split(separator: ",").map { String($0).trimmingSpaces() }
        if parts.isEmpty || !parts.allSatisfy(allowedTransports.contains) {
            throw m.error("transport", "expected rtu, tcp or rtu,tcp, got '\(transport)'")
        }
        var sources: [String] = []
        if let items = try m.sequence("sources") {
            for (i, item) in items.enumerated() {
                guard case let .scalar(s, _) = item.value else {
                    throw YAMLError(path: "\(m.childPath("sources"))[\(i)]", line: item.line, message: "expected a string", file: file)
                }
                sources.append(s)
            }
        }
        let notes = try m.string("notes") ?? ""
        return ProfileIdentity(name: name, kind: kind, vendor: vendor, model: model, unit: unit, transport: transport,
                               sources: sources, notes: notes)
    }

    /// `sunspec: { bases, models }`; nil for a profile with register addresses.
    private static func decodeSunSpec(_ m: inout YAMLMap, file: String?) throws(YAMLError) -> SunSpecSettings? {
        guard var ss = try m.map("sunspec") else { return nil }
        var settings = SunSpecSettings()
        if let items = try ss.sequence("bases") {
            settings.bases = try items.enumerated().map { (i, item) throws(YAMLError) -> Int in
                guard case let .scalar(s, _) = item.value, let v = YAMLScalar.int(s), (0...65533).contains(v) else {
                    throw YAMLError(path: "\(ss.childPath("bases"))[\(i)]", line: item.line, message: "expected a register address", file: file)
                }
                return v
            }
        }
        if let items = try ss.sequence("models") {
            settings.models = try items.enumerated().map { (i, item) throws(YAMLError) -> Int in
                guard case let .scalar(s, _) = item.value, let v = YAMLScalar.int(s), SunSpec.meterModels.contains(v) else {
                    throw YAMLError(path: "\(ss.childPath("models"))[\(i)]", line: item.line,
                                    message: "expected a SunSpec meter model (201-204, 211-214)", file: file)
                }
                return v
            }
        }
        if settings.bases.isEmpty || settings.models.isEmpty { throw ss.error("bases", "bases and models must not be empty") }
        try ss.finish()
        return settings
    }

    /// `defaults:` for the points that do not say otherwise.
    private static func decodePointDefaults(_ m: inout YAMLMap) throws(YAMLError) -> PointDefaults {
        var defaults = PointDefaults()
        if var d = try m.map("defaults") {
            defaults.table = try d.table("table") ?? defaults.table
            defaults.type = try d.registerType("type") ?? defaults.type
            defaults.order = try d.wordOrder("word_order") ?? defaults.order
            defaults.verified = try d.bool("verified") ?? defaults.verified
            try d.finish()
        }
        return defaults
    }

    /// `points:` (required, at least one): register points, or SunSpec IDs in a SunSpec profile.
    private static func decodePoints(_ m: inout YAMLMap, defaults: PointDefaults, sunspec: Bool) throws(YAMLError) -> [ProfilePoint] {
        guard var pm = try m.map("points") else { throw m.missing("points") }
        var points: [ProfilePoint] = []
        for key in pm.keys {
            guard var p = try pm.map(key) else { throw pm.error(key, "expected a mapping with at least an address") }
            if key.isEmpty { throw pm.error(key, "point name must not be empty") }
            if sunspec {
                // SunSpec points name their SunSpec ID; discovery fills in address, type and scale factor.
                guard let id = try p.string("sunspec") else { throw p.missing("sunspec") }
                guard SunSpec.isKnownPoint(id) else {
                    throw p.error("sunspec", "unknown SunSpec meter point '\(id)'; known: \(SunSpec.knownPoints.joined(separator: ", "))")
                }
                let scale = try p.double("scale") ?? 1
                if scale == 0 { throw p.error("scale", "must not be 0") }
                let unitName = try p.string("unit") ?? ""
                let verified = try p.bool("verified") ?? defaults.verified
                try p.finish()
                points.append(ProfilePoint(name: key, address: 0, table: .holding, type: .int16, scale: scale, unit: unitName,
                                           verified: verified, sunspecID: id, notImplementedSentinels: true))
                continue
            }
            let type = try p.registerType("type") ?? defaults.type
            guard let address = try p.int("address", in: 0...(65536 - type.registerCount)) else { throw p.missing("address") }
            let table = try p.table("table") ?? defaults.table
            let order = try p.wordOrder("word_order") ?? defaults.order
            let scale = try p.double("scale") ?? 1
            if scale == 0 { throw p.error("scale", "must not be 0") }
            let unitName = try p.string("unit") ?? ""
            let verified = try p.bool("verified") ?? defaults.verified
            // A SunSpec scale factor register at a fixed address (profiles with `layout:`).
            let sf = try p.int("scale_factor", in: 0...65535)
            try p.finish()
            points.append(ProfilePoint(name: key, address: address, table: table, type: type, wordOrder: order,
                                       scale: scale, unit: unitName, verified: verified, scaleFactorAddress: sf,
                                       notImplementedSentinels: sf != nil))
        }
        try pm.finish()
        if points.isEmpty { throw m.error("points", "a profile needs at least one point") }
        return points
    }

    /// `control:`, required for chargers and refused for meters.
    private static func decodeControl(_ m: inout YAMLMap, kind: DeviceKind, points: [ProfilePoint]) throws(YAMLError) -> ChargerControl? {
        guard var c = try m.map("control") else {
            // A bidirectional device is driven through its `power:` section alone.
            if kind == .charger, !m.has("power") { throw m.missing("control") }
            return nil
        }
        if kind != .charger { throw m.error("control", "only charger profiles have a control section") }
        guard let charging = try c.register("charging_current") else { throw c.missing("charging_current") }
        let failsafeCurrent = try c.register("failsafe_current")
        let failsafeTimeout = try c.register("failsafe_timeout")
        var aliveValue = 1
        var alive: ProfileRegister?
        if var a = try c.map("alive") {
            alive = try a.registerBody()
            aliveValue = try a.int("value", in: 0...65535) ?? 1
            try a.finish()
        }
        let resolution = try c.double("resolution", in: 0.001...100) ?? 1
        let validity = try c.double("setpoint_validity_s", in: 2...86400)
        let fraction = try c.double("refresh_fraction", in: 0.05...0.9)
        let fault = try decodeFault(&c, points: points)
        let readback = try c.bool("failsafe_readback") ?? false
        if readback, failsafeCurrent == nil && failsafeTimeout == nil {
            throw c.error("failsafe_readback", "needs failsafe_current or failsafe_timeout to read back")
        }
        try c.finish()
        var control = ChargerControl(chargingCurrent: charging, failsafeCurrent: failsafeCurrent, failsafeTimeout: failsafeTimeout,
                                     alive: alive, aliveValue: aliveValue, currentResolution: resolution,
                                     setpointValidityS: validity, refreshFraction: fraction, fault: fault)
        control.failsafeReadback = readback
        return control
    }

    /// `control.fault: { point, nonzero, values, bits }`: a point of this profile and which of its
    /// values mean fault (at least one of the three ways).
    private static func decodeFault(_ c: inout YAMLMap, points: [ProfilePoint]) throws(YAMLError) -> ChargerFault? {
        guard var f = try c.map("fault") else { return nil }
        let point = try f.requiredString("point")
        guard points.contains(where: { $0.name == point }) else {
            throw f.error("point", "no point '\(point)' in this profile; name one of: \(points.map(\.name).joined(separator: ", "))")
        }
        let nonzero = try f.bool("nonzero") ?? false
        let values = try f.codeTexts("values", in: -2_147_483_648...4_294_967_295)
        let bits = try f.codeTexts("bits", in: 1...4_294_967_295)
        if !nonzero, values.isEmpty, bits.isEmpty {
            throw YAMLError(path: f.path, line: f.node.line, message: "say which values of '\(point)' mean fault: "
                            + "nonzero: true, values: { 8: faulted } or bits: { 0x0400: relay fault }", file: f.file)
        }
        try f.finish()
        return ChargerFault(point: point, nonzero: nonzero, values: values, bits: bits)
    }
}

/// The profile's top-level descriptive keys, as decoded.
private struct ProfileIdentity {
    var name: String
    var kind: DeviceKind
    var vendor: String
    var model: String
    var unit: Int
    var transport: String
    var sources: [String]
    var notes: String
}

/// `defaults:` of a profile: what a point without its own table, type, word_order or verified gets.
private struct PointDefaults {
    var table = RegisterTable.holding
    var type = RegisterType.uint16
    var order = WordOrder.hiFirst
    var verified = false
}

extension YAMLMap {
    fileprivate mutating func table(_ key: String) throws(YAMLError) -> RegisterTable? {
        guard let s = try string(key) else { return nil }
        guard let t = RegisterTable(rawValue: s) else { throw error(key, "expected holding or input, got '\(s)'") }
        return t
    }

    fileprivate mutating func registerType(_ key: String) throws(YAMLError) -> RegisterType? {
        guard let s = try string(key) else { return nil }
        guard let t = RegisterType(rawValue: s) else {
            throw error(key, "expected one of \(RegisterType.allCases.map(\.rawValue).joined(separator: ", ")), got '\(s)'")
        }
        return t
    }

    fileprivate mutating func wordOrder(_ key: String) throws(YAMLError) -> WordOrder? {
        guard let s = try string(key) else { return nil }
        guard let o = WordOrder(rawValue: s) else { throw error(key, "expected hi_first or lo_first, got '\(s)'") }
        return o
    }

    /// A holding register description `{ address, type, scale }`.
    mutating func register(_ key: String) throws(YAMLError) -> ProfileRegister? {
        guard var r = try map(key) else { return nil }
        let reg = try r.registerBody()
        try r.finish()
        return reg
    }

    /// Integer codes with optional texts: a mapping `{ 8: faulted, 0x0400: "relay fault" }` or a
    /// list `[7, 8]` (no texts). Empty when the key is absent.
    fileprivate mutating func codeTexts(_ key: String, in range: ClosedRange<Int>) throws(YAMLError) -> [Int: String] {
        guard let n = node(key) else { return [:] }
        var entries: [(code: String, text: YAMLNode?, line: Int)] = []
        switch n.value {
        case let .mapping(pairs): entries = pairs.map { ($0.key, $0.value, $0.keyLine) }
        case let .sequence(items):
            for item in items {
                guard case let .scalar(s, false) = item.value else {
                    throw YAMLError(path: childPath(key), line: item.line, message: "expected integer codes", file: file)
                }
                entries.append((s, nil, item.line))
            }
        case .scalar: throw error(key, "expected a mapping of codes to texts ({ 8: faulted }) or a list of codes ([7, 8])")
        }
        var result: [Int: String] = [:]
        for e in entries {
            let path = "\(childPath(key)).\(e.code)"
            guard let code = YAMLScalar.int(e.code), range.contains(code) else {
                throw YAMLError(path: path, line: e.line, message: "expected an integer code in \(range.lowerBound)...\(range.upperBound) (e.g. 8 or 0x0400)", file: file)
            }
            if result[code] != nil { throw YAMLError(path: path, line: e.line, message: "code \(code) is listed twice", file: file) }
            var text = ""
            if let t = e.text, !t.isNull {
                guard case let .scalar(s, _) = t.value else {
                    throw YAMLError(path: path, line: t.line, message: "expected a text for code \(code)", file: file)
                }
                text = s
            }
            result[code] = text
        }
        return result
    }

    mutating func registerBody() throws(YAMLError) -> ProfileRegister {
        let type = try registerType("type") ?? .uint16
        guard let address = try int("address", in: 0...(65536 - type.registerCount)) else { throw missing("address") }
        let scale = try double("scale") ?? 1
        if scale == 0 { throw error("scale", "must not be 0") }
        let sf = try int("scale_factor", in: 0...65535)
        return ProfileRegister(address: address, type: type, scale: scale, scaleFactorAddress: sf)
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
