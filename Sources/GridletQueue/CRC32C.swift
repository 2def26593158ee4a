/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
///
/// `CRC32C.checksum(Array("123456789".utf8)) == 0xE3069283`.
public enum CRC32C {
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 {
                c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1
            }
            t[i] = c
        }
        return t
    }()

    /// Continue a running CRC. Start with `state = 0xFFFF_FFFF`, finish with `~state`.
    @inline(__always)
    static func update(_ state: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = state
        table.withUnsafeBufferPointer { t in
            for b in bytes {
                c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
            }
        }
        return c
    }

    /// CRC-32C of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { ~update(0xFFFF_FFFF, $0) }
    }

    /// CRC-32C of `bytes[range]`.
    public static func checksum(_ bytes: [UInt8], range: Range<Int>) -> UInt32 {
        bytes.withUnsafeBytes { ~update(0xFFFF_FFFF, UnsafeRawBufferPointer(rebasing: $0[range])) }
    }
}
