import json, os, subprocess, time, sys
sys.path.insert(0, "/work/main/tests/e2e")
from conftest import GRIDLET, Agent, wait_until

def test_probe(site):
    text = site.config_text("100ms", "120s").replace("replay_rate: 200", "replay_rate: 20")
    agent = Agent(site.workdir, text)
    util = site.make_collector()
    agent.start()
    util.wait_for("telemetry", timeout=15)
    site.broker.stop()
    time.sleep(4)
    backlog = agent.status()["queue"]["records"]
    site.broker.start()
    wait_until(lambda: len([p for p in util.of("telemetry") if p["historical"]]) >= backlog - 2, 30, what="drain")
    time.sleep(1)
    st = agent.status()
    peek = subprocess.run([GRIDLET, "queue", "peek", "--count", "3", "--json", "--config", agent.config], capture_output=True, text=True).stdout
    print("STATUS", json.dumps(st["mqtt"]), json.dumps(st["queue"]))
    print("PEEK", peek[:600])
    if not (st["queue"]["records"] < 5):
        with open(f"/tmp/probe_fail_{os.getpid()}.txt", "w") as f:
            f.write(json.dumps(st) + "\n" + peek + "\n" + agent.logtext())
            f.write("\nSEQS " + json.dumps([(t, p["seq"], p.get("historical")) for t, p in util.seq_records()]))
    assert st["mqtt"]["in_flight"] < 16 and st["queue"]["records"] < 5, (st, peek, agent.logtext()[-3000:])
    agent.stop()
