"""`gridlet queue stats|peek`: through the running daemon's socket (it holds the queue lock),
directly on the file when no daemon runs, and a clear error when the queue is locked but no
socket answers."""
import fcntl
import json
import os
import subprocess
import time

from conftest import GRIDLET, wait_until


def gridlet(*args):
    return subprocess.run([GRIDLET, *args], capture_output=True, text=True, timeout=20)


def test_queue_stats_and_peek_through_daemon_and_directly(site):
    agent = site.make_agent(telemetry="200ms")
    site.broker.stop()  # nothing is acked: the queue grows
    agent.start()
    wait_until(lambda: os.path.exists(os.path.join(site.workdir, "state", "gridlet.sock")), 15, what="socket")
    wait_until(lambda: agent.status()["queue"]["records"] >= 5, 15, what="5 queued records")

    r = gridlet("queue", "stats", "--json", "--config", agent.config)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["ok"] is True and st["records"] >= 5 and st["bytes"] > 0
    assert st["telemetry"]["records"] >= 5 and st["priority"]["capacity"] > 0
    assert st["capacity"] == st["telemetry"]["capacity"] + st["priority"]["capacity"]
    assert st["next_seq"] > st["records"] and st["skipped_on_recovery"] == 0 and st["dropped"] == 0
    assert st["oldest_age_s"] >= 0

    r = gridlet("queue", "peek", "--count", "3", "--json", "--config", agent.config)
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)["records"]
    assert len(recs) == 3
    assert [x["seq"] for x in recs] == sorted(x["seq"] for x in recs)
    assert recs[0]["kind"] == "telemetry" and "devices" in recs[0]["payload"]  # decoded JSON body
    human = gridlet("queue", "stats", "--config", agent.config)
    assert human.returncode == 0 and "records" in human.stdout and "next seq" in human.stdout, human

    assert agent.stop() == 0
    # No daemon: the file is opened read-only and says the same.
    r = gridlet("queue", "stats", "--json", "--config", agent.config)
    assert r.returncode == 0, r.stderr
    st2 = json.loads(r.stdout)
    assert st2["records"] >= st["records"]
    r = gridlet("queue", "peek", "--count", "2", "--json", "--config", agent.config)
    assert r.returncode == 0, r.stderr
    assert [x["seq"] for x in json.loads(r.stdout)["records"]] == [x["seq"] for x in recs[:2]]
    human = gridlet("queue", "peek", "--count", "1", "--config", agent.config)
    assert human.returncode == 0 and "telemetry" in human.stdout, human

    # Locked by someone else and no socket answers: a clear error, exit 1.
    with open(os.path.join(site.workdir, "state", "queue", "queue.dat"), "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = gridlet("queue", "stats", "--config", agent.config)
        assert r.returncode == 1
        assert "locked by a running gridlet" in r.stderr and "socket" in r.stderr, r.stderr
    # No queue at all.
    r = gridlet("queue", "stats", "--config", agent.config, "--queue-dir", os.path.join(site.workdir, "nothing"))
    assert r.returncode == 1 and "no queue" in r.stderr, r.stderr
