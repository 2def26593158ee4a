/// SunSpec meters (models 201-204 int16 + scale factors, 211-214 float32).
///
/// Layout (sunspec/models json/model_1.json, model_203.json; pysunspec2 client.py):
/// a device has the marker "SunS" (0x5375 0x6E53) at a base address (40000, 0 or 50000, tried
/// in that order); models follow at base+2 as `ID, L, L registers`; the next model starts at
/// `address + L + 2`; ID 0xFFFF ends the list. Model 1 (common, L = 66) comes first.
///
/// Discovery itself talks to the bus (GridletModbus `SunSpecDiscovery`); this type holds the pure
/// parts: the point tables and `resolve`, which turns a profile with SunSpec point IDs into one
/// with absolute addresses for the model found.
public enum SunSpec {
    public static let marker: [UInt16] = [0x5375, 0x6E53]   // "SunS"
    public static let endID: UInt16 = 0xFFFF
    public static let commonModelID = 1
    public static let commonModelLength = 66
    public static let intMeterModels = 201...204
    public static let floatMeterModels = 211...214
    public static var meterModels: [Int] { Array(intMeterModels) + Array(floatMeterModels) }

    /// Model lengths (L) of the meter models.
    public static func length(ofModel id: Int) -> Int? {
        if intMeterModels.contains(id) { return 105 }
        if floatMeterModels.contains(id) { return 124 }
        return nil
    }

    /// Offsets from the model's ID register for the int16 models 201-204: (offset, type, scale factor offset).
    static let intPoints: [String: (Int, RegisterType, Int)] = [
        "A": (2, .int16, 6), "AphA": (3, .int16, 6), "AphB": (4, .int16, 6), "AphC": (5, .int16, 6),
        "PhV": (7, .int16, 15), "PhVphA": (8, .int16, 15), "PhVphB": (9, .int16, 15), "PhVphC": (10, .int16, 15),
        "Hz": (16, .int16, 17),
        "W": (18, .int16, 22), "WphA": (19, .int16, 22), "WphB": (20, .int16, 22), "WphC": (21, .int16, 22),
        "PF": (33, .int16, 37),
        // acc32: unsigned 32-bit accumulators, 0 = not implemented.
        "TotWhExp": (38, .uint32, 54), "TotWhImp": (46, .uint32, 54),
    ]

    /// Offsets for the float32 models 211-214 (no scale factors).
    static let floatPoints: [String: Int] = [
        "A": 2, "AphA": 4, "AphB": 6, "AphC": 8,
        "PhV": 10, "PhVphA": 12, "PhVphB": 14, "PhVphC": 16,
        "Hz": 26, "W": 28, "WphA": 30, "WphB": 32, "WphC": 34,
        "PF": 52, "TotWhExp": 60, "TotWhImp": 68,
    ]

    public static var knownPoints: [String] { intPoints.keys.sorted() }
    public static func isKnownPoint(_ id: String) -> Bool { intPoints[id] != nil }

    /// Scale factor offsets used by the int models, for the simulator's layout.
    public static let scaleFactorOffsets: [Int] = [6, 15, 17, 22, 37, 54]

    /// The profile with absolute addresses for meter model `model` whose ID register is at
    /// `modelAddress`. nil when `model` is not a meter model.
    public static func resolve(_ profile: DeviceProfile, model: Int, modelAddress: Int) -> DeviceProfile? {
        guard length(ofModel: model) != nil else { return nil }
        let isFloat = floatMeterModels.contains(model)
        var out = profile
        out.points = profile.points.compactMap { p in
            guard let id = p.sunspecID else { return p }
            var q = p
            q.table = .holding
            q.wordOrder = .hiFirst
            q.notImplementedSentinels = true
            if isFloat {
                guard let off = floatPoints[id] else { return nil }
                q.address = modelAddress + off
                q.type = .float32
                q.scaleFactorAddress = nil
            } else {
                guard let (off, type, sf) = intPoints[id] else { return nil }
                q.address = modelAddress + off
                q.type = type
                q.scaleFactorAddress = modelAddress + sf
            }
            return q
        }
        out.sunspec = nil
        return out
    }
}

/// Decodes and encodes one profile point, including SunSpec scale factors and sentinels.
/// Shared by the reader and the simulator so both agree bit for bit.
public enum PointCodec {
    /// True when `regs` (the point's registers) hold SunSpec's "not implemented" value for `type`.
    public static func isNotImplemented(_ regs: ArraySlice<UInt16>, type: RegisterType, order: WordOrder) -> Bool {
        guard regs.count >= type.registerCount else { return true }
        let s = regs.startIndex
        let words = (0..<type.registerCount).map { regs[s + (order == .hiFirst ? $0 : type.registerCount - 1 - $0)] }
        switch type {
        case .int16: return words[0] == 0x8000
        case .uint16: return words[0] == 0xFFFF
        case .int32: return words[0] == 0x8000 && words[1] == 0
        case .uint32: return words[0] == 0 && words[1] == 0          // acc32
        case .uint64: return words.allSatisfy { $0 == 0 }            // acc64
        case .float32, .float64: return false                          // NaN: RegisterCodec returns nil anyway
        }
    }

    /// 10^sf for a SunSpec scale factor (-10...10), nil when not implemented or out of range.
    public static func powerOfTen(_ sfRegister: UInt16) -> (multiply: Double, divide: Double)? {
        if sfRegister == 0x8000 { return nil }
        let sf = Int(Int16(bitPattern: sfRegister))
        guard (-10...10).contains(sf) else { return nil }
        var p = 1.0
        for _ in 0..<abs(sf) { p *= 10 }
        return sf >= 0 ? (p, 1) : (1, p)
    }

    /// Decodes a point; `sf` is the scale factor register when the point has one.
    /// nil for NaN/infinite floats, SunSpec sentinels and unimplemented scale factors.
    public static func decode(_ p: ProfilePoint, _ regs: ArraySlice<UInt16>, sf: UInt16?) -> Double? {
        decode(Layout(p), regs, sf: sf)
    }

    /// What decoding a point needs of it, without its names (no reference counting per value).
    public struct Layout: Sendable, Equatable {
        public var type: RegisterType
        public var wordOrder: WordOrder
        public var scale: Double
        public var hasScaleFactor: Bool
        public var notImplementedSentinels: Bool
        public init(_ p: ProfilePoint) {
            type = p.type; wordOrder = p.wordOrder; scale = p.scale
            hasScaleFactor = p.scaleFactorAddress != nil; notImplementedSentinels = p.notImplementedSentinels
        }
    }

    /// `decode` for a point described by its `Layout`.
    public static func decode(_ p: Layout, _ regs: ArraySlice<UInt16>, sf: UInt16?) -> Double? {
        if p.notImplementedSentinels && isNotImplemented(regs, type: p.type, order: p.wordOrder) { return nil }
        guard let raw = RegisterCodec.decode(regs, type: p.type, order: p.wordOrder, scale: 1) else { return nil }
        var v = raw
        if p.hasScaleFactor {
            guard let sf, let pw = powerOfTen(sf) else { return nil }
            v = v * pw.multiply / pw.divide
        }
        v *= p.scale
        return v.isFinite ? v : nil
    }

    /// Encodes a physical value for a point (the simulator's side); `sf` as in `decode`.
    public static func encode(_ p: ProfilePoint, _ value: Double, sf: UInt16?) -> [UInt16] {
        var raw = value / p.scale
        if p.scaleFactorAddress != nil, let sf, let pw = powerOfTen(sf) {
            raw = raw * pw.divide / pw.multiply
        }
        return RegisterCodec.encode(raw, type: p.type, order: p.wordOrder, scale: 1)
    }

    /// The SunSpec "not implemented" registers for a point.
    public static func notImplemented(_ p: ProfilePoint) -> [UInt16] {
        switch p.type {
        case .int16: return [0x8000]
        case .uint16: return [0xFFFF]
        case .int32: return RegisterCodec.encode(0, type: .uint32, order: p.wordOrder).enumerated().map { i, _ in
            (p.wordOrder == .hiFirst ? i == 0 : i == 1) ? 0x8000 : 0 }
        case .uint32: return [0, 0]
        case .float32: return [0x7FC0, 0x0000]
        case .float64: return [0x7FF8, 0, 0, 0]
        case .uint64: return [0, 0, 0, 0]
        }
    }
}
