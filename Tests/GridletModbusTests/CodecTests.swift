import GridletCore
import Testing

@Suite struct CodecTests {
    @Test func knownVectors() {
        #expect(RegisterCodec.encode(230.0, type: .float32, order: .hiFirst) == [0x4366, 0x0000])
        #expect(RegisterCodec.encode(230.0, type: .float32, order: .loFirst) == [0x0000, 0x4366])
        #expect(RegisterCodec.decode([0x4366, 0x0000], type: .float32, order: .hiFirst) == 230.0)
        #expect(RegisterCodec.decode([0x0000, 0x4366], type: .float32, order: .loFirst) == 230.0)
        // -1.5 = 0xBFC00000
        #expect(RegisterCodec.encode(-1.5, type: .float32, order: .hiFirst) == [0xBFC0, 0x0000])
        // 1.0 as float64 = 0x3FF0000000000000
        #expect(RegisterCodec.encode(1.0, type: .float64, order: .hiFirst) == [0x3FF0, 0, 0, 0])
        #expect(RegisterCodec.encode(1.0, type: .float64, order: .loFirst) == [0, 0, 0, 0x3FF0])
        #expect(RegisterCodec.decode([0x3FF0, 0, 0, 0], type: .float64, order: .hiFirst) == 1.0)
        #expect(RegisterCodec.encode(0x12345678, type: .uint32, order: .hiFirst) == [0x1234, 0x5678])
        #expect(RegisterCodec.encode(0x12345678, type: .uint32, order: .loFirst) == [0x5678, 0x1234])
        #expect(RegisterCodec.decode([0x5678, 0x1234], type: .uint32, order: .loFirst) == Double(0x12345678))
        #expect(RegisterCodec.encode(-2, type: .int32, order: .hiFirst) == [0xFFFF, 0xFFFE])
        #expect(RegisterCodec.encode(-2, type: .int32, order: .loFirst) == [0xFFFE, 0xFFFF])
        #expect(RegisterCodec.decode([0xFFFE, 0xFFFF], type: .int32, order: .loFirst) == -2)
        #expect(RegisterCodec.encode(-1234, type: .int16, order: .hiFirst) == [0xFB2E])
        #expect(RegisterCodec.decode([0xFB2E], type: .int16, order: .hiFirst) == -1234)
        #expect(RegisterCodec.decode([0xFB2E], type: .uint16, order: .hiFirst) == 64302)
    }

    @Test(arguments: RegisterType.allCases)
    func roundTripsEveryTypeAndOrder(type: RegisterType) {
        let samples: [Double] = switch type {
        case .uint16: [0, 1, 230, 65535]
        case .int16: [0, -1, -32768, 32767, 1234]
        case .uint32: [0, 65536, 4_294_967_295, 123_456]
        case .int32: [0, -1, -2_147_483_648, 2_147_483_647, -70000]
        case .float32: [0, -0.5, 230, -3043.5, 49.98699951171875]
        case .float64: [0, -1e-9, 12_345_678.9, -3043.16]
        case .uint64: [0, 1, 4_294_967_296, 9_007_199_254_740_991]
        }
        for order in [WordOrder.hiFirst, .loFirst] {
            for value in samples {
                let regs = RegisterCodec.encode(value, type: type, order: order)
                #expect(regs.count == type.registerCount)
                #expect(RegisterCodec.decode(regs, type: type, order: order) == value, "\(type) \(order) \(value)")
            }
        }
        if type.registerCount > 1 {
            // The two orders are word-reversed images of each other.
            let hi = RegisterCodec.encode(samples[samples.count - 1], type: type, order: .hiFirst)
            let lo = RegisterCodec.encode(samples[samples.count - 1], type: type, order: .loFirst)
            #expect(hi == Array(lo.reversed()))
        }
    }

    @Test func scaleRoundsAndClamps() {
        // 0.1 kWh registers: 4567.89 kWh -> 45679 raw -> read back as 4567.9 kWh in Wh
        #expect(RegisterCodec.encode(4_567_890, type: .uint32, order: .hiFirst, scale: 100) == [0x0000, 0xB26F])
        #expect(RegisterCodec.decode([0x0000, 0xB26F], type: .uint32, order: .hiFirst, scale: 100) == 4_567_900)
        #expect(RegisterCodec.encode(16.0, type: .uint16, order: .hiFirst, scale: 0.001) == [16000])
        #expect(RegisterCodec.encode(-5, type: .uint16, order: .hiFirst) == [0])
        #expect(RegisterCodec.encode(70000, type: .uint16, order: .hiFirst) == [65535])
        #expect(RegisterCodec.encode(-40000, type: .int16, order: .hiFirst) == [0x8000])
        #expect(RegisterCodec.encode(1e12, type: .int32, order: .hiFirst) == [0x7FFF, 0xFFFF])
        #expect(RegisterCodec.encode(2.5, type: .int16, order: .hiFirst) == [3])
        #expect(RegisterCodec.decode([0x4366, 0x0000], type: .float32, order: .hiFirst, scale: 1000) == 230_000)
    }

    @Test func nanAndShortInput() {
        #expect(RegisterCodec.decode([0x7FC0, 0x0000], type: .float32, order: .hiFirst) == nil)
        #expect(RegisterCodec.decode([0x7F80, 0x0000], type: .float32, order: .hiFirst) == nil)
        #expect(RegisterCodec.decode([0x7FF8, 0, 0, 0], type: .float64, order: .hiFirst) == nil)
        #expect(RegisterCodec.decode([0x4366], type: .float32, order: .hiFirst) == nil)
        let slice = ([0xAAAA, 0x4366, 0x0000] as [UInt16])[1...]
        #expect(RegisterCodec.decode(slice, type: .float32, order: .hiFirst) == 230)
    }
}
