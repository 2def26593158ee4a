@testable import GridletAgent
import GridletCore
import Testing

/// `root/state` on meaningful change only (StatePublishGate wired into the agent).
@Suite struct StatePublishTests {
    func setChargerVolts(_ h: AgentHarness, _ v: Double) {
        h.charger.state.withLock { $0.values = ["voltage_l1_v": v, "voltage_l2_v": v, "voltage_l3_v": v] }
    }

    @Test func voltageWobbleIsNotPublishedButADispatchIsInTheSameTurn() throws {
        let h = try AgentHarness()
        h.connect()
        h.run(for: 3000)
        let before = h.mqtt.on("/state").count
        #expect(before >= 1)
        // The default limit is 16 A x 3 x V: 0.5 % of voltage moves it by 55 W, inside the deadband.
        for s in 0..<20 {
            setChargerVolts(h, s % 2 == 0 ? 231.15 : 230)
            h.run(for: 1000)
        }
        #expect(h.mqtt.on("/state").count == before)
        h.command("event", #"{"id":"evt-1","duration_s":600,"limit_w":4800}"#)
        h.step()
        let states = h.mqtt.on("/state")
        #expect(states.count == before + 1)
        #expect(states.last?.payload.contains(#""source":"dispatch:evt-1""#) == true)
    }

    @Test func theStateIsRefreshedEveryThirtySecondsAndAfterAReconnect() throws {
        let h = try AgentHarness()
        h.connect()
        h.run(for: 3000)
        let before = h.mqtt.on("/state").count
        h.run(for: 30_000)
        #expect(h.mqtt.on("/state").count == before + 1)
        h.disconnect()
        h.connect()
        #expect(h.mqtt.on("/state").count == before + 2)
    }
}
