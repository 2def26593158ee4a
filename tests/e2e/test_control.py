"""Control engine end to end: a local schedule window pauses the simulated charger, the
customer opts out locally, the energy ledger arrives over MQTT split by source, and the
CLI shows events and the next transitions."""
import datetime
import json
import os
import subprocess
import time

from conftest import GRIDLET, Agent, wait_until


def hhmm(dt):
    return dt.strftime("%H:%M")


def test_schedule_window_pauses_charger_optout_and_ledger(site):
    now = datetime.datetime.now(datetime.timezone.utc)
    frm, to = now - datetime.timedelta(minutes=2), now + datetime.timedelta(minutes=30)
    text = site.config_text("1s", "120s")
    text = text.replace("telemetry:\n  interval: 1s\n", "telemetry:\n  interval: 1s\n  ledger_interval: 1m\n")
    text += f"""schedules:
  - id: peak
    limit_w: 0
    from: "{hhmm(frm)}"
    to: "{hhmm(to)}"
    opt_out: true
    primacy: 100
"""
    agent = Agent(site.workdir, text)
    util = site.make_collector()
    agent.start()
    ch = site.charger
    # The window is active: the charger is paused, state says why.
    wait_until(lambda: ch.last_value(5004) == 0, 15, what="the schedule window pausing the charger")
    state = util.wait_for("state", lambda p: p["source"] == "schedule:peak", timeout=10)
    assert state["paused"] is True and state["schedules"] == ["peak"]

    r = subprocess.run([GRIDLET, "schedule", "--next", "--json", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    sched = json.loads(r.stdout)
    assert sched["active"] == ["peak"]
    assert any(t["source"] == "default" for t in sched["transitions"]), sched  # the window's end

    # A dispatch event that does not allow opt-out is refused locally with a reason.
    util.publish("event", {"id": "firm-1", "duration_s": 600, "limit_w": 0, "primacy": 5, "start": "2099-01-01T00:00:00.000Z"})
    util.wait_for("reply", lambda p: p.get("id") == "firm-1" and p["ok"] is True)
    r = subprocess.run([GRIDLET, "events", "--json", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert [e["id"] for e in json.loads(r.stdout)["events"]] == ["firm-1"]
    r = subprocess.run([GRIDLET, "optout", "firm-1", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "does not allow opt-out" in r.stderr

    # The customer opts out of the schedule window: response 4, the charger runs again.
    r = subprocess.run([GRIDLET, "optout", "peak", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    resp = util.wait_for("responses", lambda p: p["event"].startswith("schedule:peak@") and p["status"] == 4)
    assert resp["status_name"] == "opted_out"
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="the charger running after the opt-out")
    util.wait_for("state", lambda p: p["source"] == "default", timeout=10)

    # The ledger: the part under the schedule is its own record, from the meter's registers.
    led = util.wait_for("ledger", lambda p: p["source"] == "schedule:peak", timeout=20)
    assert led["estimated"] is False and "seq" in led
    assert led["from"] < led["to"]
    # pymodbus serves constant counters, so the energy in every record is exactly 0 Wh.
    assert led["import_wh"] == 0 and led["export_wh"] == 0
    assert agent.stop() == 0


def iso_ms(ms):
    dt = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def test_the_ledger_survives_a_restart(site):
    """The open ledger segment is saved (state_dir/ledger.json): after a stop and a start, it is
    closed with its own source at the last reading, and the time the agent was away follows as
    derate:agent_offline (estimated), contiguous with it."""
    text = site.config_text("1s", "120s")
    text = text.replace("telemetry:\n  interval: 1s\n", "telemetry:\n  interval: 1s\n  ledger_interval: 1m\n")
    agent = Agent(site.workdir, text)
    util = site.make_collector()
    agent.start()
    util.wait_for("telemetry", lambda p: p["devices"]["meter"]["ok"], timeout=15)
    time.sleep(1.5)
    assert agent.stop() == 0
    with open(os.path.join(site.workdir, "state", "ledger.json")) as f:
        saved = json.load(f)
    assert saved["seg_source"] == "default" and saved["estimated"] is False
    stopped_at = time.time()
    time.sleep(2)
    agent.start()
    closed = util.wait_for("ledger", lambda p: p["to"] == iso_ms(int(saved["t"])), timeout=15)
    assert closed["source"] == "default" and closed["estimated"] is False
    assert closed["from"] == iso_ms(int(saved["seg_start"]))
    # The outage (split at a minute boundary if one fell into it) runs from the saved reading to
    # the restart.
    back = iso_ms(int(stopped_at * 1000) + 1500)
    util.wait_for("ledger", lambda p: p["source"] == "derate:agent_offline" and p["to"] >= back, timeout=15)
    off = [p for p in util.of("ledger") if p["source"] == "derate:agent_offline"]
    assert off[0]["from"] == closed["to"], off
    for a, b in zip(off, off[1:]):
        assert a["to"] == b["from"], off
    assert all(p["estimated"] is True and p["import_wh"] == 0 for p in off), off
    # pymodbus serves constant counters: exactly 0 Wh, bridged or not.
    assert closed["import_wh"] == 0
    assert agent.stop() == 0
