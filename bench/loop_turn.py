"""bench/loop-turn.sh: the control loop's longest turn while commands arrive (each one persisted)
and telemetry is queued. Prints turns, max turn and turns over 10 ms from `gridlet status --json`.
SYNC_DELAY_MS=D makes every fdatasync of queue.dat take D ms (tests/e2e/eio_shim.c, a slow SD
card); QUEUE_SYNC=always|batch|none sets queue.sync; GRIDLET_INLINE_QUEUE_SYNC=1 (inherited)
puts the queue's syncs back on the loop, for a before/after."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import Agent, make_site, wait_until  # noqa: E402
from queue_crash import build_shim  # noqa: E402

count, rate = int(sys.argv[1]), float(sys.argv[2])
with tempfile.TemporaryDirectory(prefix="gridlet-loop-") as d, make_site(d) as site:
    text = site.config_text("200ms", "120s")
    if os.environ.get("QUEUE_SYNC"):
        text = text.replace("sync: batch", "sync: " + os.environ["QUEUE_SYNC"])
    agent = Agent(site.workdir, text)
    delay = os.environ.get("SYNC_DELAY_MS")
    agent.start(env={"LD_PRELOAD": build_shim(site.workdir, "eio_shim"), "GRIDLET_SYNC_DELAY_MS": delay} if delay else None)
    util = site.make_collector()
    util.wait_for("status", lambda p: isinstance(p, dict) and p.get("online") is True, timeout=20)
    time.sleep(2)
    for i in range(count):
        util.client.publish(f"{site.root}/cmd/event", json.dumps({"id": f"lt-{i % 200}", "duration_s": 600 + i,
                                                                  "limit_w": 4140 + i % 7}), qos=1)
        time.sleep(1 / rate)
    wait_until(lambda: len(util.of("reply")) >= count, 60, what="all replies")
    loop = agent.status()["loop"]
    print(f"commands {count} at {rate}/s: turns {loop['turns']}, max turn {loop['max_turn_ms']:.2f} ms, "
          f"turns over 10 ms {loop['turns_over_10ms']}")
    agent.stop()
