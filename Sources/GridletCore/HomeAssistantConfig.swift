/// `homeassistant:` (docs/home-assistant.md): whether gridlet announces its entities to Home
/// Assistant over MQTT discovery, and under which topics.
public struct HomeAssistantConfig: Sendable, Equatable {
    public var enabled: Bool               // default false
    /// Discovery configs go to `<discovery_prefix>/<component>/<node>/<object>/config`.
    public var discoveryPrefix: String     // default "homeassistant"
    /// Where Home Assistant announces itself (`online`); discovery is republished then.
    public var statusTopic: String         // default "homeassistant/status"
    public init(enabled: Bool = false, discoveryPrefix: String = "homeassistant", statusTopic: String = "homeassistant/status") {
        self.enabled = enabled; self.discoveryPrefix = discoveryPrefix; self.statusTopic = statusTopic
    }
}

extension ConfigDecoder {
    static let homeAssistantKeys = ["enabled", "discovery_prefix", "status_topic"]

    func decodeHomeAssistant(_ m: inout YAMLMap) throws(YAMLError) -> HomeAssistantConfig {
        try checkKeys(m, Self.homeAssistantKeys)
        var c = HomeAssistantConfig()
        c.enabled = try m.bool("enabled") ?? false
        if let p = try m.string("discovery_prefix") {
            guard Self.isPlainTopic(p) else {
                throw m.error("discovery_prefix", "must be MQTT topic levels without '+' or '#' and without empty levels (no leading, trailing or double '/'), got '\(p)'; Home Assistant's default is 'homeassistant'")
            }
            c.discoveryPrefix = p
        }
        if let t = try m.string("status_topic") {
            guard Self.isPlainTopic(t) else {
                throw m.error("status_topic", "must be an MQTT topic without '+' or '#' and without empty levels, got '\(t)'; Home Assistant's default is 'homeassistant/status'")
            }
            c.statusTopic = t
        }
        try m.finish()
        return c
    }

    /// Non-empty topic levels, no wildcards.
    static func isPlainTopic(_ t: String) -> Bool {
        !t.isEmpty && !t.contains("+") && !t.contains("#")
            && !t.split(separator: "/", omittingEmptySubsequences: false).contains(where: \.isEmpty)
    }
}
