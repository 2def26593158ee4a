"""Vehicle-to-grid end to end: the real agent drives gridlet's simulated SunSpec DER device and
Wallbox Quasar with signed setpoints (sign and scale factor as the device expects), export limits
and the SoC reserve, and the device reverts by itself when the agent is killed."""
import contextlib
import json
import os
import subprocess
import time

import pytest

from conftest import GRIDLET, Agent, Broker, Collector, Simulator, wait_until

V2G_CONFIG = """\
site:
  id: v2g
  timezone: UTC
  state_dir: {state}
  socket: {state}/gridlet.sock
  nominal_voltage: 230
buses:
  - name: lan
    kind: tcp
    host: 127.0.0.1
    port: {port}
    timeout: 300ms
    retries: 1
devices:
  - name: v2g
    bus: lan
    unit: 1
    profile: {profile}
    role: charger
    phases: 1
    max_current: 32
    poll: {poll}
{device_extra}mqtt:
  host: 127.0.0.1
  port: {mqtt_port}
  keepalive: 5s
telemetry:
  interval: 1s
{telemetry_extra}queue:
  max_bytes: 1MiB
control:
  comm_loss_timeout: 120s
  fallback_limit_w: 1400
  device_failsafe_timeout: 4s
  restore_delay: 0s
  restore_random: 0s
  ramp_w_per_s: 1000000
  min_dwell: 0s
"""


@contextlib.contextmanager
def v2g_site(workdir, profile, sim_args=(), device_extra="", telemetry_extra="", poll="500ms"):
    stops = []
    try:
        broker = Broker(workdir)
        broker.start()
        stops.append(broker.stop)
        sim = Simulator(profile, workdir, frozen=True, voltage=230, extra_args=sim_args)
        stops.append(sim.stop)
        text = V2G_CONFIG.format(state=os.path.join(workdir, "state"), port=sim.port, profile=profile,
                                 device_extra=device_extra, telemetry_extra=telemetry_extra, mqtt_port=broker.port,
                                 poll=poll)
        agent = Agent(workdir, text)
        stops.append(agent.stop)
        util = Collector(broker.port, "gridlet/v2g", "utility")
        stops.append(util.close)
        agent.start()
        yield sim, agent, util
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception as e:  # keep stopping the rest
                print("cleanup:", e)


def int32(words):
    v = (words[0] << 16) | words[1]
    return v - (1 << 32) if v & 0x80000000 else v


def int16(word):
    return word - 0x10000 if word & 0x8000 else word


def device_read(agent, *points):
    r = subprocess.run([GRIDLET, "read", "v2g", *points, "--json", "--config", agent.config],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def point(doc, name):
    """A point's value from `gridlet read --json` ({"points": {name: {"value":..,"unit":..}}})."""
    assert doc["ok"] is True, doc
    return doc["points"][name]["value"]


def telemetry_after(util, since, predicate=lambda p: True, timeout=10):
    return util.wait_for("telemetry", lambda p: p["ts"] > since and predicate(p), timeout=timeout)


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def test_sunspec_discharge_setpoint_is_written_with_its_sign_and_scale_factor(workdir):
    with v2g_site(workdir, "sunspec-der", sim_args=["--capacity-wh", "200", "--soc", "60"]) as (sim, agent, util):
        util.wait_for("state", lambda p: p.get("power", {}).get("export_source") == "hardware", timeout=15)
        util.publish("event", {"id": "reg-1", "duration_s": 600, "limit_w": 7360, "setpoint_w": -5000, "market": "caiso-reg"})
        util.wait_for("reply", lambda p: p.get("id") == "reg-1" and p["ok"] is True)
        # WSet (704, int32 at 40301, WSet_SF = 1 at 40332): SunSpec counts discharge as positive,
        # so -5000 W in gridlet's sign is +5000 W, i.e. 500 in the register.
        wait_until(lambda: [int32(w["values"]) for w in sim.writes(40301)][-1:] == [500], 10, what="WSet = 500")
        assert [w["values"] for w in sim.writes(40300)][:1] == [[1]]     # WSetMod: watts
        assert [w["values"] for w in sim.writes(40307)][:1] == [[1]]     # WSetEnaRvrt
        assert [w["values"] for w in sim.writes(40299)][:1] == [[1]]     # WSetEna
        assert [w["values"] for w in sim.writes(40308)][:1] == [[0, 4]]  # WSetRvrtTms = device_failsafe_timeout
        # WSetRvrt: the fallback share as a charge, in SunSpec's sign and scale: -1400 W -> -140.
        assert [int32(w["values"]) for w in sim.writes(40303)][:1] == [-140]
        # Telemetry: export, and the state of charge falling.
        first = telemetry_after(util, now_iso(), lambda p: p["devices"]["v2g"].get("power_w") == -5000)
        assert first["control"]["direction"] == "export"
        assert first["control"]["export_limit_w"] == 5000 and first["control"]["setpoint_w"] == -5000
        time.sleep(2)
        later = telemetry_after(util, now_iso())
        assert later["devices"]["v2g"]["soc_pct"] < first["devices"]["v2g"]["soc_pct"] - 1, (first, later)
        assert later["devices"]["v2g"]["power_w"] == -5000
        state = util.wait_for("state", lambda p: p.get("power", {}).get("market") == "caiso-reg")
        assert state["devices"]["v2g"]["direction"] == "export"
        # The 701 W register holds generation as positive.
        assert sim.writes(40080) == []
        assert agent.stop() == 0


def test_an_event_with_export_limit_zero_stops_discharging(workdir):
    with v2g_site(workdir, "wallbox-quasar", sim_args=["--capacity-wh", "60000", "--soc", "70"]) as (sim, agent, util):
        util.wait_for("state", lambda p: "power" in p, timeout=15)
        util.publish("event", {"id": "reg-1", "duration_s": 600, "limit_w": 7360, "setpoint_w": -5000})
        # The Quasar's setpoint (260, int16, W) is + charge: -5000 as it is.
        wait_until(lambda: [int16(w["values"][0]) for w in sim.writes(260)][-1:] == [-5000], 10, what="260 = -5000")
        telemetry_after(util, now_iso(), lambda p: p["devices"]["v2g"].get("power_w") == -5000)
        util.publish("event", {"id": "cap-0", "duration_s": 600, "limit_w": 7360, "setpoint_w": -5000, "export_limit_w": 0,
                               "primacy": 0})
        wait_until(lambda: [int16(w["values"][0]) for w in sim.writes(260)][-1:] == [0], 10, what="260 = 0")
        t = telemetry_after(util, now_iso(), lambda p: p["devices"]["v2g"].get("power_w") == 0)
        assert t["control"]["export_limit_w"] == 0 and t["control"]["export_source"] == "dispatch:cap-0"
        state = util.wait_for("state", lambda p: p.get("power", {}).get("export_limit_w") == 0)
        assert state["devices"]["v2g"]["limited_by"] == "export_limit"
        assert agent.stop() == 0


def test_soc_at_the_reserve_stops_discharging_with_the_reason_in_state(workdir):
    # 100 Wh at 23 %: -7000 W takes about 1 % per 0.5 s, so the 20 % reserve is reached in ~2 s.
    with v2g_site(workdir, "wallbox-quasar", sim_args=["--capacity-wh", "100", "--soc", "23"],
                  device_extra="    min_soc_pct: 20\n") as (sim, agent, util):
        util.wait_for("state", lambda p: "power" in p, timeout=15)
        util.publish("event", {"id": "reg-1", "duration_s": 600, "limit_w": 7360, "setpoint_w": -7000})
        wait_until(lambda: -7000 in [int16(w["values"][0]) for w in sim.writes(260)], 10, what="discharging")
        state = util.wait_for("state", lambda p: p["devices"]["v2g"].get("limited_by") == "soc_reserve", timeout=20)
        assert state["devices"]["v2g"]["setpoint_w"] == 0
        assert state["devices"]["v2g"]["soc_pct"] <= 20
        assert [int16(w["values"][0]) for w in sim.writes(260)][-1] == 0
        # It stays at the reserve (a poll interval's worth of overshoot at most), not below.
        time.sleep(2)
        soc = point(device_read(agent, "soc_pct"), "soc_pct")
        assert 18.5 <= soc <= 20, soc
        assert "at the reserve" in agent.logtext()
        # Charging is still allowed.
        util.publish("event", {"id": "chg", "duration_s": 600, "limit_w": 7360, "setpoint_w": 3000, "primacy": 0})
        wait_until(lambda: [int16(w["values"][0]) for w in sim.writes(260)][-1:] == [3000], 10, what="charging at the reserve")
        assert agent.stop() == 0


def test_kill9_of_the_agent_the_device_reverts_within_its_reversion_time(workdir):
    with v2g_site(workdir, "wallbox-quasar", sim_args=["--capacity-wh", "60000", "--soc", "70"]) as (sim, agent, util):
        util.wait_for("state", lambda p: "power" in p, timeout=15)
        util.publish("event", {"id": "reg-1", "duration_s": 600, "limit_w": 7360, "setpoint_w": -5000})
        wait_until(lambda: [int16(w["values"][0]) for w in sim.writes(260)][-1:] == [-5000], 10, what="260 = -5000")
        assert [w["values"] for w in sim.writes(88)][:1] == [[4]]   # idle timeout = device_failsafe_timeout
        # Refreshed at least every timeout/4 while the agent lives.
        time.sleep(3)
        stamps = [w["ts_ms"] for w in sim.writes(260)]
        assert len(stamps) >= 3 and all(b - a <= 1000 + 300 for a, b in zip(stamps, stamps[1:])), stamps
        agent.kill9()
        killed = time.monotonic()
        assert point(device_read(agent, "power_w"), "power_w") == -5000   # the device does not notice at once
        wait_until(lambda: point(device_read(agent, "power_w"), "power_w") == 0, 8, interval=0.2, what="the device reverting")
        took = time.monotonic() - killed
        assert took <= 4 + 1.0, took
        doc = device_read(agent, "control_mode", "setpoint_w")
        assert point(doc, "control_mode") == 0 and point(doc, "setpoint_w") == 0   # control back to the user
        with open(sim.log_path) as f:
            assert "reverted" in f.read()


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_iso(text):
    import datetime
    dt = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(round(dt.timestamp() * 1000))


def integrate(steps, a, b):
    """Import and export Wh of a piecewise-constant power (steps: [(t_ms, W)], + import) over [a, b)."""
    imp = exp = 0.0
    for (t, w), nxt in zip(steps, steps[1:] + [(b, None)]):
        lo, hi = max(t, a), min(nxt[0], b)
        if hi > lo:
            wh = w * (hi - lo) / 3_600_000
            if wh > 0:
                imp += wh
            else:
                exp -= wh
    return imp, exp


def test_award_hour_day_market_energy_apart_from_retail_to_the_wh(workdir):
    """Retail charging, then a regulation award (+/-5 kW alternating every 4 s for 60 s, market
    caiso-reg), then retail again: the ledger's market records hold exactly the device's energy in
    the award window and the retail records the rest, to the Wh (the device is the ledger meter)."""
    with v2g_site(workdir, "sunspec-der", sim_args=["--capacity-wh", "60000", "--soc", "40"], poll="200ms",
                  telemetry_extra="  ledger_interval: 1m\n") as (sim, agent, util):
        util.wait_for("state", lambda p: "power" in p, timeout=15)
        time.sleep(6)   # retail charging at the hardware maximum
        start = int(time.time() * 1000) + 3000
        event = {"id": "award-1", "start": iso(start), "duration_s": 60, "limit_w": 7360, "market": "caiso-reg"}
        for k in range(15):
            util.publish("event", {**event, "setpoint_w": 5000 if k % 2 == 0 else -5000})
            util.wait_for("reply", lambda p, n=len(util.of("reply")): p.get("id") == "award-1", start=len(util.of("reply")) - 1)
            time.sleep(max(0, (start + 4000 * (k + 1) - int(time.time() * 1000)) / 1000))
        end = start + 60_000
        # The market records are emitted right after the window; a retail record after it at the next minute.
        util.wait_for("ledger", lambda p: p.get("market") == "caiso-reg" and parse_iso(p["to"]) >= end, timeout=20)
        util.wait_for("ledger", lambda p: p.get("market") is None and parse_iso(p["from"]) >= end, timeout=75)
        records = util.of("ledger")
        market = [r for r in records if r.get("market") == "caiso-reg"]
        retail = [r for r in records if r.get("market") is None]
        # The window as the agent applied it: from the turn that saw the start to the one that saw the end.
        w_from, w_to = parse_iso(market[0]["from"]), parse_iso(market[-1]["to"])
        assert 0 <= w_from - start < 300 and 0 <= w_to - end < 300, (iso(start), market)
        assert all(r["source"] == "dispatch:award-1" for r in market)
        assert all(r["source"] == "default" for r in retail)
        # The device's power from its own write log: WSet (int32, x10, + = discharge) as written.
        steps = [(w["ts_ms"], -10 * int32(w["values"])) for w in sim.writes(40301)]
        m_imp, m_exp = integrate(steps, w_from, w_to)
        assert m_imp > 40 and m_exp > 30, (m_imp, m_exp)
        assert abs(sum(r["import_wh"] for r in market) - m_imp) < 1, (market, m_imp)
        assert abs(sum(r["export_wh"] for r in market) - m_exp) < 1, (market, m_exp)
        for r in retail:
            r_imp, r_exp = integrate(steps, parse_iso(r["from"]), parse_iso(r["to"]))
            assert abs(r["import_wh"] - r_imp) < 1 and r["export_wh"] < 1, (r, r_imp, r_exp)
        # gridlet ledger --by market prints the same split from state_dir/ledger.log.
        out = subprocess.run([GRIDLET, "ledger", "--by", "market", "--json", "--config", agent.config],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        rows = {r["market"]: r for r in json.loads(out.stdout)["rows"]}
        assert abs(rows["caiso-reg"]["export_wh"] - sum(r["export_wh"] for r in market)) < 0.002
        assert abs(rows["retail"]["import_wh"] - sum(r["import_wh"] for r in retail)) < 0.002
        text = subprocess.run([GRIDLET, "ledger", "--config", agent.config], capture_output=True, text=True, timeout=10)
        assert text.returncode == 0 and "caiso-reg" in text.stdout and "retail" in text.stdout, text
        assert agent.stop() == 0
