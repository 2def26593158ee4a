@testable import GridletAgent
import GridletCore
import GridletModbus
import GridletYAML
import Testing

/// The daemon's `modbus ... write` refuses the charger registers its control loop drives, before
/// anything reaches the bus; reads and other registers go on as before.
@Suite struct DrivenRegisterRefusalTests {
    static func links(meterOnChargerBus: Bool) throws -> (links: [DeviceLink], buses: [ModbusBus]) {
        let vestel = try #require(try ProfileLibrary.builtin(named: "vestel-evc04"))
        let sdm = try #require(try ProfileLibrary.builtin(named: "eastron-sdm630"))
        // Port 1 on loopback: nothing listens, so a transaction that does reach the bus fails fast.
        let lan = ModbusBus(name: "lan", transport: .tcp(host: "127.0.0.1", port: 1), timeoutMs: 200, retries: 0)
        let other = ModbusBus(name: "meterbus", transport: .tcp(host: "127.0.0.1", port: 1), timeoutMs: 200, retries: 0)
        let evse = DeviceConfig(name: "evse", bus: "lan", unit: 255, profile: "vestel-evc04", role: .charger, maxCurrent: 16)
        let meter = DeviceConfig(name: "meter", bus: meterOnChargerBus ? "lan" : "meterbus", unit: 1, profile: "eastron-sdm630",
                                 role: .siteMeter)
        let links = [DeviceLink(config: evse, profile: vestel, bus: lan),
                     DeviceLink(config: meter, profile: sdm, bus: meterOnChargerBus ? lan : other)]
        return (links, [lan, other])
    }

    @Test func aChargerAloneOnATCPBusIsMatchedWhateverTheUnitId() throws {
        let (links, buses) = try Self.links(meterOnChargerBus: false)
        defer { buses.forEach { $0.stop() } }
        let driven = DrivenRegisters(links: links)
        #expect(driven.registers.map(\.purpose) == [.chargingCurrent, .failsafeCurrent, .failsafeTimeout, .alive])
        #expect(driven.registers.allSatisfy { $0.anyUnit && $0.device == "evse" && $0.bus == "lan" })
    }

    @Test func aChargerSharingItsBusIsMatchedByItsUnitIdOnly() throws {
        let (links, buses) = try Self.links(meterOnChargerBus: true)
        defer { buses.forEach { $0.stop() } }
        #expect(DrivenRegisters(links: links).registers.allSatisfy { !$0.anyUnit && $0.unit == 255 })
    }

    @Test func theSetpointWriteIsRefusedBeforeTheBusAndSaysWhy() throws {
        let (links, buses) = try Self.links(meterOnChargerBus: false)
        defer { buses.forEach { $0.stop() } }
        let answer = DiagnosticsRequests.respond(["modbus", "lan", "255", "write", "6", "5004", "10", "200"], buses: buses,
                                                 driven: DrivenRegisters(links: links))
        let v = try JSONValue.parse(answer)
        #expect(v["ok"]?.boolValue == false)
        #expect(v["refused"]?.boolValue == true)
        #expect(v["via"]?.stringValue == "daemon" && v["address"]?.doubleValue == 5004)
        let error = try #require(v["error"]?.stringValue)
        #expect(error.hasPrefix("refused: holding register 5004 is the charging_current register of charger evse"))
        #expect(error.contains("cmd/event") && error.contains("stop the daemon"))
    }

    @Test func readsAndOtherRegistersStillReachTheBus() throws {
        let (links, buses) = try Self.links(meterOnChargerBus: false)
        defer { buses.forEach { $0.stop() } }
        let driven = DrivenRegisters(links: links)
        for words in [["modbus", "lan", "255", "read", "3", "5004", "1", "200"],
                      ["modbus", "lan", "255", "write", "6", "5005", "10", "200"],
                      ["modbus", "meterbus", "255", "write", "6", "5004", "10", "200"]] {
            let v = try JSONValue.parse(DiagnosticsRequests.respond(words, buses: buses, driven: driven))
            // Nothing listens on the port: the bus answered with its own error, not a refusal.
            #expect(v["refused"] == nil, "\(words)")
            #expect(v["error"]?.stringValue?.hasPrefix("refused") == false, "\(words)")
        }
    }
}
