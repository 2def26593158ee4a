import Glibc
@testable import GridletAgent
import GridletCore
@testable import GridletMQTT
import Testing

/// Home Assistant discovery wired into the agent (docs/home-assistant.md), over fakes.
@Suite struct HomeAssistantAgentTests {
    static let enabled = "homeassistant: {enabled: true}"

    func deliver(_ h: AgentHarness, _ topic: String, _ payload: String, retained: Bool = false) {
        h.mqtt.handler?(.message(MQTTMessage(topic: topic, payload: Array(payload.utf8), retained: retained,
                                             responseTopic: nil, correlationData: nil)))
        h.step()
    }

    func configs(_ h: AgentHarness) -> [FakeMQTT.Published] { h.mqtt.published.filter { $0.topic.hasPrefix("homeassistant/") } }

    @Test func discoveryIsRetainedAtConnectAndRepublishedWhenHomeAssistantComesOnline() throws {
        let h = try AgentHarness(control: Self.enabled)
        h.connect()
        let first = configs(h)
        #expect(first.count > 10)
        #expect(first.allSatisfy { $0.retain && $0.qos == 1 && !$0.payload.isEmpty })
        #expect(h.mqtt.subscribed.contains("homeassistant/status"))
        #expect(h.mqtt.subscribed.contains("gridlet/t1/ha/optout"))
        #expect(h.mqtt.published.contains { $0.topic == "gridlet/t1/ha/device/meter" && $0.retain })
        deliver(h, "homeassistant/status", "offline")
        #expect(configs(h).count == first.count)
        deliver(h, "homeassistant/status", "online")
        #expect(configs(h).count == 2 * first.count)
        // The record of what was published, for removing devices later.
        let record = try JSONValue.parse(try #require(StateFile.read(h.stateDir + "/homeassistant.json")))
        #expect(record["topics"]?.arrayValue?.count == first.count + 3)   // configs + ha/site + 2 devices
    }

    @Test func offByDefault() throws {
        let h = try AgentHarness()
        h.connect()
        #expect(configs(h).isEmpty)
        #expect(!h.mqtt.subscribed.contains("homeassistant/status"))
    }

    @Test func theButtonOptsOutOfTheRunningEvent() throws {
        let h = try AgentHarness(control: Self.enabled)
        h.connect()
        h.run(for: 3000)
        deliver(h, "gridlet/t1/ha/optout", "PRESS")
        #expect(h.mqtt.on("/reply").last?.payload.contains(#""code":"not_found""#) == true)
        h.command("event", #"{"id":"evt-1","duration_s":600,"limit_w":4800,"opt_out":true}"#)
        h.run(for: 1000)
        // A retained press is ignored: it would opt out again at every reconnect.
        deliver(h, "gridlet/t1/ha/optout", "PRESS", retained: true)
        #expect(!h.queue.stored.contains { String(decoding: $0.payload, as: UTF8.self).contains(#""status":4"#) })
        deliver(h, "gridlet/t1/ha/optout", "PRESS")
        h.step()   // acknowledged once the opt-out is on disk: the state write reports back a turn later
        #expect(h.mqtt.on("/reply").last?.payload == #"{"cmd":"ha/optout","id":"evt-1","ok":true}"#)
        #expect(h.queue.stored.contains { String(decoding: $0.payload, as: UTF8.self).contains(#""event":"evt-1","status":4"#) })
        h.run(for: 500)
        #expect(h.mqtt.on("/state").last?.payload.contains(#""source":"default""#) == true)
    }

    @Test func topicsOfADeviceNoLongerConfiguredAreCleared() throws {
        let gone = ["homeassistant/sensor/gridlet_t1/pv-power/config", "gridlet/t1/ha/device/pv"]
        let h = try AgentHarness(control: Self.enabled) { dir in
            let body = #"{"topics":["\#(gone[0])","\#(gone[1])","homeassistant/sensor/gridlet_t1/limit/config"]}"#
            try? StateFile.write(Array(body.utf8), to: dir + "/homeassistant.json")
        }
        h.connect()
        for t in gone { #expect(h.mqtt.published.contains { $0.topic == t && $0.retain && $0.payload.isEmpty }, "\(t)") }
        #expect(!h.mqtt.published.contains { $0.topic == "homeassistant/sensor/gridlet_t1/limit/config" && $0.payload.isEmpty })
        let record = try #require(StateFile.read(h.stateDir + "/homeassistant.json"))
        #expect(!String(decoding: record, as: UTF8.self).contains("pv-power"))
    }

    @Test func switchingDiscoveryOffRemovesWhatWasPublished() throws {
        let h = try AgentHarness { dir in
            let body = #"{"topics":["homeassistant/sensor/gridlet_t1/limit/config"]}"#
            try? StateFile.write(Array(body.utf8), to: dir + "/homeassistant.json")
        }
        h.connect()
        #expect(h.mqtt.published.contains { $0.topic == "homeassistant/sensor/gridlet_t1/limit/config" && $0.payload.isEmpty })
        h.disconnect()
        h.connect()
        #expect(h.mqtt.published.filter { $0.topic.hasPrefix("homeassistant/") }.count == 1)
    }
}
