import GridletCore
import Synchronization

/// One read transaction covering several points of the same table.
public struct ReadBlock: Sendable, Equatable {
    public var table: RegisterTable
    public var address: Int
    public var count: Int
    public var points: [ProfilePoint]
}

/// Reads every point of a device profile for one unit through a `ModbusBus`, merging points of
/// the same table into as few transactions as possible.
///
/// SunSpec profiles (`profile.sunspec`) are resolved on the first read by `SunSpecDiscovery`
/// (marker, model list, meter model); the resulting point map is cached for this reader.
public struct DeviceReader: Sendable {
    public let profile: DeviceProfile
    public let unit: Int
    public let deviceName: String
    private let selected: [String]?
    private let maxRegisters: Int
    private let maxHole: Int
    private let planned: PollPlan
    private let discovered: SunSpecCache?

    /// The read transactions (for SunSpec profiles: empty until discovery succeeded).
    public var blocks: [ReadBlock] { discovered.map { $0.plan()?.blocks ?? [] } ?? planned.blocks }

    /// The SunSpec model and address found by discovery, if any.
    public var sunspecModel: (id: Int, address: Int)? { discovered?.model() }

    /// - Parameters:
    ///   - maxRegisters: largest read (Modbus allows 125).
    ///   - maxHole: largest run of unused registers read anyway to save a transaction.
    public init(profile: DeviceProfile, unit: Int? = nil, deviceName: String? = nil,
                points: [String]? = nil, maxRegisters: Int = 125, maxHole: Int = 8) {
        self.profile = profile
        self.unit = unit ?? profile.defaultUnit
        self.deviceName = deviceName ?? profile.name
        self.selected = points
        self.maxRegisters = maxRegisters
        self.maxHole = maxHole
        if profile.sunspec != nil {
            planned = PollPlan([])
            discovered = SunSpecCache()
        } else {
            planned = PollPlan(DeviceReader.plan(DeviceReader.select(profile.points, points), maxRegisters: maxRegisters, maxHole: maxHole))
            discovered = nil
        }
    }

    private static func select(_ all: [ProfilePoint], _ names: [String]?) -> [ProfilePoint] {
        names.map { names in all.filter { names.contains($0.name) } } ?? all
    }

    /// Groups points into contiguous read ranges of at most `maxRegisters` registers,
    /// bridging holes of at most `maxHole` registers. Blocks are sorted by table then address.
    /// A point's scale factor register (SunSpec) is read in the same block as the point.
    public static func plan(_ points: [ProfilePoint], maxRegisters: Int = 125, maxHole: Int = 8) -> [ReadBlock] {
        var blocks: [ReadBlock] = []
        let limit = max(4, min(125, maxRegisters))
        func span(_ p: ProfilePoint) -> (lo: Int, hi: Int) {
            let end = p.address + p.type.registerCount   // exclusive
            guard let sf = p.scaleFactorAddress else { return (p.address, end) }
            return (min(p.address, sf), max(end, sf + 1))
        }
        for table in [RegisterTable.holding, .input] {
            let sorted = points.filter { $0.table == table }.sorted {
                span($0).lo != span($1).lo ? span($0).lo < span($1).lo : $0.name < $1.name
            }
            var current: ReadBlock?
            for p in sorted {
                let (lo, hi) = span(p)
                if var b = current {
                    let blockEnd = b.address + b.count
                    let hole = lo - blockEnd
                    let newCount = max(blockEnd, hi) - b.address
                    if hole <= maxHole && newCount <= limit {
                        b.count = newCount
                        b.points.append(p)
                        current = b
                        continue
                    }
                    blocks.append(b)
                }
                current = ReadBlock(table: table, address: lo, count: hi - lo, points: [p])
            }
            if let b = current { blocks.append(b) }
        }
        return blocks
    }

    /// Decodes the points of `block` from its registers (as a poll does, through a `PollPlan`).
    /// nil values are NaN/infinite floats, SunSpec "not implemented" values and registers the
    /// block does not hold.
    public static func decode(_ block: ReadBlock, registers: [UInt16]) -> [String: Double?] {
        let plan = PollPlan([block])
        var values = plan.template
        plan.decode(block: 0, registers: registers, into: &values)
        return values
    }

    /// Reads all blocks one after another; `completion` runs on the bus thread with every point
    /// (point name -> value, nil for NaN) or the first error.
    public func read(on bus: ModbusBus, completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void) {
        guard let cache = discovered, let settings = profile.sunspec else {
            readAll(planned, on: bus, completion: completion)
            return
        }
        if let plan = cache.plan() {
            readAll(plan, on: bus, completion: completion)
            return
        }
        let (profile, selected, maxRegisters, maxHole) = (self.profile, self.selected, self.maxRegisters, self.maxHole)
        let reader = self
        SunSpecDiscovery(settings: settings, unit: unit, deviceName: deviceName).run(on: bus) { result in
            switch result {
            case let .failure(e): completion(.failure(e))
            case let .success(found):
                guard let resolved = SunSpec.resolve(profile, model: found.id, modelAddress: found.address) else {
                    completion(.failure(found.error("model \(found.id) is not a meter model")))
                    return
                }
                let blocks = DeviceReader.plan(DeviceReader.select(resolved.points, selected), maxRegisters: maxRegisters, maxHole: maxHole)
                let plan = PollPlan(blocks)
                cache.store(model: (found.id, found.address), plan: plan)
                reader.readAll(plan, on: bus, completion: completion)
            }
        }
    }

    /// Reads all blocks and waits. Must not be called from the bus thread.
    public func read(on bus: ModbusBus) -> Result<[String: Double?], ModbusError> {
        precondition(!bus.isOnBusThread, "DeviceReader.read(on:) called on the bus thread")
        let slot = LockedCondition<Result<[String: Double?], ModbusError>?>(nil)
        read(on: bus) { result in slot.withLock { $0 = result } }
        return slot.wait { $0 }!
    }

    private func readAll(_ plan: PollPlan, on bus: ModbusBus,
                         completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void) {
        PollRun(plan: plan, unit: unit, deviceName: deviceName, bus: bus, completion: completion).next()
    }

    /// One poll: its blocks read one after another, each completion (on the bus thread) decoding
    /// its registers into the poll's dictionary and asking for the next block. A class, so a
    /// completion holds one reference instead of a copy of the reader (its profile).
    /// `@unchecked Sendable`: `index` and `values` are only touched by the completions, which the
    /// bus thread runs one after another; the caller's first `next()` happens before them through
    /// the bus's queue lock.
    private final class PollRun: @unchecked Sendable {
        let plan: PollPlan
        let unit: Int
        let deviceName: String
        let bus: ModbusBus
        let completion: @Sendable (Result<[String: Double?], ModbusError>) -> Void
        var index = 0
        var values: [String: Double?]

        init(plan: PollPlan, unit: Int, deviceName: String, bus: ModbusBus,
             completion: @escaping @Sendable (Result<[String: Double?], ModbusError>) -> Void) {
            self.plan = plan
            self.unit = unit
            self.deviceName = deviceName
            self.bus = bus
            self.completion = completion
            values = plan.template
        }

        func next() {
            guard index < plan.blocks.count else { completion(.success(values)); return }
            let block = plan.blocks[index]
            bus.submit(.read(table: block.table, address: block.address, count: block.count, unit: unit, deviceName: deviceName)) { result in
                switch result {
                case let .failure(e): self.completion(.failure(e))
                case let .success(regs):
                    self.plan.decode(block: self.index, registers: regs, into: &self.values)
                    self.index += 1
                    self.next()
                }
            }
        }
    }
}

/// A poll's blocks with what decoding them needs: a dictionary holding every point's name (all
/// values nil), which each poll copies, and for each block's points where their value sits in it
/// and where their registers sit in the block. A poll then stores its values through those
/// positions: no hashing of point names and no copy of a point per value (they were a third and
/// more of the read path's own CPU per transaction, bench/poll-profile.sh). Positions stay valid
/// in copies of the dictionary: storing a value changes no key.
struct PollPlan: Sendable {
    let blocks: [ReadBlock]
    let template: [String: Double?]
    private let slots: [[Slot]]

    /// One point of a block: its value's position in the dictionary, its registers (`start..<end`
    /// of the block's) and its scale factor register's index in the block, if any.
    private struct Slot: Sendable {
        var position: Dictionary<String, Double?>.Index
        var start: Int
        var end: Int
        var scaleFactorIndex: Int?
        var layout: PointCodec.Layout
    }

    init(_ blocks: [ReadBlock]) {
        self.blocks = blocks
        var template: [String: Double?] = [:]
        template.reserveCapacity(blocks.reduce(0) { $0 + $1.points.count })
        for block in blocks { for p in block.points { template[p.name] = .some(nil) } }
        self.template = template
        slots = blocks.map { block in
            block.points.map { p in
                let start = p.address - block.address
                return Slot(position: template.index(forKey: p.name)!, start: start, end: start + p.type.registerCount,
                            scaleFactorIndex: p.scaleFactorAddress.map { $0 - block.address }, layout: PointCodec.Layout(p))
            }
        }
    }

    /// Decodes block `index`'s points from its registers into `values` (a copy of `template`):
    /// nil for NaN/infinite floats, SunSpec "not implemented" values and registers the block
    /// (a short answer) does not hold.
    func decode(block index: Int, registers: [UInt16], into values: inout [String: Double?]) {
        for slot in slots[index] {
            var value: Double?
            if slot.start >= 0, slot.end <= registers.count {
                if let i = slot.scaleFactorIndex {
                    if i >= 0, i < registers.count {
                        value = PointCodec.decode(slot.layout, registers[slot.start..<slot.end], sf: registers[i])
                    }
                } else {
                    value = PointCodec.decode(slot.layout, registers[slot.start..<slot.end], sf: nil)
                }
            }
            values.values[slot.position] = value
        }
    }
}

/// The SunSpec point map a reader found, shared by copies of the reader.
final class SunSpecCache: Sendable {
    private struct Found: Sendable { var model: (id: Int, address: Int); var plan: PollPlan }
    private let state = Mutex<Found?>(nil)
    func plan() -> PollPlan? { state.withLock { $0?.plan } }
    func model() -> (id: Int, address: Int)? { state.withLock { $0?.model } }
    func store(model: (id: Int, address: Int), plan: PollPlan) { state.withLock { $0 = Found(model: model, plan: plan) } }
}
