import GridletCore

/// One read transaction covering several points of the same table.
public struct ReadBlock: Sendable, Equatable {
    public var table: RegisterTable
    public var address: Int
    public var count: Int
    public var points: [ProfilePoint]
}

/// Reads every point of a device profile for one unit through a `ModbusBus`, merging points of
/// the same table into as few transactions as possible.
public struct DeviceReader: Sendable {
    public let profile: DeviceProfile
    public let unit: Int
    public let deviceName: String
    public let blocks: [ReadBlock]

    /// - Parameters:
    ///   - maxRegisters: largest read (Modbus allows 125).
    ///   - maxHole: largest run of unused registers read anyway to save a transaction.
    public init(profile: DeviceProfile, unit: Int? = nil, deviceName: String? = nil,
                points: [String]? = nil, maxRegisters: Int = 125, maxHole: Int = 8) {
        self.profile = profile
        self.unit = unit ?? profile.defaultUnit
        self.deviceName = deviceName ?? profile.name
        let selected = points.map { names in profile.points.filter { names.contains($0.name) } } ?? profile.points
        self.blocks = DeviceReader.plan(selected, maxRegisters: maxRegisters, maxHole: maxHole)
    }

    /// Groups points into contiguous read ranges of at most `maxRegisters` registers,
    /// bridging holes of at most `maxHole` registers. Blocks are sorted by table then address.
    public static func plan(_ points: [ProfilePoint], maxRegisters: Int = 125, maxHole: Int = 8) -> [ReadBlock] {
        var blocks: [ReadBlock] = []
        let limit = max(4, min(125, maxRegisters))
        for table in [RegisterTable.holding, .input] {
            let sorted = points.filter { $0.table == table }.sorted {
                $0.address != $1.address ? $0.address < $1.address : $0.name < $1.name
            }
            var current: ReadBlock?
            for p in sorted {
                let end = p.address + p.type.registerCount   // exclusive
                if var b = current {
                    let blockEnd = b.address + b.count
                    let hole = p.address - blockEnd
                    let newCount = max(blockEnd, end) - b.address
                    if hole <= maxHole && newCount <= limit {
                        b.count = newCount
                        b.points.append(p)
                        current = b
                        continue
                    }
                    blocks.append(b)
                }
                current = ReadBlock(table: table, address: p.address, count: p.type.registerCount, points: [p])
            }
            if let b = current { blocks.append(b) }
        }
        return blocks
    }

    /// Decodes the points of `block` from its registers. nil values are NaN/infinite floats.
    public static func decode(_ block: ReadBlock, registers: [UInt16]) -> [String: Double?] {
        var out: [String: Double?] = [:]
        for p in block.points {
            let start = p.address - block.address
            let end = start + p.type.registerCount
            guard start >= 0, end <= registers.count else { out[p.name] = .some(nil); continue }
            out[p.name] = .some(RegisterCodec.decode(registers[start..<end], type: p.type, order: p.wordOrder, scale: p.scale))
        }
        return out
    }

    /// Reads all blocks one after another; `completion` runs on the bus thread with every point
    /// (point name -> value, nil for NaN) or the first error.
    public func read(on bus: ModbusBus, completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void) {
        readBlock(0, on: bus, values: [:], completion: completion)
    }

    /// Reads all blocks and waits. Must not be called from the bus thread.
    public func read(on bus: ModbusBus) -> Result<[String: Double?], ModbusError> {
        precondition(!bus.isOnBusThread, "DeviceReader.read(on:) called on the bus thread")
        let slot = LockedCondition<Result<[String: Double?], ModbusError>?>(nil)
        read(on: bus) { result in slot.withLock { $0 = result } }
        return slot.wait { $0 }!
    }

    private func readBlock(_ index: Int, on bus: ModbusBus, values: [String: Double?],
                           completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void) {
        guard index < blocks.count else { completion(.success(values)); return }
        let block = blocks[index]
        bus.submit(.read(table: block.table, address: block.address, count: block.count, unit: unit, deviceName: deviceName)) { result in
            switch result {
            case let .failure(e): completion(.failure(e))
            case let .success(regs):
                var merged = values
                for (k, v) in DeviceReader.decode(block, registers: regs) { merged[k] = v }
                readBlock(index + 1, on: bus, values: merged, completion: completion)
            }
        }
    }
}
