"""Home Assistant MQTT discovery (docs/home-assistant.md): retained configs, their templates
evaluated with jinja2 as Home Assistant does (`value_json`), Home Assistant's birth message, the
opt-out button, and removal of a device that left the configuration."""
import json
import threading
import time

import jinja2
import paho.mqtt.client as mqtt

from conftest import SDM630_VALUES, Agent, wait_until

HA_SECTION = "homeassistant:\n  enabled: true\n"


class Retained:
    """The latest payload of every topic under homeassistant/# and the site root, plus counts."""

    def __init__(self, port, root, client_id="home-assistant"):
        self.lock = threading.Lock()
        self.latest = {}
        self.count = {}
        self.log = []  # (topic, payload bytes)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.subscribe([("homeassistant/#", 1), (f"{root}/#", 1)])
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.latest[msg.topic] = msg.payload
            self.count[msg.topic] = self.count.get(msg.topic, 0) + 1
            self.log.append((msg.topic, msg.payload))

    def configs(self):
        with self.lock:
            return {t: json.loads(p) for t, p in self.latest.items()
                    if t.startswith("homeassistant/") and t.endswith("/config") and p}

    def json(self, topic):
        with self.lock:
            p = self.latest.get(topic)
        return json.loads(p) if p else None

    def messages(self, topic):
        with self.lock:
            return [json.loads(p) for t, p in self.log if t == topic and p]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def render(template, payload):
    """A Home Assistant value template on an MQTT payload: `value` and `value_json`."""
    return jinja2.Environment().from_string(template).render(value=payload.decode(), value_json=json.loads(payload)).strip()


def test_discovery_configs_templates_birth_and_opt_out(site):
    agent = Agent(site.workdir, site.config_text(telemetry="1s") + HA_SECTION)
    agent.start()
    ha = Retained(site.broker.port, site.root)
    try:
        # Every device answered, and the readings topics carry values.
        wait_until(lambda: (ha.json(f"{site.root}/ha/device/meter") or {}).get("ok")
                   and (ha.json(f"{site.root}/ha/device/evse") or {}).get("ok")
                   and (ha.json(f"{site.root}/state") or {}).get("applied_a") == 16, 20, what="readings and state")
        configs = ha.configs()
        assert len(configs) == 7 + 10 + 9, sorted(configs)  # site, meter (3-phase SDM630), charger (Vestel EVC04)
        # Retained: a client that subscribes later gets them all from the broker.
        late = Retained(site.broker.port, site.root, "late")
        try:
            wait_until(lambda: len(late.configs()) == len(configs), 5, what="retained configs for a late subscriber")
        finally:
            late.close()

        telemetry = wait_until(lambda: next((t for t in reversed(ha.messages(f"{site.root}/telemetry"))
                                             if t["devices"]["meter"].get("ok") and t["devices"]["evse"].get("ok")), None), 10,
                               what="telemetry")
        state = ha.json(f"{site.root}/state")
        ids = set()
        for topic, c in configs.items():
            assert c["unique_id"].startswith("gridlet:e2e:") and c["unique_id"] not in ids, topic
            ids.add(c["unique_id"])
            assert c["device"]["identifiers"] and c["device"]["name"], topic
            assert c["origin"]["name"] == "gridlet"
            # Availability: gridlet's retained status, evaluated as Home Assistant does.
            for a in c["availability"]:
                assert render(a["value_template"], ha.latest[a["topic"]]) == "online", (topic, a)
            if "state_topic" not in c:
                continue
            value = render(c["value_template"], ha.latest[c["state_topic"]])
            component = topic.split("/")[1]
            obj = topic.split("/")[3]
            if component == "binary_sensor":
                assert value in ("ON", "OFF"), (topic, value)
                continue
            if c.get("device_class") == "enum":
                assert value in c["options"], (topic, value)
                assert value == state["source"].split(":")[0]
                continue
            if c.get("device_class") == "timestamp":
                assert value == str(state["next_transition"]), (topic, value)
                continue
            number = float(value)  # a number ...
            unit = c["unit_of_measurement"]
            # ... in the right unit: compare with what gridlet publishes in its own units.
            if obj == "limit":
                assert unit == "W" and number == state["limit_w"]
            elif obj == "applied_current":
                assert unit == "A" and number == 16
            elif obj == "queue_records":
                assert number >= 0 and number == int(number)
            else:
                dev, key = obj.split("-", 1)
                t = telemetry["devices"][dev]
                expected = {"W": lambda: t["power_w"], "kWh": lambda: t[key.replace("_energy", "_wh")] / 1000,
                            "V": lambda: t["voltage_v"][int(key[-1]) - 1], "A": lambda: t["current_a"][int(key[-1]) - 1],
                            "Hz": lambda: t["frequency_hz"]}[unit]()
                assert abs(number - expected) <= max(1e-3, abs(expected) * 1e-6), (topic, number, expected)
                if dev == "meter" and key == "import_energy":
                    assert number == SDM630_VALUES[72]  # pymodbus serves kWh; gridlet reads Wh; HA shows kWh
        assert {"W", "kWh", "V", "A", "Hz"} <= {c.get("unit_of_measurement") for c in configs.values()}

        # Home Assistant restarts: its birth message makes gridlet publish every config again.
        before = {t: ha.count[t] for t in configs}
        ha.client.publish("homeassistant/status", "online", qos=1)
        wait_until(lambda: all(ha.count[t] > before[t] for t in configs), 5, what="configs republished after homeassistant/status online")

        # The opt-out button: an event that allows opt-out runs, the button's command topic gets the press.
        ha.client.publish(f"{site.root}/cmd/event", json.dumps({"id": "evt-ha", "duration_s": 600, "limit_w": 4800, "opt_out": True}), qos=1)
        wait_until(lambda: (ha.json(f"{site.root}/state") or {}).get("source") == "dispatch:evt-ha", 10, what="the event running")
        button = configs["homeassistant/button/gridlet_e2e/opt_out/config"]
        ha.client.publish(button["command_topic"], button["payload_press"], qos=button.get("qos", 0))
        wait_until(lambda: [r for r in ha.messages(f"{site.root}/responses") if r["event"] == "evt-ha" and r["status"] == 4], 5,
                   what="response 4 for evt-ha")
        reply = wait_until(lambda: [r for r in ha.messages(f"{site.root}/reply") if r.get("cmd") == "ha/optout"], 5, what="the reply")
        assert reply[-1] == {"cmd": "ha/optout", "id": "evt-ha", "ok": True}
        wait_until(lambda: (ha.json(f"{site.root}/state") or {}).get("source") == "default", 5, what="back to default")
    finally:
        ha.close()
        agent.stop()


def test_a_device_removed_from_the_configuration_is_removed_from_home_assistant(site):
    text = site.config_text(telemetry="1s") + HA_SECTION
    agent = Agent(site.workdir, text)
    agent.start()
    ha = Retained(site.broker.port, site.root)
    try:
        wait_until(lambda: len(ha.configs()) == 26, 15, what="discovery")
        agent.stop()
        # The meter leaves the configuration (the charger stays).
        start = text.index("  - name: meter\n")
        end = text.index("  - name: evse\n")
        agent = Agent(site.workdir, text[:start] + text[end:])
        agent.start()
        wait_until(lambda: len(ha.configs()) == 7 + 9, 15, what="the meter's configs emptied")
        assert not [t for t in ha.configs() if "/meter-" in t]
        assert ha.latest[f"{site.root}/ha/device/meter"] == b""
    finally:
        ha.close()
        agent.stop()
    # Retained emptiness: a new subscriber sees no meter config at all.
    late = Retained(site.broker.port, site.root, "late")
    try:
        time.sleep(1)
        assert len(late.configs()) == 16 and not [t for t in late.configs() if "/meter-" in t]
    finally:
        late.close()
