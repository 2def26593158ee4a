"""A failed fdatasync of the queue file never stops outbound records silently (SPEC §4).

eio_shim.c (LD_PRELOAD) fails the Nth fdatasync of queue.dat with EIO. With one failure the
agent recovers in place: the queue is reopened, what was not synced is given up and reported by
an io_error gap record, telemetry flows on, and the failure shows in the log (error priority),
in `gridlet status --json` (queue.last_error) and in the metrics. When the reopened queue fails
too, the agent exits with status 1 so that systemd restarts it; a restart then flows again."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import Agent, wait_until  # noqa: E402
from queue_crash import build_shim  # noqa: E402

# The queue syncs at open (reserving the first seq block) and, with sync: always, after every
# append (on its sync thread): the 8th sync falls on a telemetry append a few seconds after start.
FAIL_AT = "8"


def always_sync_agent(site):
    """The site's agent with sync: always, so the failed sync is the one of an append and the
    record it leaves unsynced is certainly given up and reported."""
    return Agent(site.workdir, site.config_text(telemetry="500ms").replace("sync: batch", "sync: always"))


def test_one_failed_fdatasync_is_recovered_in_place_and_visible(site):
    shim = build_shim(site.workdir, "eio_shim")
    collector = site.make_collector()
    agent = always_sync_agent(site)
    agent.start(env={"LD_PRELOAD": shim, "GRIDLET_EIO_AT": FAIL_AT, "GRIDLET_TEST_METRICS_INTERVAL_MS": "200"})

    gap = collector.wait_for("gap", lambda p: p.get("reason") == "io_error", timeout=30)
    assert gap["class"] == "telemetry" and gap["count"] >= 1, gap
    assert gap["from_seq"] <= gap["to_seq"] < gap["seq"], gap
    # Telemetry flows again after the gap, from the same process.
    collector.wait_for("telemetry", lambda p: p["seq"] > gap["seq"], timeout=30)
    assert agent.proc.poll() is None, "the agent stopped:\n" + agent.logtext()
    # A record given up is not sent as if it had been kept.
    sent = {p["seq"] for p in collector.of("telemetry")}
    assert not sent & set(range(gap["from_seq"], gap["to_seq"] + 1)), (sorted(sent), gap)

    log = agent.logtext()
    # The failed sync runs on the queue's sync thread (never on the control loop), so the error
    # is reported when its result arrives, not by the append that asked for it.
    assert re.search(r"^<3>gridlet: queue: fdatasync .*queue\.dat: Input/output error \(errno 5\) \(on the sync thread\)",
                     log, re.M), log
    recovered = re.search(r"^<3>gridlet: queue: recovered from a failed fdatasync.*given up, reported by gap record "
                          rf"seq {gap['seq']}.*check it", log, re.M)
    assert recovered, log

    q = agent.status()["queue"]
    assert q["ok"] is True, q
    assert "fdatasync" in q["last_error"] and "Input/output error" in q["last_error"], q
    metrics_path = os.path.join(site.workdir, "state", "metrics.prom")

    def metrics():
        text = open(metrics_path).read() if os.path.exists(metrics_path) else ""
        return text if "gridlet_queue_io_errors_total 1" in text else None
    text = wait_until(metrics, 10, what="gridlet_queue_io_errors_total 1 in metrics.prom")
    assert re.search(r"^gridlet_queue_ok 1$", text, re.M), text
    assert agent.stop() == 0


def test_a_queue_that_fails_again_after_reopening_exits_non_zero_and_a_restart_flows(site):
    shim = build_shim(site.workdir, "eio_shim")
    collector = site.make_collector()
    agent = always_sync_agent(site)
    agent.start(env={"LD_PRELOAD": shim, "GRIDLET_EIO_AT": FAIL_AT, "GRIDLET_EIO_COUNT": "1000"})
    wait_until(lambda: agent.proc.poll() is not None, 30, what="the agent to exit")
    assert agent.proc.returncode == 1, agent.logtext()
    log = agent.logtext()
    assert re.search(r"^<3>gridlet: queue: reopening the queue after a failed fdatasync failed too: .*Input/output error"
                     r".*exit status 1 .*Restart=on-failure", log, re.M), log
    agent.proc = None

    # What systemd does next (Restart=on-failure): the ordinary open recovers the file.
    before = len(collector.of("telemetry"))
    agent.start()
    collector.wait_for("telemetry", timeout=30, start=before)
    q = agent.status()["queue"]
    assert q["ok"] is True and q["last_error"] is None, q
    assert agent.stop() == 0
