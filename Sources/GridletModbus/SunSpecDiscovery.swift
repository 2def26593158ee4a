import GridletCore

/// Finds a SunSpec meter model on a device: reads 2 registers at each base address (40000, 0,
/// 50000) until one holds "SunS", then walks the model list (`ID, L`) from base+2 until it meets
/// a wanted meter model or the end marker 0xFFFF. Runs as a chain of bus transactions
/// (completions on the bus thread), so it never blocks the bus thread.
///
/// A base that answers with a Modbus exception (typically illegal data address) or with other
/// data is skipped; a timeout or connection error ends discovery with that error (the device
/// is not answering, trying further addresses would only hold up the bus).
public struct SunSpecDiscovery: Sendable {
    public struct Found: Sendable, Equatable {
        public var id: Int
        /// Address of the model's ID register.
        public var address: Int
        public var base: Int
        var bus: String
        var device: String
        var unit: Int
        func error(_ message: String) -> ModbusError {
            ModbusError(code: 0, kind: .invalidResponse, device: device, bus: bus, unit: unit, function: "sunspec discovery",
                        address: address, count: 0, message: message)
        }
    }

    public let settings: SunSpecSettings
    public let unit: Int
    public let deviceName: String
    /// Longest model list walked (guards against devices with garbage lengths).
    public static let maxModels = 64

    public init(settings: SunSpecSettings, unit: Int, deviceName: String) {
        self.settings = settings; self.unit = unit; self.deviceName = deviceName
    }

    public func run(on bus: ModbusBus, completion: @escaping @Sendable (Result<Found, ModbusError>) -> Void) {
        tryBase(0, on: bus, completion: completion)
    }

    /// Runs and waits. Must not be called from the bus thread.
    public func run(on bus: ModbusBus) -> Result<Found, ModbusError> {
        precondition(!bus.isOnBusThread, "SunSpecDiscovery.run(on:) called on the bus thread")
        let slot = LockedCondition<Result<Found, ModbusError>?>(nil)
        run(on: bus) { r in slot.withLock { $0 = r } }
        return slot.wait { $0 }!
    }

    private func notFound(_ bus: ModbusBus, _ message: String) -> ModbusError {
        ModbusError(code: 0, kind: .invalidResponse, device: deviceName, bus: bus.name, unit: unit, function: "sunspec discovery",
                    address: settings.bases.first ?? 0, count: 0, message: message)
    }

    private func tryBase(_ i: Int, on bus: ModbusBus, completion: @escaping @Sendable (Result<Found, ModbusError>) -> Void) {
        guard i < settings.bases.count else {
            completion(.failure(notFound(bus, "no SunSpec marker 'SunS' at \(settings.bases.map(String.init).joined(separator: ", "))")))
            return
        }
        let base = settings.bases[i]
        bus.submit(.read(table: .holding, address: base, count: 2, unit: unit, deviceName: deviceName)) { result in
            switch result {
            case let .success(regs) where regs == SunSpec.marker:
                walk(base: base, address: base + 2, seen: 0, best: nil, on: bus, completion: completion)
            case .success:
                tryBase(i + 1, on: bus, completion: completion)
            case let .failure(e):
                if case .exception = e.kind { tryBase(i + 1, on: bus, completion: completion) } else { completion(.failure(e)) }
            }
        }
    }

    private func walk(base: Int, address: Int, seen: Int, best: Found?, on bus: ModbusBus,
                      completion: @escaping @Sendable (Result<Found, ModbusError>) -> Void) {
        @Sendable func finish() {
            if let best { completion(.success(best)) } else {
                completion(.failure(notFound(bus, "SunSpec device at \(base) has no meter model \(settings.models.map(String.init).joined(separator: ", "))")))
            }
        }
        guard seen < Self.maxModels, address + 2 <= 65536 else { finish(); return }
        bus.submit(.read(table: .holding, address: address, count: 2, unit: unit, deviceName: deviceName)) { result in
            switch result {
            case let .failure(e):
                // Some devices answer the end marker's address with an exception instead of 0xFFFF.
                if case .exception = e.kind { finish() } else { completion(.failure(e)) }
            case let .success(regs):
                let id = Int(regs[0]), length = Int(regs[1])
                if regs[0] == SunSpec.endID { finish(); return }
                var best = best
                if let rank = settings.models.firstIndex(of: id),
                   best.map({ settings.models.firstIndex(of: $0.id)! > rank }) ?? true {
                    best = Found(id: id, address: address, base: base, bus: bus.name, device: deviceName, unit: unit)
                    if rank == 0 { completion(.success(best!)); return }
                }
                walk(base: base, address: address + length + 2, seen: seen + 1, best: best, on: bus, completion: completion)
            }
        }
    }
}
