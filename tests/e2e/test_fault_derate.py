"""A charger that says it is in fault derates the site (SPEC §2 SafetyDerate): the simulated
Vestel goes into fault mid-run (charge_point_state 8 = Faulted, its profile's control.fault), the
setpoint register 5004 drops to the fallback amps, the state and `gridlet status --json` say why,
the journal says it once, and the default returns when the fault clears."""
import subprocess

from conftest import GRIDLET, wait_until

REASON = "faulted (charge_point_state = 8)"


def test_charger_fault_derates_to_the_fallback_and_the_state_says_why(site):
    agent = site.make_agent()
    util = site.make_collector()
    agent.start()
    ch = site.charger
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="default 16 A")
    assert "fault" not in agent.status()["state"]["devices"]["evse"]

    ch.set_fault("device")
    # fallback_limit_w 4140 W over 3 x 230 V = 6 A.
    wait_until(lambda: ch.last_value(5004) == 6, 15, what="the fallback 6 A while the charger is in fault")
    state = wait_until(lambda: (lambda s: s if s["source"] == "derate:evse_fault" else None)(agent.status()["state"]), 5,
                       what="status to show the derate")
    assert state["devices"]["evse"]["fault"] == REASON
    assert state["limit_w"] == 4140 and state["applied_a"] == 6
    util.wait_for("state", lambda p: p["source"] == "derate:evse_fault" and p["devices"]["evse"].get("fault") == REASON)

    ch.set_fault("none")
    wait_until(lambda: ch.last_value(5004) == 16, 15, what="the default 16 A after the fault cleared")
    state = wait_until(lambda: (lambda s: s if s["source"] == "default" else None)(agent.status()["state"]), 5,
                       what="status to show the default")
    assert "fault" not in state["devices"]["evse"]
    util.wait_for("state", lambda p: p["source"] == "default" and "fault" not in p["devices"]["evse"])

    log = agent.logtext()
    assert log.count(f"charger evse reports a fault: {REASON}") == 1, log
    assert log.count(f"charger evse no longer reports a fault (was: {REASON})") == 1, log


def test_simulating_a_device_fault_needs_a_profile_with_a_fault_point():
    r = subprocess.run([GRIDLET, "simulate", "eastron-sdm630", "--fault", "device", "--port", "1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "eastron-sdm630 names no fault point (control.fault)" in r.stderr
