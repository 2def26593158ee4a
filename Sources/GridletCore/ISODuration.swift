/// ISO 8601 durations as OpenADR 3 writes them (`PT1H`, `P1DT12H`, `PT0.5S`, `P9999Y`), in
/// milliseconds. Years count 365 days and months 30 (the OpenADR user guide advises against
/// months); `P9999Y` is OpenADR's "infinity" and comes back as `infinite`.
public enum ISODuration {
    public static let infinite = Int64.max

    /// Milliseconds, `infinite` for `P9999Y`, nil for text that is not a duration or is negative.
    public static func parseMs(_ text: String) -> Int64? {
        var b = Array(text.utf8)[...]
        guard b.first == UInt8(ascii: "P") else { return nil }
        b = b.dropFirst()
        guard !b.isEmpty else { return nil }
        var total: Double = 0
        var inTime = false
        var sawNumber = false
        var years: Int64 = 0
        var order = 0   // designators must come in order
        while !b.isEmpty {
            if b.first == UInt8(ascii: "T") {
                guard !inTime else { return nil }
                inTime = true
                order = 0
                b = b.dropFirst()
                guard !b.isEmpty else { return nil }
                continue
            }
            var digits = ""
            while let c = b.first, (0x30...0x39).contains(c) || c == UInt8(ascii: ".") {
                digits.unicodeScalars.append(Unicode.Scalar(c))
                b = b.dropFirst()
            }
            guard !digits.isEmpty, digits.utf8.count <= 12, let unit = b.first, let v = Double(digits) else { return nil }
            b = b.dropFirst()
            let fractional = digits.contains(".")
            let (rank, ms): (Int, Double)
            switch (inTime, unit) {
            case (false, UInt8(ascii: "Y")): (rank, ms) = (1, 365 * 86_400_000); if !fractional { years = Int64(v) }
            case (false, UInt8(ascii: "M")): (rank, ms) = (2, 30 * 86_400_000)
            case (false, UInt8(ascii: "W")): (rank, ms) = (3, 7 * 86_400_000)
            case (false, UInt8(ascii: "D")): (rank, ms) = (4, 86_400_000)
            case (true, UInt8(ascii: "H")): (rank, ms) = (1, 3_600_000)
            case (true, UInt8(ascii: "M")): (rank, ms) = (2, 60_000)
            case (true, UInt8(ascii: "S")): (rank, ms) = (3, 1000)
            default: return nil
            }
            // Only seconds may carry a fraction; each designator at most once, in order.
            guard rank > order, !fractional || (inTime && unit == UInt8(ascii: "S")) else { return nil }
            order = rank
            total += v * ms
            sawNumber = true
        }
        guard sawNumber else { return nil }
        if years >= 9999 { return infinite }
        guard total < 9e15 else { return infinite }
        return Int64(total.rounded())
    }
}
