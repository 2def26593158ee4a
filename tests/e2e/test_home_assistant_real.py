"""Home Assistant itself (2024.3.3, the last release for Debian 12's Python 3.11), headless, with
its MQTT integration on the test broker: it discovers gridlet's entities, shows their values in
the right units through its REST API, and its opt-out button opts out of a running event.
Skipped unless `scripts/install-deps --home-assistant` installed it in .build/ha-venv."""
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT, SDM630_VALUES, Agent, free_port, port_open, stop_process, wait_until

HASS = os.path.join(ROOT, ".build", "ha-venv", "bin", "hass")

pytestmark = pytest.mark.skipif(not os.path.exists(HASS), reason="Home Assistant not installed: scripts/install-deps --home-assistant")


class HomeAssistant:
    def __init__(self, workdir, mqtt_port):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = os.path.join(workdir, "ha")
        os.makedirs(os.path.join(self.dir, ".storage"))
        with open(os.path.join(self.dir, "configuration.yaml"), "w") as f:
            f.write("homeassistant:\n  name: gridlet-e2e\n  latitude: 0\n  longitude: 0\n  elevation: 0\n"
                    "  unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: DE\n"
                    f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\napi:\nauth:\n"
                    "logger:\n  default: warning\n")
        # The MQTT integration as its config flow would store it (YAML broker settings are gone).
        entry = {"entry_id": "0123456789abcdef0123456789abcdef", "version": 1, "minor_version": 1, "domain": "mqtt",
                 "title": "127.0.0.1", "data": {"broker": "127.0.0.1", "port": mqtt_port, "discovery": True},
                 "options": {}, "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user",
                 "unique_id": None, "disabled_by": None}
        with open(os.path.join(self.dir, ".storage", "core.config_entries"), "w") as f:
            json.dump({"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}, f)
        subprocess.run([HASS, "--script", "auth", "-c", self.dir, "add", "e2e", "e2e-password"], check=True,
                       capture_output=True, timeout=120)
        self.log = open(os.path.join(workdir, "ha.log"), "ab")
        self.proc = subprocess.Popen([HASS, "-c", self.dir, "--skip-pip"], stdout=self.log, stderr=self.log)
        wait_until(lambda: port_open(self.port), 120, interval=0.5, what="Home Assistant's HTTP port")
        self.token = self.login()

    def post(self, path, data, form=False, token=None):
        body = urllib.parse.urlencode(data).encode() if form else json.dumps(data).encode()
        req = urllib.request.Request(self.base + path, data=body, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded" if form else "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def login(self):
        cid = self.base + "/"
        flow = self.post("/auth/login_flow", {"client_id": cid, "handler": ["homeassistant", None], "redirect_uri": cid})
        done = self.post(f"/auth/login_flow/{flow['flow_id']}", {"client_id": cid, "username": "e2e", "password": "e2e-password"})
        return self.post("/auth/token", {"grant_type": "authorization_code", "code": done["result"], "client_id": cid},
                         form=True)["access_token"]

    def states(self):
        req = urllib.request.Request(self.base + "/api/states", headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(req, timeout=10) as r:
            return {s["entity_id"]: s for s in json.load(r)}

    def stop(self):
        stop_process(self.proc, timeout=30)


def test_home_assistant_discovers_gridlet_and_its_button_opts_out(site):
    agent = Agent(site.workdir, site.config_text(telemetry="1s") + "homeassistant:\n  enabled: true\n")
    agent.start()
    util = site.make_collector()
    ha = HomeAssistant(site.workdir, site.broker.port)
    try:
        def gridlet_states():
            s = {k: v for k, v in ha.states().items() if k.startswith(("sensor.gridlet_e2e", "binary_sensor.gridlet_e2e",
                                                                          "button.gridlet_e2e"))}
            ready = s.get("sensor.gridlet_e2e_meter_power", {}).get("state") not in (None, "unknown", "unavailable") \
                and s.get("sensor.gridlet_e2e_limit", {}).get("state") not in (None, "unknown", "unavailable")
            return s if ready and len(s) == 26 else None
        s = wait_until(gridlet_states, 60, interval=1, what="the gridlet entities with values in Home Assistant")

        def value(entity, unit):
            assert s[entity]["attributes"].get("unit_of_measurement") == unit, s[entity]
            return float(s[entity]["state"])
        state = agent.status()["state"]
        assert value("sensor.gridlet_e2e_limit", "W") == state["limit_w"]
        assert value("sensor.gridlet_e2e_applied_current", "A") == 16
        assert value("sensor.gridlet_e2e_meter_power", "W") == SDM630_VALUES[52]
        assert value("sensor.gridlet_e2e_meter_import_energy", "kWh") == SDM630_VALUES[72]
        assert value("sensor.gridlet_e2e_meter_export_energy", "kWh") == SDM630_VALUES[74]
        assert value("sensor.gridlet_e2e_meter_voltage_l1", "V") == SDM630_VALUES[0]
        assert value("sensor.gridlet_e2e_meter_current_l3", "A") == SDM630_VALUES[10]
        assert value("sensor.gridlet_e2e_meter_frequency", "Hz") == SDM630_VALUES[70]
        assert value("sensor.gridlet_e2e_evse_voltage_l1", "V") == 230
        assert s["sensor.gridlet_e2e_control_source"]["state"] == "default"
        assert s["sensor.gridlet_e2e_control_source"]["attributes"]["device_class"] == "enum"
        assert s["binary_sensor.gridlet_e2e_utility_link"]["state"] == "on"
        assert s["sensor.gridlet_e2e_meter_import_energy"]["attributes"]["state_class"] == "total_increasing"

        # The button in Home Assistant opts out of a running event that allows it.
        util.publish("event", {"id": "evt-ha", "duration_s": 600, "limit_w": 4800, "opt_out": True})
        wait_until(lambda: ha.states()["sensor.gridlet_e2e_control_source"]["state"] == "dispatch", 10,
                   what="Home Assistant showing the dispatch")
        ha.post("/api/services/button/press", {"entity_id": "button.gridlet_e2e_opt_out"}, token=ha.token)
        util.wait_for("responses", lambda r: r["event"] == "evt-ha" and r["status"] == 4, timeout=10)
        wait_until(lambda: ha.states()["sensor.gridlet_e2e_control_source"]["state"] == "default", 10,
                   what="Home Assistant back on default")

        # gridlet stops: its will/stop message makes every entity unavailable in Home Assistant.
        agent.stop()
        wait_until(lambda: all(v["state"] == "unavailable" for k, v in ha.states().items() if k.startswith("sensor.gridlet_e2e")),
                   10, what="the entities unavailable")
    finally:
        ha.stop()
        agent.stop()
