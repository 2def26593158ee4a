/// Encodes and decodes physical values to and from Modbus registers.
///
/// Every multi-register layout is handled here (libmodbus 3.1.6's float helpers are wrong).
/// Bytes inside a register are always big-endian; `WordOrder` only decides whether the most
/// significant word comes first (`hi_first`, ABCD) or last (`lo_first`, CDAB).
/// `physical value = raw * scale`.
public enum RegisterCodec {
    /// Decodes `type.registerCount` registers from the start of `regs`.
    /// Returns nil when there are too few registers or a float is NaN or infinite.
    public static func decode(_ regs: ArraySlice<UInt16>, type: RegisterType, order: WordOrder, scale: Double = 1) -> Double? {
        let n = type.registerCount
        guard regs.count >= n else { return nil }
        var bits: UInt64 = 0
        let start = regs.startIndex
        for i in 0..<n {
            // Index of the i-th most significant word.
            let idx = order == .hiFirst ? start + i : start + (n - 1 - i)
            bits = (bits << 16) | UInt64(regs[idx])
        }
        let raw: Double
        switch type {
        case .uint16: raw = Double(UInt16(truncatingIfNeeded: bits))
        case .int16: raw = Double(Int16(bitPattern: UInt16(truncatingIfNeeded: bits)))
        case .uint32: raw = Double(UInt32(truncatingIfNeeded: bits))
        case .int32: raw = Double(Int32(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .float32:
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
            guard f.isFinite else { return nil }
            raw = Double(f)
        case .float64:
            let d = Double(bitPattern: bits)
            guard d.isFinite else { return nil }
            raw = d
        case .uint64: raw = Double(bits)
        }
        let v = raw * scale
        return v.isFinite ? v : nil
    }

    public static func decode(_ regs: [UInt16], type: RegisterType, order: WordOrder, scale: Double = 1) -> Double? {
        decode(regs[...], type: type, order: order, scale: scale)
    }

    /// Encodes `value / scale` into `type.registerCount` registers. Integer types are rounded to
    /// the nearest integer and clamped to the type's range (NaN encodes as 0).
    public static func encode(_ value: Double, type: RegisterType, order: WordOrder, scale: Double = 1) -> [UInt16] {
        let raw = scale == 0 ? value : value / scale
        let bits: UInt64
        switch type {
        case .uint16: bits = UInt64(UInt16(clampedInteger(raw, min: 0, max: Double(UInt16.max))))
        case .int16: bits = UInt64(UInt16(bitPattern: Int16(clampedInteger(raw, min: Double(Int16.min), max: Double(Int16.max)))))
        case .uint32: bits = UInt64(UInt32(clampedInteger(raw, min: 0, max: Double(UInt32.max))))
        case .int32: bits = UInt64(UInt32(bitPattern: Int32(clampedInteger(raw, min: Double(Int32.min), max: Double(Int32.max)))))
        case .float32: bits = UInt64(Float(raw).bitPattern)
        case .float64: bits = raw.bitPattern
        case .uint64: bits = UInt64(clampedInteger(raw, min: 0, max: 9_007_199_254_740_992))
        }
        let n = type.registerCount
        var words = [UInt16](repeating: 0, count: n)
        for i in 0..<n {
            // i-th most significant word
            let w = UInt16(truncatingIfNeeded: bits >> UInt64(16 * (n - 1 - i)))
            words[order == .hiFirst ? i : n - 1 - i] = w
        }
        return words
    }

    private static func clampedInteger(_ x: Double, min lo: Double, max hi: Double) -> Int64 {
        guard !x.isNaN else { return 0 }
        let r = x.rounded()
        if r <= lo { return Int64(lo) }
        if r >= hi { return Int64(hi) }
        return Int64(r)
    }
}
