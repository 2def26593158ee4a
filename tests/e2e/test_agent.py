"""End-to-end tests of the real gridlet binary against real parts (see conftest.py)."""
import json
import os
import subprocess
import time

import pytest
from pymodbus.client import ModbusTcpClient

from conftest import GRIDLET, SDM630_VALUES, wait_until

F32 = 1e-6


def close(a, b, rel=1e-6):
    return abs(a - b) <= max(1e-6, abs(b) * rel)


def charger_registers(port, address, count, table="input"):
    c = ModbusTcpClient("127.0.0.1", port=port)
    assert c.connect()
    try:
        if table == "input":
            r = c.read_input_registers(address, count=count, device_id=255)
        else:
            r = c.read_holding_registers(address, count=count, device_id=255)
        assert not r.isError(), r
        return r.registers
    finally:
        c.close()


def test_telemetry_values_equal_the_devices(site):
    agent = site.make_agent(telemetry="1s")
    util = site.make_collector()
    agent.start()
    t = util.wait_for("telemetry", lambda p: p["devices"]["meter"].get("ok") and p["devices"]["evse"].get("ok"), timeout=15)
    m = t["devices"]["meter"]
    # The meter is pymodbus (not our code): every value must be the one it serves.
    assert close(m["power_w"], SDM630_VALUES[52])
    assert close(m["import_wh"], SDM630_VALUES[72] * 1000)
    assert close(m["export_wh"], SDM630_VALUES[74] * 1000)
    assert [round(v, 4) for v in m["voltage_v"]] == [SDM630_VALUES[0], SDM630_VALUES[2], SDM630_VALUES[4]]
    assert [round(v, 4) for v in m["current_a"]] == [SDM630_VALUES[6], SDM630_VALUES[8], SDM630_VALUES[10]]
    assert close(m["frequency_hz"], SDM630_VALUES[70])
    # The charger is the frozen simulator; read its registers independently with pymodbus.
    regs = charger_registers(site.charger.port, 1008, 14)
    e = t["devices"]["evse"]
    assert e["current_a"] == [regs[0] / 1000, regs[2] / 1000, regs[4] / 1000]
    assert e["voltage_v"] == [regs[6], regs[8], regs[10]]
    power = charger_registers(site.charger.port, 1020, 2)
    assert e["power_w"] == power[0] * 65536 + power[1]
    # Record framing: seq, ts, historical, control block.
    assert isinstance(t["seq"], int) and t["historical"] is False
    assert t["ts"].endswith("Z") and len(t["ts"]) == 24
    assert set(t["control"]) == {"limit_w", "applied_a", "source"}
    # Retained status with boot id, state with the fields the spec lists.
    status = util.wait_for("status", lambda p: p.get("online") is True)
    assert len(status["boot"]) == 36 and status["version"]
    state = util.wait_for("state")
    for key in ("limit_w", "applied_a", "paused", "source", "events", "comm", "clock_synced", "next_transition", "devices"):
        assert key in state
    # The local CLI shows the same readings from the daemon.
    st = agent.status()
    assert st["mqtt"]["connected"] is True
    assert close(st["devices"]["meter"]["power_w"], SDM630_VALUES[52])
    assert st["queue"]["records"] >= 0
    r = subprocess.run([GRIDLET, "read", "meter", "power_w", "--json", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert close(json.loads(r.stdout)["points"]["power_w"]["value"], SDM630_VALUES[52])
    assert agent.stop() == 0
    offline = util.wait_for("status", lambda p: p.get("online") is False)
    assert offline["boot"] == status["boot"]


def test_dispatch_pause_cancel_and_failsafe(site):
    agent = site.make_agent()
    util = site.make_collector()
    agent.start()
    ch = site.charger
    # At start: the charger's own failsafe (2000 = fallback 4140 W -> 6 A, 2002 = 8 s) and the default (16 A).
    wait_until(lambda: ch.last_value(2000) == 6 and ch.last_value(2002) == 8, 15, what="failsafe registers")
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="default 16 A")

    util.publish("event", {"id": "evt-42", "duration_s": 600, "limit_w": 4140})
    reply = util.wait_for("reply", lambda p: p.get("id") == "evt-42")
    assert reply == {"cmd": "event", "id": "evt-42", "ok": True}
    wait_until(lambda: ch.last_value(5004) == 6, 10, what="6 A on 5004")
    r1 = util.wait_for("responses", lambda p: p["event"] == "evt-42" and p["status"] == 1)
    r2 = util.wait_for("responses", lambda p: p["event"] == "evt-42" and p["status"] == 2)
    assert r1["status_name"] == "received" and r2["status_name"] == "started" and r2["seq"] > r1["seq"]
    state = util.wait_for("state", lambda p: p["source"] == "dispatch:evt-42")
    assert state["events"] == ["evt-42"] and state["applied_a"] == 6

    # 1000 W is below 6 A on three phases: pause at 0 A.
    util.publish("event", {"id": "evt-42", "duration_s": 600, "limit_w": 1000})
    wait_until(lambda: ch.last_value(5004) == 0, 10, what="pause (0 A)")
    util.wait_for("state", lambda p: p["paused"] is True and p["applied_a"] == 0)

    # Cancel restores the default.
    util.publish("cancel", {"id": "evt-42"})
    util.wait_for("reply", lambda p: p.get("cmd") == "cancel" and p.get("ok") is True)
    util.wait_for("responses", lambda p: p["event"] == "evt-42" and p["status"] == 6)
    wait_until(lambda: ch.last_value(5004) == 16, 10, what="restore to 16 A")
    util.wait_for("state", lambda p: p["source"] == "default" and p["applied_a"] == 16)

    # The alive register is refreshed at least every failsafe_timeout/4 (8 s / 4 = 2 s).
    wait_until(lambda: len(ch.writes(6000)) >= 3, 10, what="three alive writes")
    alive = [w["ts_ms"] for w in ch.writes(6000)]
    gaps = [b - a for a, b in zip(alive, alive[1:])]
    assert max(gaps) <= 2600, gaps

    # An event already over: understood, rejected as expired.
    util.publish("event", {"id": "old-1", "start": "2020-01-01T00:00:00.000Z", "duration_s": 60, "limit_w": 0})
    assert util.wait_for("reply", lambda p: p.get("id") == "old-1")["ok"] is True
    util.wait_for("responses", lambda p: p["event"] == "old-1" and p["status"] == 254)
    assert agent.stop() == 0


@pytest.mark.parametrize("payload,code,path,event_id", [
    (b"{not json", "invalid_json", "", None),
    ({"id": "bad-1", "duration_s": 600, "limit_w": -5}, "invalid", "limit_w", "bad-1"),
    ({"id": "bad-2", "duration_s": 600, "limit_w": 3000, "colour": "red"}, "unknown_field", "colour", "bad-2"),
    ({"id": "bad-3", "limit_w": 3000}, "missing_field", "duration_s", "bad-3"),
    ({"id": "bad-4", "duration_s": 0, "limit_w": 3000}, "invalid", "duration_s", "bad-4"),
])
def test_bad_commands_are_refused_and_change_nothing(site, payload, code, path, event_id):
    agent = site.make_agent()
    util = site.make_collector()
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="default 16 A")
    writes_before = [w["values"][0] for w in ch.writes(5004)]
    util.publish("event", payload)
    reply = util.wait_for("reply", lambda p: p.get("ok") is False)
    assert reply["cmd"] == "event"
    assert reply["error"]["code"] == code and reply["error"]["path"] == path
    assert reply["error"]["message"]
    if event_id:
        assert reply["id"] == event_id
        util.wait_for("responses", lambda p: p["event"] == event_id and p["status"] == 253)
    # Still running, still answering, limit unchanged.
    util.publish("ping", {})
    util.wait_for("reply", lambda p: p.get("cmd") == "ping" and p.get("ok") is True)
    time.sleep(0.5)
    assert set(w["values"][0] for w in ch.writes(5004)[len(writes_before):]) <= {16}
    assert agent.status()["state"]["source"] == "default"
    assert agent.proc.poll() is None


def test_comm_loss_fallback_and_replay_in_order(site):
    agent = site.make_agent(telemetry="500ms", comm_loss="3s")
    util = site.make_collector()
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="default 16 A")
    util.wait_for("telemetry", lambda p: p["historical"] is False, timeout=10)

    site.broker.stop()
    stopped_at = time.monotonic()
    # Fallback 4140 W -> 6 A within comm_loss_timeout + 2 s.
    wait_until(lambda: ch.last_value(5004) == 6, 3 + 2 + 0.5, what="fallback current")
    assert time.monotonic() - stopped_at <= 5.5
    time.sleep(2)
    site.broker.start()
    # Comm back restores the default.
    wait_until(lambda: ch.last_value(5004) == 16, 40, what="restore after comm returns")
    # Everything produced meanwhile arrives, once, in order, flagged historical.
    def caught_up():
        t = util.of("telemetry")
        seqs = sorted({p["seq"] for _, p in util.seq_records()})
        return (t and t[-1]["historical"] is False and any(p["historical"] for p in t)
                and seqs == list(range(seqs[0], seqs[-1] + 1)))
    wait_until(caught_up, 40, what="backlog replayed and live telemetry again")
    records = util.seq_records()
    seqs = [p["seq"] for _, p in records]
    assert len(seqs) == len(set(seqs)), "a record arrived twice"
    assert sorted(seqs) == list(range(min(seqs), max(seqs) + 1)), "a record is missing"
    # The backlog drains oldest first; live records flow alongside it, each stream in order.
    historical = [p for topic, p in records if topic == "telemetry" and p["historical"]]
    live = [p for topic, p in records if topic == "telemetry" and not p["historical"]]
    assert [p["seq"] for p in historical] == sorted(p["seq"] for p in historical), "backlog out of order"
    assert [p["seq"] for p in live] == sorted(p["seq"] for p in live), "live records out of order"
    assert len(historical) >= 8  # ~0.5 s telemetry during a >= 5 s outage

    assert agent.stop() == 0


def test_kill9_and_restart_lose_no_queued_record(site):
    agent = site.make_agent(telemetry="200ms")
    util = site.make_collector()
    agent.start()
    first = util.wait_for("telemetry", timeout=15)
    site.broker.stop()
    time.sleep(2)
    st = agent.status()
    pending_below = st["queue"]["next_seq"]
    assert st["queue"]["records"] >= 5
    agent.kill9()
    site.broker.start()
    agent.start()
    def got_all():
        seqs = {p["seq"] for _, p in util.seq_records()}
        return all(s in seqs for s in range(first["seq"], pending_below))
    wait_until(got_all, 30, what="every record queued before kill -9")
    new = util.wait_for("telemetry", lambda p: p["seq"] >= pending_below and p["historical"] is False, timeout=15)
    assert new["seq"] >= pending_below  # seq continues, never back
    recovered = [p for t, p in util.seq_records() if t == "telemetry" and first["seq"] < p["seq"] < pending_below]
    assert recovered and all(p["historical"] for p in recovered[-3:])
    assert agent.stop() == 0


def test_config_check_exit_codes(workdir):
    bad = os.path.join(workdir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("site:\n  id: s1\nbuses:\n  - name: lan\n    kind: tcp\n    host: 127.0.0.1\n"
                "devices:\n  - name: m\n    bus: nowhere\n    profile: eastron-sdm630\nmqtt:\n  host: 127.0.0.1\n")
    r = subprocess.run([GRIDLET, "config", "check", bad], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "devices[0].bus" in r.stderr and ":9" in r.stderr
    good = os.path.join(workdir, "good.yaml")
    with open(good, "w") as f:
        f.write("site:\n  id: s1\nbuses:\n  - name: lan\n    kind: tcp\n    host: 127.0.0.1\n"
                "devices:\n  - name: m\n    bus: lan\n    profile: eastron-sdm630\nmqtt:\n  host: 127.0.0.1\n")
    r = subprocess.run([GRIDLET, "config", "check", good], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([GRIDLET, "config", "check", os.path.join(workdir, "missing.yaml")], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "missing.yaml" in r.stderr
    r = subprocess.run([GRIDLET, "status", "--socket", os.path.join(workdir, "none.sock")], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "gridlet run" in r.stderr
    r = subprocess.run([GRIDLET, "frobnicate"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2


def test_systemd_notify_ready_watchdog_stopping(site):
    """Type=notify: READY=1 after start, WATCHDOG=1 from the loop at half WATCHDOG_USEC, STOPPING=1."""
    import socket as pysocket
    path = os.path.join(site.workdir, "notify.sock")
    sock = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    agent = site.make_agent()
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    agent.log = open(agent.log_path, "ab")
    agent.proc = subprocess.Popen([GRIDLET, "run", "--config", agent.config], stdout=agent.log, stderr=agent.log, env=env)
    got = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except OSError:
            pass
    assert any("READY=1" in m for m in got), got
    kicks = [m for m in got if "WATCHDOG=1" in m]
    assert len(kicks) >= 5, got  # every 0.5 s for ~3.5 s
    assert agent.stop() == 0
    rest = []
    try:
        while True:
            rest.append(sock.recv(4096).decode())
    except OSError:
        pass
    assert any("STOPPING=1" in m for m in rest), rest
    sock.close()


def test_starts_without_any_broker_and_controls_locally(site):
    site.broker.stop()
    agent = site.make_agent(comm_loss="2s")
    agent.start()
    ch = site.charger
    # The charger's own failsafe is programmed and the fallback applied once comm_loss_timeout passes.
    wait_until(lambda: ch.last_value(2000) == 6, 10, what="failsafe programmed without a broker")
    wait_until(lambda: ch.last_value(5004) == 6, 10, what="fallback without a broker")
    st = wait_until(lambda: (lambda v: v if v["state"]["source"] == "fallback" else None)(agent.status()), 5,
                    what="status to show fallback")
    assert st["state"]["comm"]["ok"] is False
    assert st["mqtt"]["connected"] is False
    # When a broker appears, it connects and the queued telemetry arrives flagged historical.
    import datetime
    broker_up = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    site.broker.start()
    util = site.make_collector()
    wait_until(lambda: ch.last_value(5004) == 16, 40, what="default after the broker appears")
    t = util.wait_for("telemetry", lambda p: p["historical"] is True and p["devices"]["evse"]["ok"], timeout=30)
    # Produced before any broker existed, kept in the queue, delivered once one appeared.
    assert t["ts"] < broker_up
    assert agent.stop() == 0


def test_dead_devices_do_not_make_the_agent_spin(site):
    """A charger that refuses every connection must not turn retries into a busy loop."""
    agent = site.make_agent()
    agent.start()
    wait_until(lambda: site.charger.last_value(5004) == 16, 15, what="default 16 A")
    site.charger.stop()
    site.meter.stop()
    time.sleep(2)

    def ticks():
        with open(f"/proc/{agent.proc.pid}/stat") as f:
            x = f.read().split()
        return int(x[13]) + int(x[14])

    t0 = ticks()
    time.sleep(5)
    used = (ticks() - t0) / os.sysconf("SC_CLK_TCK")
    assert used < 0.5, f"{used:.2f} s of CPU in 5 s with both devices gone"
    st = agent.status()
    assert st["state"]["devices"]["evse"]["ok"] is False
    assert "refused" in st["devices"]["evse"]["error"]
    assert agent.stop() == 0
