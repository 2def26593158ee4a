/// Home Assistant MQTT discovery for one site (docs/home-assistant.md): the retained config of
/// every entity, the payloads of the small `root/ha/...` state topics, and which retained
/// topics to clear when a device leaves the configuration. Pure: the agent publishes.
///
/// Topics: `<prefix>/<component>/gridlet_<site>/<object>/config`. Site entities have objects
/// without '-' (`limit`, `source`, ...), device entities `<device>-<entity>`; entity keys
/// contain no '-', so different (site, device, entity) never share a topic. Unique ids are
/// `gridlet:<site>:<object>`: stable across restarts, and never reused by another site.
///
/// State topics: the control entities read gridlet's own retained `root/state` (its fields are
/// always present, and it is published at once on a change). Readings come from
/// `root/ha/device/<name>`, not from telemetry: telemetry goes through the queue (a replayed
/// backlog would show hours-old values as current), a device that does not answer has no fields
/// there, and energies are in Wh; the HA topic always carries every field (null = unknown),
/// energies in kWh. Queue depth comes from `root/ha/site`.
public struct HomeAssistantDiscovery: Sendable {
    /// A configured device as discovery sees it.
    public struct Device: Sendable, Equatable {
        public var name: String
        public var manufacturer: String
        public var model: String
        /// The profile's point names (canonical: `power_w`, `voltage_l1_v`, ...).
        public var points: [String]
        public init(name: String, manufacturer: String, model: String, points: [String]) {
            self.name = name; self.manufacturer = manufacturer; self.model = model; self.points = points
        }
    }

    /// One retained message.
    public struct Message: Sendable, Equatable {
        public var topic: String
        public var payload: JSONValue
    }

    /// A reading entity of a device: its key in `root/ha/device/<name>`, the profile point it
    /// comes from, and how the point's value is scaled (Wh -> kWh).
    struct Reading {
        var key: String
        var point: String
        var name: String
        var component = "sensor"
        var unit: String?
        var deviceClass: String?
        var stateClass: String?
        var scale = 1.0
    }

    static let readings: [Reading] = {
        var r = [Reading(key: "power", point: "power_w", name: "Power", unit: "W", deviceClass: "power", stateClass: "measurement"),
                 Reading(key: "import_energy", point: "import_wh", name: "Import energy", unit: "kWh", deviceClass: "energy",
                         stateClass: "total_increasing", scale: 0.001),
                 Reading(key: "export_energy", point: "export_wh", name: "Export energy", unit: "kWh", deviceClass: "energy",
                         stateClass: "total_increasing", scale: 0.001)]
        for l in 1...3 {
            r.append(Reading(key: "voltage_l\(l)", point: "voltage_l\(l)_v", name: "Voltage L\(l)", unit: "V", deviceClass: "voltage",
                             stateClass: "measurement"))
        }
        for l in 1...3 {
            r.append(Reading(key: "current_l\(l)", point: "current_l\(l)_a", name: "Current L\(l)", unit: "A", deviceClass: "current",
                             stateClass: "measurement"))
        }
        r.append(Reading(key: "frequency", point: "frequency_hz", name: "Frequency", unit: "Hz", deviceClass: "frequency",
                         stateClass: "measurement"))
        r.append(Reading(key: "charging", point: "charging", name: "Charging", component: "binary_sensor", deviceClass: "battery_charging"))
        return r
    }()

    /// The control sources as the enum sensor shows them (the part of `source` before ':').
    public static let sourceKinds = ["dispatch", "schedule", "fallback", "default", "site_limit", "derate"]

    public let siteID: String
    public let root: String
    public let prefix: String
    public let version: String
    public let devices: [Device]

    public init(siteID: String, root: String, prefix: String, version: String, devices: [Device]) {
        self.siteID = siteID; self.root = root; self.prefix = prefix; self.version = version; self.devices = devices
    }

    public var node: String { "gridlet_\(siteID)" }
    public var stateTopic: String { "\(root)/state" }
    public var statusTopic: String { "\(root)/status" }
    public var siteTopic: String { "\(root)/ha/site" }
    /// The opt-out button's command topic.
    public var optOutTopic: String { "\(root)/ha/optout" }
    public static let optOutPayload = "PRESS"
    public func deviceTopic(_ name: String) -> String { "\(root)/ha/device/\(name)" }

    func configTopic(_ component: String, _ object: String) -> String { "\(prefix)/\(component)/\(node)/\(object)/config" }

    var origin: JSONValue { .object([("name", .string("gridlet")), ("sw_version", .string(version))]) }

    var siteDevice: JSONValue {
        .object([("identifiers", .array([.string("gridlet:\(siteID)")])), ("name", .string("gridlet \(siteID)")),
                 ("manufacturer", .string("gridlet")), ("model", .string("edge agent")), ("sw_version", .string(version))])
    }

    func deviceBlock(_ d: Device) -> JSONValue {
        .object([("identifiers", .array([.string("gridlet:\(siteID):\(d.name)")])), ("name", .string("gridlet \(siteID) \(d.name)")),
                 ("manufacturer", .string(d.manufacturer)), ("model", .string(d.model)), ("via_device", .string("gridlet:\(siteID)"))])
    }

    /// Available while gridlet's retained status says `online` (its will says `false`).
    var agentAvailability: JSONValue {
        .object([("topic", .string(statusTopic)), ("value_template", .string("{{ 'online' if value_json.online else 'offline' }}"))])
    }

    func config(component: String, object: String, name: String, device: JSONValue, availability: [JSONValue],
                fields: [(String, JSONValue)]) -> Message {
        var o: [(String, JSONValue)] = [("name", .string(name)), ("unique_id", .string("gridlet:\(siteID):\(object)")),
                                        ("device", device), ("origin", origin), ("availability", .array(availability))]
        if availability.count > 1 { o.append(("availability_mode", .string("all"))) }
        return Message(topic: configTopic(component, object), payload: .object(o + fields))
    }

    func sensor(_ unit: String?, _ deviceClass: String?, _ stateClass: String?) -> [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let unit { o.append(("unit_of_measurement", .string(unit))) }
        if let deviceClass { o.append(("device_class", .string(deviceClass))) }
        if let stateClass { o.append(("state_class", .string(stateClass))) }
        return o
    }

    func state(_ topic: String, _ template: String) -> [(String, JSONValue)] {
        [("state_topic", .string(topic)), ("value_template", .string(template))]
    }

    /// The site's entities: the control state, the queue, the opt-out button.
    var siteConfigs: [Message] {
        let dev = siteDevice
        let avail = [agentAvailability]
        return [
            config(component: "sensor", object: "limit", name: "Limit", device: dev, availability: avail,
                   fields: state(stateTopic, "{{ value_json.limit_w }}") + sensor("W", "power", "measurement")),
            config(component: "sensor", object: "applied_current", name: "Applied current", device: dev, availability: avail,
                   fields: state(stateTopic, "{{ value_json.applied_a }}") + sensor("A", "current", "measurement")),
            config(component: "sensor", object: "source", name: "Control source", device: dev, availability: avail,
                   fields: state(stateTopic, "{{ value_json.source.split(':')[0] }}") + sensor(nil, "enum", nil)
                       + [("options", .array(Self.sourceKinds.map { .string($0) })),
                          ("json_attributes_topic", .string(stateTopic)),
                          ("json_attributes_template", .string("{{ {'source': value_json.source, 'events': value_json.events} | tojson }}"))]),
            config(component: "binary_sensor", object: "comm", name: "Utility link", device: dev, availability: avail,
                   fields: state(stateTopic, "{{ 'ON' if value_json.comm.ok else 'OFF' }}") + sensor(nil, "connectivity", nil)),
            config(component: "sensor", object: "next_transition", name: "Next transition", device: dev, availability: avail,
                   fields: state(stateTopic, "{{ value_json.next_transition }}") + sensor(nil, "timestamp", nil)),
            config(component: "sensor", object: "queue_records", name: "Queue depth", device: dev, availability: avail,
                   fields: state(siteTopic, "{{ value_json.queue_records }}") + sensor("records", nil, "measurement")
                       + [("entity_category", .string("diagnostic"))]),
            config(component: "button", object: "opt_out", name: "Opt out", device: dev, availability: avail,
                   fields: [("command_topic", .string(optOutTopic)), ("payload_press", .string(Self.optOutPayload)),
                            ("qos", .number(0)), ("retain", .bool(false))]),
        ]
    }

    func deviceConfigs(_ d: Device) -> [Message] {
        let topic = deviceTopic(d.name)
        let avail = [agentAvailability,
                     .object([("topic", .string(topic)), ("value_template", .string("{{ 'online' if value_json.ok else 'offline' }}"))])]
        return Self.readings.filter { d.points.contains($0.point) }.map { r in
            let template = r.component == "binary_sensor"
                ? "{{ 'ON' if value_json.\(r.key) else 'OFF' }}" : "{{ value_json.\(r.key) }}"
            return config(component: r.component, object: "\(d.name)-\(r.key)", name: r.name, device: deviceBlock(d),
                          availability: avail, fields: state(topic, template) + sensor(r.unit, r.deviceClass, r.stateClass))
        }
    }

    /// Every discovery config, site first, then the devices in configuration order.
    public var configs: [Message] { siteConfigs + devices.flatMap(deviceConfigs) }

    /// The retained topics discovery owns: the configs and the `root/ha/...` state topics.
    public var retainedTopics: [String] { configs.map(\.topic) + [siteTopic] + devices.map { deviceTopic($0.name) } }

    /// Topics published before (`previous`, from the record in state_dir) that are not published
    /// now: each gets an empty retained message, which removes the entity from Home Assistant.
    public static func removed(previous: [String], current: [String]) -> [String] {
        let now = Set(current)
        return previous.filter { !now.contains($0) }
    }

    /// `root/ha/device/<name>`: every reading key of the device, null when unknown (Home
    /// Assistant shows "unknown" for a template that renders None), and `ok`.
    public func readingsPayload(_ d: Device, ok: Bool, value: (String) -> Double?) -> JSONValue {
        var o: [(String, JSONValue)] = [("ok", .bool(ok))]
        for r in Self.readings where d.points.contains(r.point) {
            guard ok, let v = value(r.point), v.isFinite else { o.append((r.key, .null)); continue }
            if r.component == "binary_sensor" {
                o.append((r.key, .bool(v != 0)))
            } else {
                o.append((r.key, .number(r.scale == 1 ? v : (v * r.scale * 1000).rounded() / 1000)))
            }
        }
        return .object(o)
    }

    /// `root/ha/site`.
    public func sitePayload(queueRecords: Int) -> JSONValue {
        .object([("queue_records", .number(Double(queueRecords)))])
    }

    /// What the opt-out button opts out of: the event or schedule that sets the Target now
    /// (`dispatch:<id>` or `schedule:<id>`), as the id `cmd/optout` and `gridlet optout` take.
    public static func optOutTarget(targetSource: String?) -> String? {
        guard let s = targetSource else { return nil }
        for p in ["dispatch:", "schedule:"] where s.hasPrefix(p) { return String(s.dropFirst(p.count)) }
        return nil
    }
}
