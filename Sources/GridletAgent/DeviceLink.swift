import GridletCore
import GridletModbus

/// One configured device: its profile, its bus, and what the control loop knows of it.
final class DeviceLink: Sendable {
    let config: DeviceConfig
    let profile: DeviceProfile
    let bus: ModbusBus
    let reader: DeviceReader
    let counters = PollCounters()

    init(config: DeviceConfig, profile: DeviceProfile, bus: ModbusBus) {
        self.config = config
        self.profile = profile
        self.bus = bus
        self.reader = DeviceReader(profile: profile, unit: config.unit, deviceName: config.name)
    }

    func poll(completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void) {
        let started = PollCounters.monoUs()
        let counters = self.counters
        reader.read(on: bus) { result in
            if case .success = result { counters.record(ok: true, startedUs: started) } else { counters.record(ok: false, startedUs: started) }
            completion(result)
        }
    }

    /// Writes a physical value to a control register (value / scale, encoded by type).
    func write(_ register: ProfileRegister, value: Double,
               completion: @escaping @Sendable (Result<[UInt16], ModbusError>) -> Void) {
        let regs = RegisterCodec.encode(value, type: register.type, order: .hiFirst, scale: register.scale)
        bus.submit(.write(address: register.address, values: regs, unit: config.unit, deviceName: config.name),
                   completion: completion)
    }

    /// Reads a holding register (fc 3) and decodes it like `write` encodes it.
    func read(_ register: ProfileRegister, completion: @escaping @Sendable (Result<Double, ModbusError>) -> Void) {
        bus.submit(.read(table: .holding, address: register.address, count: register.type.registerCount, unit: config.unit,
                         deviceName: config.name)) { result in
            completion(result.map { regs in
                RegisterCodec.decode(regs, type: register.type, order: .hiFirst, scale: register.scale) ?? .nan
            })
        }
    }
}
