"""A slow disk never holds up the control loop (issue "Fault-proof", item 10: no fdatasync on the
loop's path). eio_shim.c (LD_PRELOAD, GRIDLET_SYNC_DELAY_MS) makes every fdatasync of queue.dat
take 300 ms, as an SD card under load can. With `sync: always` every record is synced; those
syncs run on the queue's sync thread, so commands are still answered promptly, the loop's
longest turn stays far below one sync, and a record reaches the broker only once it is synced."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import Agent, wait_until  # noqa: E402
from queue_crash import build_shim  # noqa: E402

DELAY_MS = 300


def test_slow_queue_syncs_stay_off_the_control_loop(site):
    shim = build_shim(site.workdir, "eio_shim")
    collector = site.make_collector()
    agent = Agent(site.workdir, site.config_text(telemetry="200ms").replace("sync: batch", "sync: always"))
    agent.start(env={"LD_PRELOAD": shim, "GRIDLET_SYNC_DELAY_MS": str(DELAY_MS)})
    collector.wait_for("status", lambda p: isinstance(p, dict) and p.get("online") is True, timeout=20)
    collector.wait_for("telemetry", timeout=20)

    # Commands while every queue sync takes 300 ms: each reply comes well before one sync would.
    sent_at = {}
    for i in range(10):
        sent_at[f"slow-{i}"] = time.monotonic()
        collector.client.publish(f"{site.root}/cmd/event", json.dumps({"id": f"slow-{i}", "duration_s": 600,
                                                                       "limit_w": 4140 + i}), qos=1)
        time.sleep(0.25)
    replies = wait_until(lambda: len(collector.of("reply")) >= 10 and collector.of("reply"), 30, what="10 replies")
    assert all(r.get("ok") is True for r in replies), replies

    # Telemetry keeps flowing at its interval, although each record waits for its own sync.
    before = len(collector.of("telemetry"))
    time.sleep(3)
    flowed = len(collector.of("telemetry")) - before
    assert flowed >= 8, f"only {flowed} telemetry records in 3 s with 300 ms syncs"

    loop = agent.status()["loop"]
    # An inline sync would make a turn of >= 300 ms; allow for a busy shared test machine.
    assert loop["max_turn_ms"] < DELAY_MS / 2, loop
    assert agent.stop() == 0
    log = agent.logtext()
    assert "fdatasync" not in log, log


def test_the_same_slow_disk_with_inline_syncs_holds_up_the_loop(site):
    """The control for the test above: with the syncs on the loop (GRIDLET_INLINE_QUEUE_SYNC=1,
    how the queue used to sync) a 300 ms sync is a 300 ms turn, so the check above can fail."""
    shim = build_shim(site.workdir, "eio_shim")
    collector = site.make_collector()
    agent = Agent(site.workdir, site.config_text(telemetry="200ms").replace("sync: batch", "sync: always"))
    agent.start(env={"LD_PRELOAD": shim, "GRIDLET_SYNC_DELAY_MS": str(DELAY_MS), "GRIDLET_INLINE_QUEUE_SYNC": "1"})
    collector.wait_for("telemetry", timeout=20)
    wait_until(lambda: agent.status()["loop"]["max_turn_ms"] >= DELAY_MS * 0.9, 10, what="a turn as long as a sync")
    assert agent.stop() == 0
