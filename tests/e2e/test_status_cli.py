"""`gridlet status` for people (docs/operations.md): text with units and local times, problems
first, --json unchanged, --watch bounded by --count and ended by Ctrl-C."""
import json
import signal
import subprocess
import time

from conftest import GRIDLET, wait_until


def status(agent, *args):
    r = subprocess.run([GRIDLET, "status", "--config", agent.config, *args], capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_status_text_json_and_watch(site):
    agent = site.make_agent(telemetry="1s")
    agent.start()
    wait_until(lambda: agent.status()["state"]["applied_a"] == 16, 15, what="the charger at 16 A")
    text = status(agent)
    lines = text.splitlines()
    assert lines[0].startswith("gridlet e2e, ") and lines[0].endswith(" UTC (UTC)"), lines[0]
    assert "problems   none" in lines or any(l.startswith("PROBLEM    clock not synchronised") for l in lines), text
    assert "limit      11.04 kW, chargers at 16 A" in lines, text
    assert "source     default (no event or schedule)" in lines, text
    # pymodbus serves the meter: 4318.25 W, 229.5/230.25/231 V, 12345.5 kWh.
    meter = next(l for l in lines if l.startswith("meter "))
    assert "4.32 kW   229.5 / 230.3 / 231.0 V" in meter and "import 12345.5 kWh" in meter and "s ago)" in meter, meter

    # --json is the daemon's document as before (plus site and mqtt.last_contact).
    doc = json.loads(status(agent, "--json"))
    assert {"state", "devices", "queue", "mqtt", "buses"} <= set(doc) and doc["site"] == {"id": "e2e", "timezone": "UTC"}

    # A dispatch: the source explained with its end and what follows.
    util = site.make_collector()
    util.publish("event", {"id": "evt-1", "duration_s": 600, "limit_w": 4800})
    wait_until(lambda: agent.status()["state"]["source"] == "dispatch:evt-1", 10, what="the dispatch")
    src = next(l for l in status(agent).splitlines() if l.startswith("source"))
    assert src.startswith("source     dispatch evt-1 until ") and src.endswith(", then default"), src

    # --watch --line --count 3: three lines about a second apart.
    t0 = time.monotonic()
    out = status(agent, "--watch", "--line", "--count", "3").splitlines()
    assert len(out) == 3 and all(" UTC  dispatch evt-1 until " in l and "limit 4.80 kW" in l for l in out), out
    assert 1.0 < time.monotonic() - t0 < 6

    # --watch redraws until Ctrl-C, then exits 0.
    p = subprocess.Popen([GRIDLET, "status", "--config", agent.config, "--watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=5)
    assert p.returncode == 0, err
    assert out.count(b"\x1b[H\x1b[2J") >= 2 and b"limit      4.80 kW" in out

    # A device that stops answering is a problem, in words, at the top.
    site.charger.stop()
    wait_until(lambda: not agent.status()["state"]["devices"]["evse"]["ok"], 15, what="evse not answering")
    lines = status(agent).splitlines()
    assert lines[1].startswith("PROBLEM    evse not answering: evse (unit 255 on lan): "), lines
    assert "; last reading " in lines[1] and " UTC, " in lines[1]
    assert "PROBLEM    limit derated to the fallback: charger evse does not answer or reports a fault" in lines, lines
