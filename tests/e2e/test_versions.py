"""Versions of the remote sets end to end: a stale cmd/events version is refused with the version
in force, `gridlet version reset` lets a lower one in, and the same retained set delivered again
after a restart is still acknowledged (and does not move an event anchored at its first receipt)."""
import json
import subprocess

from conftest import GRIDLET


def gridlet(*args):
    return subprocess.run([GRIDLET, *args], capture_output=True, text=True, timeout=20)


def events_set(version, event_id):
    return {"version": version, "events": [{"id": event_id, "duration_s": 3600, "limit_w": 4140}]}


def send(util, payload, retain=False):
    """Publishes a cmd/events and returns its reply (the first one after this publish)."""
    start = len(util.of("reply"))
    util.publish("events", payload, retain=retain)
    return util.wait_for("reply", lambda p: p.get("cmd") == "events", timeout=15, start=start)


def stored_events(agent):
    r = gridlet("events", "--json", "--config", agent.config)
    assert r.returncode == 0, r.stderr
    return {e["id"]: e for e in json.loads(r.stdout)["events"]}


def test_stale_version_then_reset_lets_a_lower_version_in(site):
    agent = site.make_agent()
    util = site.make_collector()
    agent.start()
    util.wait_for("status", lambda p: p.get("online") is True, timeout=15)

    assert send(util, events_set(5, "v5"))["ok"] is True
    reply = send(util, events_set(3, "v3"))
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == "stale_version" and reply["error"]["current_version"] == 5, reply
    assert "gridlet version reset events" in reply["error"]["message"]
    assert set(stored_events(agent)) == {"v5"}, "a stale set changes nothing"

    r = gridlet("version", "reset", "events", "--config", agent.config)
    assert r.returncode == 0, r.stderr
    assert "events version reset (was version 5)" in r.stdout, r.stdout
    assert set(stored_events(agent)) == {"v5"}, "a reset alone keeps what is stored"

    assert send(util, events_set(3, "v3"))["ok"] is True
    assert set(stored_events(agent)) == {"v3"}
    # Counting goes on from the new version.
    reply = send(util, events_set(2, "v2"))
    assert reply["error"]["code"] == "stale_version" and reply["error"]["current_version"] == 3, reply

    r = gridlet("version", "reset", "schedules", "--json", "--config", agent.config)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"ok": True, "set": "schedules", "previous_version": -1}
    assert gridlet("version", "reset", "nonsense", "--config", agent.config).returncode == 2

    assert agent.stop() == 0
    r = gridlet("version", "reset", "events", "--config", agent.config)
    assert r.returncode == 1
    assert "cannot reach the daemon" in r.stderr and "sudo systemctl start gridlet" in r.stderr, r.stderr


def test_the_same_retained_set_is_ok_again_after_a_restart(site):
    agent = site.make_agent()
    util = site.make_collector()
    agent.start()
    util.wait_for("status", lambda p: p.get("online") is True, timeout=15)

    # No start/created: the event is anchored at its first receipt.
    assert send(util, events_set(7, "kept"), retain=True)["ok"] is True
    first = stored_events(agent)["kept"]

    assert agent.stop() == 0
    start = len(util.of("reply"))
    agent.start()
    # The broker delivers the retained set again when the agent subscribes anew.
    reply = util.wait_for("reply", lambda p: p.get("cmd") == "events", timeout=20, start=start)
    assert reply["ok"] is True, reply
    again = stored_events(agent)["kept"]
    assert (again["effective_start"], again["end"]) == (first["effective_start"], first["end"]), "the window did not move"
    assert agent.stop() == 0
