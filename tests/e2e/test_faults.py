"""Fault-proofing of the real binary: no unsafe second after a restart during an outage."""
import time

from conftest import wait_until


def test_restart_during_outage_never_writes_above_fallback(site):
    """Broker down, fallback applied; kill -9 and restart while it is still down: from the first
    write after the restart the setpoint stays at the fallback (6 A = 4140 W on 3 x 230 V), and
    the state says comm is lost. Before comm state was persisted, the restarted agent drove the
    charger at the default (16 A) for another comm_loss_timeout."""
    agent = site.make_agent(telemetry="500ms", comm_loss="4s")
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="default 16 A")
    site.broker.stop()
    wait_until(lambda: ch.last_value(5004) == 6, 4 + 3, what="fallback current")
    agent.kill9()
    before = len(ch.writes(5004))
    agent.start()
    wait_until(lambda: agent.status()["state"]["comm"]["ok"] is False and len(ch.writes(5004)) > before, 15,
               what="the restarted agent to write its setpoint")
    time.sleep(6)  # longer than comm_loss_timeout: a fresh comm state would have run at 16 A until now
    after = [w["values"][0] for w in ch.writes(5004)[before:]]
    assert after and all(v <= 6 for v in after), f"written after the restart: {after}"
    st = agent.status()["state"]
    assert st["source"] == "fallback", st
    assert "comm lost since before the restart" in agent.logtext()
    # Contact returns: the usual restore (delay, random, ramp) brings the default back.
    site.broker.start()
    wait_until(lambda: ch.last_value(5004) == 16, 60, what="restore after comm returns")
    assert agent.stop() == 0


def test_oversized_command_never_reaches_the_agent(site):
    """The agent announces an MQTT 5 Maximum Packet Size (64 KiB of payload plus room for topic and
    properties): the broker drops a larger command instead of delivering it, so it never reaches
    the agent's memory (before, the agent read it whole and replied too_large)."""
    import json
    agent = site.make_agent()
    util = site.make_collector()
    agent.start()
    util.wait_for("status", lambda p: p.get("online") is True, timeout=15)
    big = json.dumps({"id": "big", "duration_s": 60, "limit_w": 1, "pad": "x" * (100 * 1024)})
    util.client.publish(f"{site.root}/cmd/event", big, qos=1).wait_for_publish(5)
    util.publish("ping", {"id": "after"})
    util.wait_for("reply", lambda p: p.get("id") == "after", timeout=10)
    time.sleep(1)
    # (The agent's own check would reply too_large, without an id: the payload is not parsed.)
    reached = [p for p in util.of("reply") if p.get("id") == "big" or (p.get("error") or {}).get("code") == "too_large"]
    assert not reached, f"the oversized command reached the agent: {reached}"
    # A command just under the bound still arrives and is answered.
    ok = json.dumps({"id": "fits", "duration_s": 60, "limit_w": 4140, "opt_out": False})
    util.client.publish(f"{site.root}/cmd/event", ok, qos=1).wait_for_publish(5)
    assert util.wait_for("reply", lambda p: p.get("id") == "fits", timeout=10)["ok"] is True
    assert agent.stop() == 0
