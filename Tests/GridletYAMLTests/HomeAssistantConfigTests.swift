import GridletCore
import GridletYAML
import Testing

/// `homeassistant:` (docs/configuration.md, docs/home-assistant.md).
@Suite struct HomeAssistantConfigTests {
    func config(_ section: String) throws(YAMLError) -> GridletConfig {
        try parseConfig("""
        site: {id: s1}
        buses: [{name: lan, kind: tcp, host: 10.0.0.2}]
        devices: [{name: m, bus: lan, profile: p1}]
        mqtt: {host: b}
        \(section)
        """)
    }

    @Test func offByDefaultWithHomeAssistantsTopics() throws {
        let c = try config("")
        #expect(c.homeAssistant == HomeAssistantConfig(enabled: false, discoveryPrefix: "homeassistant", statusTopic: "homeassistant/status"))
        #expect(try config("homeassistant: {enabled: true}").homeAssistant.enabled)
        let custom = try config("homeassistant: {enabled: true, discovery_prefix: ha/disc, status_topic: ha/birth}").homeAssistant
        #expect(custom == HomeAssistantConfig(enabled: true, discoveryPrefix: "ha/disc", statusTopic: "ha/birth"))
    }

    @Test(arguments: [
        ("homeassistant: {enabeld: true}", "homeassistant.enabeld", "unknown key; did you mean 'enabled'?"),
        ("homeassistant: {enabled: maybe}", "homeassistant.enabled", "expected"),
        ("homeassistant: {discovery_prefix: 'home/#'}", "homeassistant.discovery_prefix", "without '+' or '#'"),
        ("homeassistant: {discovery_prefix: /ha}", "homeassistant.discovery_prefix", "'homeassistant'"),
        ("homeassistant: {status_topic: 'ha//status'}", "homeassistant.status_topic", "without empty levels"),
    ])
    func invalidKeysNameThePathAndLine(_ section: String, _ path: String, _ fragment: String) {
        do {
            _ = try config(section)
            Issue.record("expected an error at \(path)")
        } catch {
            #expect(error.path == path)
            #expect(error.line == 5)
            #expect(error.message.contains(fragment), "message: \(error.message)")
        }
    }
}
