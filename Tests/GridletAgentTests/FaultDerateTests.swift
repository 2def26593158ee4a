@testable import GridletAgent
import GridletCore
import Testing

/// SPEC §2 SafetyDerate: a charger that says it is in fault (its profile's `control.fault`, here
/// the Vestel's charge_point_state 8 = Faulted) gets the fallback limit, and the state says why.
@Suite(.serialized) struct FaultDerateTests {
    typealias H = AgentHarness

    func evseFault(_ h: AgentHarness) throws -> JSONValue? {
        let state = h.agent.stateJSON(nowWall: h.time.wallMs())
        return try #require(state["devices"]?["evse"])["fault"]
    }

    @Test func aChargerInFaultIsDeratedToTheFallbackUntilItClears() throws {
        let h = try AgentHarness(control: "  fallback_limit_w: 4140")
        h.charger.state.withLock { $0.values["charge_point_state"] = 2 }   // charging
        h.connect()
        h.run(for: 1000)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        #expect(h.agent.decision?.source == "default")
        #expect(try evseFault(h) == nil)

        h.charger.state.withLock { $0.values["charge_point_state"] = 8 }   // Faulted
        h.run(for: 1500)
        #expect(h.charger.writes(to: H.setpoint).last == 6)   // 4140 W / (3 x 230 V)
        #expect(h.agent.decision?.source == "derate:evse_fault")
        #expect(h.agent.decision?.limitW == 4140)
        #expect(try evseFault(h)?.stringValue == "faulted (charge_point_state = 8)")
        let published = try #require(h.mqtt.on("/state").last).payload
        #expect(published.contains(#""fault":"faulted (charge_point_state = 8)""#))
        #expect(published.contains(#""source":"derate:evse_fault""#))

        h.charger.state.withLock { $0.values["charge_point_state"] = 2 }
        h.run(for: 1500)
        #expect(h.charger.writes(to: H.setpoint).last == 16)
        #expect(h.agent.decision?.source == "default")
        #expect(try evseFault(h) == nil)
        #expect(try #require(h.mqtt.on("/state").last).payload.contains(#""fault""#) == false)
    }

    /// A charger that said it is in fault and then stops answering stays derated (its last word).
    @Test func aChargerThatFallsSilentInFaultStaysDerated() throws {
        let h = try AgentHarness(control: "  fallback_limit_w: 4140")
        h.charger.state.withLock { $0.values["charge_point_state"] = 8 }
        h.connect()
        h.run(for: 1000)
        #expect(h.agent.decision?.source == "derate:evse_fault")
        h.charger.state.withLock { $0.answering = false }
        h.run(for: 5000)
        #expect(h.agent.decision?.source == "derate:evse_fault")
        #expect(try evseFault(h)?.stringValue == "faulted (charge_point_state = 8)")
    }
}
