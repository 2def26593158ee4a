"""Chaos run: dispatch commands while the broker is restarted and the agent is killed with -9.

Shared by the suite's short run (tests/e2e/test_chaos.py) and the long bench run (bench/chaos.py).
The utility side behaves as docs/mqtt-api.md tells a DERMS to: every command carries its own
`created`/`start`, and a command that got no reply within RESEND_S is sent again (the reply is
the acknowledgement: libmosquitto sends the PUBACK before the agent has stored the command).

What is checked:
- every command that got `ok:true` was received (response 1) and is kept: after the final restart
  each one whose window is still open is stored in the agent (`gridlet events --json`);
- the charger never exceeds the limit in force: every event limits to at most 6 A (4140 W on
  3 x 230 V) and the events overlap, so from the first acknowledged command on, no setpoint write
  (simulator write log) may exceed 6 A, across every kill -9 and broker restart.
"""
import json
import random
import subprocess
import time
from datetime import datetime, timezone

from conftest import GRIDLET, Agent, Collector, wait_until

RESEND_S = 5.0
EVENT_S = 90            # each event lasts 90 s; they are sent far more often, so they overlap
LIMITS_W = (2760, 3450, 4140)   # 4, 5, 6 A on 3 x 230 V
MAX_A = 6


def iso(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


class Utility(Collector):
    """The DERMS: sends, tracks replies and responses, re-sends what got no reply."""

    def __init__(self, port, root):
        super().__init__(port, root, "chaos-utility")
        self.sent = {}        # id -> (payload, last send time, sends)

    def send(self, cid, payload):
        data = json.dumps(payload)
        self.client.publish(f"{self.root}/cmd/event", data, qos=1)
        _, _, n = self.sent.get(cid, (None, 0, 0))
        self.sent[cid] = (payload, time.monotonic(), n + 1)

    def replies(self):
        out = {}
        for p in self.of("reply"):
            if isinstance(p, dict) and p.get("cmd") == "event" and "id" in p:
                out[p["id"]] = out.get(p["id"]) or p.get("ok") is True
        return out

    def resend_unanswered(self):
        answered = self.replies()
        now = time.monotonic()
        n = 0
        for cid, (payload, at, _) in list(self.sent.items()):
            if cid not in answered and now - at >= RESEND_S:
                self.send(cid, payload)
                n += 1
        return n


def run(site, commands=60, seconds=45.0, broker_every=(8.0, 15.0), kill_every=(12.0, 20.0), seed=1,
        progress=lambda msg: None):
    rng = random.Random(seed)
    agent = Agent(site.workdir, site.config_text("1s", "120s"))
    agent.start()
    util = Utility(site.broker.port, site.root)
    util.wait_for("status", lambda p: isinstance(p, dict) and p.get("online") is True, timeout=20)
    started = time.monotonic()
    interval = seconds / commands
    next_broker = started + rng.uniform(*broker_every)
    next_kill = started + rng.uniform(*kill_every)
    stats = {"sent": 0, "resent": 0, "broker_restarts": 0, "agent_kills": 0}
    first_ok_wall = None
    i = 0
    last_progress = started
    while True:
        now = time.monotonic()
        if i < commands and now >= started + i * interval:
            t = time.time()
            cid = f"chaos-{seed}-{i}"
            util.send(cid, {"id": cid, "created": iso(t), "start": iso(t), "duration_s": EVENT_S,
                            "limit_w": rng.choice(LIMITS_W), "primacy": 1})
            stats["sent"] += 1
            i += 1
        stats["resent"] += util.resend_unanswered()
        if first_ok_wall is None and any(util.replies().values()):
            first_ok_wall = time.time()
        if now - started < seconds:
            if now >= next_broker:
                site.broker.stop()
                site.broker.start()
                stats["broker_restarts"] += 1
                next_broker = time.monotonic() + rng.uniform(*broker_every)
            if now >= next_kill:
                agent.kill9()
                agent.start()
                stats["agent_kills"] += 1
                next_kill = time.monotonic() + rng.uniform(*kill_every)
        elif len(util.replies()) == commands or now - started > seconds + 90:
            break
        if now - last_progress >= 10:
            progress(f"{now - started:5.0f} s: sent {i}/{commands}, replied {len(util.replies())}, "
                     f"resent {stats['resent']}, broker restarts {stats['broker_restarts']}, kills {stats['agent_kills']}")
            last_progress = now
        time.sleep(0.05)

    replies = util.replies()
    ok = sorted(cid for cid, good in replies.items() if good)
    stats["replied"] = len(replies)
    stats["replied_ok"] = len(ok)
    # The next restart: every acknowledged command whose window is still open is stored.
    agent.kill9()
    agent.start()
    wait_until(lambda: agent.status()["mqtt"]["connected"], 20, what="the agent back after the final restart")
    r = subprocess.run([GRIDLET, "events", "--json", "--config", agent.config], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    stored = {e["id"] for e in json.loads(r.stdout)["events"]}
    now_wall = time.time()
    open_window = [cid for cid in ok
                   if datetime.fromisoformat(util.sent[cid][0]["start"].replace("Z", "+00:00")).timestamp() + EVENT_S > now_wall + 2]
    missing = [cid for cid in open_window if cid not in stored]
    # Its responses arrive: at least "received" for every acknowledged command.
    def received():
        got = {p["event"] for p in util.of("responses") if isinstance(p, dict) and p.get("status") == 1}
        return [cid for cid in ok if cid not in got]
    wait_until(lambda: not received(), 30, what="a 'received' response for every acknowledged command")
    # The charger never exceeded the limit in force.
    writes = [w for w in site.charger.writes(5004) if first_ok_wall and w["ts_ms"] >= (first_ok_wall + 1) * 1000]
    over = [w for w in writes if w["values"][0] > MAX_A]
    stats.update({"applied": len(open_window) - len(missing), "checked_open": len(open_window), "lost": len(missing),
                  "setpoint_writes_checked": len(writes), "writes_over_limit": len(over)})
    agent.stop()
    util.close()
    return stats, missing, over
