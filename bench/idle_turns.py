"""Control-loop turns per second on an idle site (2 devices polled every 500 ms, telemetry 30 s):
how often the loop wakes when little is due. Usage: GRIDLET_BIN=... python3 bench/idle_turns.py"""
import os, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import conftest
from conftest import Agent, make_site, wait_until
with tempfile.TemporaryDirectory() as d, make_site(d) as site:
    a = Agent(site.workdir, site.config_text("30s", "120s")); a.start()
    wait_until(lambda: a.status()["mqtt"]["connected"], 20, what="connected")
    time.sleep(3)
    t0 = a.status()["loop"]["turns"]; time.sleep(20); t1 = a.status()["loop"]["turns"]
    print(os.environ.get("GRIDLET_BIN"), "turns per second idle:", (t1 - t0) / 20)
    a.stop()
