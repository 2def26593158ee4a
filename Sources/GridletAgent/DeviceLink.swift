import GridletCore
import GridletModbus
import Synchronization

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

    /// Writes a physical value to a control register (value / scale, encoded by type). A
    /// register with a SunSpec scale factor register has it read first (once: scale factors are
    /// fixed by the device) and the value divided by 10^sf.
    func write(_ register: ProfileRegister, value: Double,
               completion: @escaping @Sendable (Result<[UInt16], ModbusError>) -> Void) {
        let (bus, unit, name) = (self.bus, config.unit, config.name)
        let plain = { @Sendable (factor: Double) in
            let regs = RegisterCodec.encode(value / factor, type: register.type, order: .hiFirst, scale: register.scale)
            bus.submit(.write(address: register.address, values: regs, unit: unit, deviceName: name), completion: completion)
        }
        guard let sfAddress = register.scaleFactorAddress else { plain(1); return }
        if let f = scaleFactors.withLock({ $0[sfAddress] }) { plain(f); return }
        bus.submit(.read(table: .holding, address: sfAddress, count: 1, unit: unit, deviceName: name)) { result in
            switch result {
            case let .failure(e): completion(.failure(e))
            case let .success(regs):
                guard let sf = regs.first, let p = PointCodec.powerOfTen(sf) else {
                    completion(.failure(ModbusError(code: 0, kind: .invalidResponse, device: name, bus: bus.name, unit: unit,
                                                    function: "read scale factor", address: sfAddress, count: 1,
                                                    message: "scale factor register \(sfAddress) is not implemented or out of range (\(regs.first.map { String($0) } ?? "none"))")))
                    return
                }
                let factor = p.multiply / p.divide
                self.scaleFactors.withLock { $0[sfAddress] = factor }
                plain(factor)
            }
        }
    }

    /// Scale factors read so far (register address -> 10^sf).
    private let scaleFactors = Mutex<[Int: Double]>([:])

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
