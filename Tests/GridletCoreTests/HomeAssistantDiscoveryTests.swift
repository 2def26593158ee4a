import GridletCore
import Testing

@Suite struct HomeAssistantDiscoveryTests {
    static let threePhase = ["power_w", "import_wh", "export_wh", "voltage_l1_v", "voltage_l2_v", "voltage_l3_v",
                             "current_l1_a", "current_l2_a", "current_l3_a", "frequency_hz", "power_l1_w"]
    static let discovery = HomeAssistantDiscovery(
        siteID: "demo", root: "gridlet/demo", prefix: "homeassistant", version: "0.1.0",
        devices: [.init(name: "meter", manufacturer: "Eastron", model: "SDM630", points: threePhase),
                  .init(name: "evse", manufacturer: "Vestel", model: "EVC04", points: ["power_w", "import_wh", "voltage_l1_v", "charging"])])

    func config(_ topic: String) -> JSONValue? { Self.discovery.configs.first { $0.topic == topic }?.payload }

    @Test func siteEntitiesReadTheRetainedStateAndTheButtonHasItsOwnTopic() throws {
        let limit = try #require(config("homeassistant/sensor/gridlet_demo/limit/config"))
        #expect(limit["unique_id"]?.stringValue == "gridlet:demo:limit")
        #expect(limit["state_topic"]?.stringValue == "gridlet/demo/state")
        #expect(limit["value_template"]?.stringValue == "{{ value_json.limit_w }}")
        #expect(limit["unit_of_measurement"]?.stringValue == "W")
        #expect(limit["device_class"]?.stringValue == "power")
        #expect(limit["state_class"]?.stringValue == "measurement")
        #expect(limit["device"]?["identifiers"]?.arrayValue == [.string("gridlet:demo")])
        let avail = try #require(limit["availability"]?.arrayValue)
        #expect(avail.count == 1)
        #expect(avail[0]["topic"]?.stringValue == "gridlet/demo/status")
        #expect(avail[0]["value_template"]?.stringValue == "{{ 'online' if value_json.online else 'offline' }}")

        let source = try #require(config("homeassistant/sensor/gridlet_demo/source/config"))
        #expect(source["device_class"]?.stringValue == "enum")
        #expect(source["options"]?.arrayValue?.compactMap(\.stringValue) == HomeAssistantDiscovery.sourceKinds)
        let comm = try #require(config("homeassistant/binary_sensor/gridlet_demo/comm/config"))
        #expect(comm["device_class"]?.stringValue == "connectivity")
        let next = try #require(config("homeassistant/sensor/gridlet_demo/next_transition/config"))
        #expect(next["device_class"]?.stringValue == "timestamp")
        let queue = try #require(config("homeassistant/sensor/gridlet_demo/queue_records/config"))
        #expect(queue["state_topic"]?.stringValue == "gridlet/demo/ha/site")
        let button = try #require(config("homeassistant/button/gridlet_demo/opt_out/config"))
        #expect(button["command_topic"]?.stringValue == "gridlet/demo/ha/optout")
        #expect(button["payload_press"]?.stringValue == "PRESS")
        #expect(button["qos"]?.doubleValue == 0)
    }

    @Test func deviceEntitiesFollowTheProfilesPoints() throws {
        let topics = Self.discovery.configs.map(\.topic)
        let meter = topics.filter { $0.contains("/meter-") }
        #expect(meter.count == 10)   // power, 2 energies, 3 voltages, 3 currents, frequency (power_l1_w has no entity)
        let evse = topics.filter { $0.contains("/evse-") }
        #expect(evse == ["homeassistant/sensor/gridlet_demo/evse-power/config", "homeassistant/sensor/gridlet_demo/evse-import_energy/config",
                         "homeassistant/sensor/gridlet_demo/evse-voltage_l1/config", "homeassistant/binary_sensor/gridlet_demo/evse-charging/config"])
        let energy = try #require(config("homeassistant/sensor/gridlet_demo/meter-import_energy/config"))
        #expect(energy["unit_of_measurement"]?.stringValue == "kWh")
        #expect(energy["device_class"]?.stringValue == "energy")
        #expect(energy["state_class"]?.stringValue == "total_increasing")
        #expect(energy["state_topic"]?.stringValue == "gridlet/demo/ha/device/meter")
        #expect(energy["device"]?["identifiers"]?.arrayValue == [.string("gridlet:demo:meter")])
        #expect(energy["device"]?["via_device"]?.stringValue == "gridlet:demo")
        #expect(energy["device"]?["manufacturer"]?.stringValue == "Eastron")
        // Unavailable while gridlet is offline or the device does not answer.
        #expect(energy["availability"]?.arrayValue?.count == 2)
        #expect(energy["availability_mode"]?.stringValue == "all")
    }

    @Test func topicsAndUniqueIDsAreDistinctAndStable() {
        let configs = Self.discovery.configs
        #expect(Set(configs.map(\.topic)).count == configs.count)
        let ids = configs.compactMap { $0.payload["unique_id"]?.stringValue }
        #expect(Set(ids).count == configs.count)
        // The same configuration gives the same ids (nothing random, nothing time-based).
        let again = HomeAssistantDiscovery(siteID: "demo", root: "gridlet/demo", prefix: "homeassistant", version: "0.1.0",
                                           devices: Self.discovery.devices)
        #expect(again.configs == configs)
    }

    @Test func readingsCarryEveryKeyNullWhenUnknownEnergyInKWh() {
        let d = Self.discovery
        let values: [String: Double] = ["power_w": 2333.5, "import_wh": 12_345_678.9, "voltage_l1_v": 231.7, "charging": 1]
        let ok = d.readingsPayload(d.devices[1], ok: true, value: { values[$0] })
        #expect(ok.serialized == #"{"ok":true,"power":2333.5,"import_energy":12345.679,"voltage_l1":231.7,"charging":true}"#)
        let down = d.readingsPayload(d.devices[1], ok: false, value: { values[$0] })
        #expect(down.serialized == #"{"ok":false,"power":null,"import_energy":null,"voltage_l1":null,"charging":null}"#)
        #expect(d.sitePayload(queueRecords: 3).serialized == #"{"queue_records":3}"#)
    }

    @Test func removedTopicsAreThoseRecordedButNoLongerPublished() {
        let now = Self.discovery.retainedTopics
        #expect(now.contains("gridlet/demo/ha/device/evse") && now.contains("gridlet/demo/ha/site"))
        let old = now + ["homeassistant/sensor/gridlet_demo/pv-power/config", "gridlet/demo/ha/device/pv"]
        #expect(HomeAssistantDiscovery.removed(previous: old, current: now)
                == ["homeassistant/sensor/gridlet_demo/pv-power/config", "gridlet/demo/ha/device/pv"])
        #expect(HomeAssistantDiscovery.removed(previous: now, current: []) == now)
    }

    @Test func theButtonOptsOutOfTheEventOrScheduleThatSetsTheTarget() {
        #expect(HomeAssistantDiscovery.optOutTarget(targetSource: "dispatch:evt-1") == "evt-1")
        #expect(HomeAssistantDiscovery.optOutTarget(targetSource: "schedule:summer-peak") == "summer-peak")
        #expect(HomeAssistantDiscovery.optOutTarget(targetSource: "default") == nil)
        #expect(HomeAssistantDiscovery.optOutTarget(targetSource: "fallback") == nil)
        #expect(HomeAssistantDiscovery.optOutTarget(targetSource: nil) == nil)
    }
}
