"""MQTT link guarantees of the real binary: TLS with server verification and client
certificates, user/password from a file, MQTT 5 request/response, persistent sessions,
paced replay, no duplicates after a clean stop."""
import json
import os
import subprocess
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import GRIDLET, Agent, Collector, free_port, port_open, stop_process, wait_until


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A test CA, a server cert for 127.0.0.1, a good client cert, an expired client cert, and an
    unrelated CA — all made here with openssl."""
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                "-days", "30", "-subj", f"/CN=gridlet test {ca}", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "30", "-extfile", "san.ext", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=gridlet-client", cwd=d)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "client.pem", "-days", "30", cwd=d)
    # An expired client certificate: `openssl ca` can set explicit validity dates in the past.
    os.makedirs(os.path.join(d, "ca-db"), exist_ok=True)
    open(os.path.join(d, "ca-db", "index.txt"), "w").close()
    with open(os.path.join(d, "ca-db", "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(f"""[ca]
default_ca = test
[test]
dir = {d}/ca-db
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
certificate = {d}/ca.pem
private_key = {d}/ca.key
default_md = sha256
policy = anything
[anything]
commonName = supplied
""")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-in", "expired.csr", "-out", "expired.pem",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=d)
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o755 if os.path.isdir(os.path.join(d, name)) else 0o644)


class TLSBroker:
    """mosquitto with a TLS listener that requires client certificates (for the agent), a
    password-protected plain listener, and an anonymous plain listener (for the test's utility)."""

    def __init__(self, d):
        self.tls_port, self.pw_port, self.plain_port = free_port(), free_port(), free_port()
        os.chmod(d, 0o755)
        pwfile = os.path.join(d, "passwd")
        with open(pwfile, "w") as f:
            f.write("site-1:s3cret\n")
        subprocess.run(["mosquitto_passwd", "-U", pwfile], check=True, timeout=30)
        os.chmod(pwfile, 0o644)
        conf = os.path.join(d, "tls.conf")
        with open(conf, "w") as f:
            f.write(f"""per_listener_settings true
listener {self.tls_port} 127.0.0.1
cafile {d}/ca.pem
certfile {d}/server.pem
keyfile {d}/server.key
require_certificate true
allow_anonymous true
listener {self.pw_port} 127.0.0.1
allow_anonymous false
password_file {pwfile}
listener {self.plain_port} 127.0.0.1
allow_anonymous true
""")
        self.log = open(os.path.join(d, "tls-broker.log"), "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=self.log, stderr=self.log)
        for p in (self.tls_port, self.pw_port, self.plain_port):
            wait_until(lambda: port_open(p), 10, what="mosquitto listeners")

    def stop(self):
        stop_process(self.proc)


def agent_config(site, mqtt_block, comm_loss="120s"):
    text = site.config_text("1s", comm_loss, mqtt_port=0)
    start = text.index("mqtt:")
    end = text.index("telemetry:")
    return text[:start] + mqtt_block + text[end:]


def test_tls_right_ca_connects_wrong_ca_and_expired_cert_are_refused(site):
    d = os.path.join(site.workdir, "pki")
    os.makedirs(d)
    make_pki(d)
    broker = TLSBroker(d)
    try:
        util = Collector(broker.plain_port, site.root, "utility-tls")
        try:
            def run(ca, cert, key):
                block = (f"mqtt:\n  host: 127.0.0.1\n  port: {broker.tls_port}\n  keepalive: 5s\n"
                         f"  tls: {{ ca_file: {d}/{ca}, cert_file: {d}/{cert}, key_file: {d}/{key} }}\n")
                a = Agent(site.workdir, agent_config(site, block))
                a.start()
                return a

            good = run("ca.pem", "client.pem", "client.key")
            util.wait_for("status", lambda p: p.get("online") is True, timeout=15)
            wait_until(lambda: good.status()["mqtt"]["connected"], 5, what="status to show the TLS connection")
            good.stop()

            bad_ca = run("otherca.pem", "client.pem", "client.key")
            err = wait_until(lambda: bad_ca.status()["mqtt"]["last_error"], 15, what="a TLS error in status")
            assert "certificate verify failed" in err, err
            assert bad_ca.status()["mqtt"]["connected"] is False
            assert "certificate verify failed" in bad_ca.logtext()
            bad_ca.stop()

            expired = run("ca.pem", "expired.pem", "expired.key")
            err = wait_until(lambda: expired.status()["mqtt"]["last_error"], 15, what="a TLS error for the expired cert")
            assert expired.status()["mqtt"]["connected"] is False
            assert "TLS" in err or "SSL" in err or "certificate" in err or "connection" in err, err
            time.sleep(2)
            assert expired.status()["mqtt"]["connected"] is False
            expired.stop()
        finally:
            util.close()
    finally:
        broker.stop()


def test_tls_empty_block_means_tls_with_the_system_ca_store(site):
    """`tls: {}` is TLS verified against the system CA store, never plain TCP with the password
    in clear. OpenSSL's default store honours SSL_CERT_FILE: pointed at the test CA the agent
    connects; left at the real system store (which does not know the test CA) it is refused."""
    d = os.path.join(site.workdir, "pki-os")
    os.makedirs(d)
    make_pki(d)
    os.chmod(d, 0o755)
    tls_port, plain_port = free_port(), free_port()
    conf = os.path.join(d, "os.conf")
    with open(conf, "w") as f:
        f.write(f"""per_listener_settings true
listener {tls_port} 127.0.0.1
certfile {d}/server.pem
keyfile {d}/server.key
allow_anonymous true
listener {plain_port} 127.0.0.1
allow_anonymous true
""")
    log = open(os.path.join(d, "broker.log"), "ab")
    proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=log, stderr=log)
    try:
        for p in (tls_port, plain_port):
            wait_until(lambda: port_open(p), 10, what="mosquitto listeners")
        util = Collector(plain_port, site.root, "utility-os-tls")
        try:
            block = f"mqtt:\n  host: 127.0.0.1\n  port: {tls_port}\n  keepalive: 5s\n  tls: {{}}\n"
            ok = Agent(site.workdir, agent_config(site, block))
            ok.start(env={"SSL_CERT_FILE": f"{d}/ca.pem"})
            util.wait_for("status", lambda p: p.get("online") is True, timeout=15)
            wait_until(lambda: ok.status()["mqtt"]["connected"], 5, what="status to show the TLS connection")
            ok.stop()

            unknown = Agent(site.workdir, agent_config(site, block))
            unknown.start(env={"SSL_CERT_FILE": "/nonexistent/ca.pem", "SSL_CERT_DIR": "/nonexistent"})
            err = wait_until(lambda: unknown.status()["mqtt"]["last_error"], 15, what="a TLS error in status")
            assert "certificate verify failed" in err, err
            assert unknown.status()["mqtt"]["connected"] is False
            unknown.stop()
        finally:
            util.close()
    finally:
        stop_process(proc)


def test_password_file_and_mqtt5_response_topic(site):
    d = os.path.join(site.workdir, "pw")
    os.makedirs(d)
    make_pki(d)  # the broker config references the CA files
    broker = TLSBroker(d)
    try:
        pw = os.path.join(site.workdir, "mqtt.pass")
        with open(pw, "w") as f:
            f.write("s3cret\n")
        block = f"mqtt:\n  host: 127.0.0.1\n  port: {broker.pw_port}\n  username: site-1\n  password_file: {pw}\n"
        a = Agent(site.workdir, agent_config(site, block))
        a.start()
        wait_until(lambda: a.status()["mqtt"]["connected"], 15, what="login with the password file")
        # MQTT 5 request/response: the reply also goes to the response topic with the correlation data.
        got = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="requester", protocol=mqtt.MQTTv5)
        c.username_pw_set("site-1", "s3cret")
        c.on_message = lambda cl, ud, msg: got.append(msg)
        c.connect("127.0.0.1", broker.pw_port)
        c.loop_start()
        c.subscribe("requester/replies", qos=1)
        time.sleep(0.3)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "requester/replies"
        props.CorrelationData = b"req-77"
        c.publish(f"{site.root}/cmd/ping", "{}", qos=1, properties=props).wait_for_publish(5)
        wait_until(lambda: got, 10, what="a reply on the response topic")
        assert json.loads(got[0].payload) == {"cmd": "ping", "ok": True}
        assert got[0].properties.CorrelationData == b"req-77"
        c.loop_stop()
        c.disconnect()
        a.stop()
        # A wrong password is refused with a clear error.
        with open(pw, "w") as f:
            f.write("wrong\n")
        a2 = Agent(site.workdir, agent_config(site, block))
        a2.start()
        wait_until(lambda: "refused" in a2.logtext(), 15, what="a refusal in the log")
        assert "password_file" in a2.logtext()
        assert a2.status()["mqtt"]["connected"] is False
        a2.stop()
    finally:
        broker.stop()


def test_commands_sent_while_offline_arrive_after_restart(site):
    agent = site.make_agent()
    util = site.make_collector()
    agent.start()
    util.wait_for("status", lambda p: p.get("online") is True, timeout=15)
    assert agent.stop() == 0
    # The agent is away; the broker holds its persistent session and queues the command.
    util.publish("event", {"id": "offline-1", "duration_s": 600, "limit_w": 4140})
    agent.start()
    reply = util.wait_for("reply", lambda p: p.get("id") == "offline-1", timeout=20)
    assert reply["ok"] is True
    wait_until(lambda: site.charger.last_value(5004) == 6, 10, what="the queued dispatch applied")
    assert agent.stop() == 0


def test_backlog_drains_and_nothing_is_delivered_twice_after_a_clean_stop(site):
    """A clean stop in the middle of a replay: the live records acknowledged while older
    backlog was still waiting are not sent again after the restart (the queue keeps those
    out-of-order acks), the rest of the backlog follows, and every record arrives exactly once."""
    text = site.config_text("100ms", "120s")
    text = text.replace("replay_rate: 200", "replay_rate: 10")
    agent = Agent(site.workdir, text)
    util = site.make_collector()
    agent.start()
    util.wait_for("telemetry", timeout=15)
    site.broker.stop()
    time.sleep(4)  # ~40 records of backlog at 100 ms
    assert agent.status()["queue"]["records"] >= 25
    site.broker.start()
    # Mid-replay: some history and some live records are through, most history still waits.
    wait_until(lambda: len([p for p in util.of("telemetry") if p["historical"]]) >= 5
               and len([p for p in util.of("telemetry") if not p["historical"]]) >= 10, 30, what="replay under way")
    assert agent.status()["queue"]["records"] >= 15, "the replay finished too early to test a stop in its middle"
    assert agent.stop() == 0
    before = [p["seq"] for _, p in util.seq_records()]
    agent.start()
    last = max(before)

    # Every seq up to the last one seen before the stop arrives (seqs jump forward after a
    # restart), and new records follow.
    def complete():
        seqs = {p["seq"] for _, p in util.seq_records()}
        return seqs >= set(range(min(before), last + 1)) and max(seqs) > last + 10
    try:
        wait_until(complete, 30, what="every record up to the stop, and new ones")
    except AssertionError:
        seqs = {p["seq"] for _, p in util.seq_records()}
        missing = sorted(set(range(min(before), last + 1)) - seqs)
        raise AssertionError(f"missing {missing[:30]}; status {agent.status()['queue']}")
    time.sleep(0.5)
    after = [p["seq"] for _, p in util.seq_records()][len(before):]
    assert not set(after) & set(before), f"delivered again after the clean stop: {sorted(set(after) & set(before))[:20]}"
    assert len(after) == len(set(after))
    assert agent.stop() == 0


def test_replay_rate_is_never_exceeded(site):
    text = site.config_text("100ms", "120s")
    text = text.replace("replay_rate: 200", "replay_rate: 10")
    agent = Agent(site.workdir, text)
    stamps = []
    # A clean session: the broker must not queue messages for this client while it reconnects,
    # or their release in one burst would be measured instead of the agent's pacing.
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stamper", clean_session=True)
    c.on_message = lambda cl, ud, msg: stamps.append((time.monotonic(), json.loads(msg.payload)))
    c.on_connect = lambda cl, ud, fl, rc, pr: cl.subscribe(f"{site.root}/telemetry", qos=1)
    c.reconnect_delay_set(1, 1)
    c.connect("127.0.0.1", site.broker.port)
    c.loop_start()
    try:
        agent.start()
        wait_until(lambda: stamps, 15, what="live telemetry")
        site.broker.stop()
        time.sleep(3)   # ~30 records of backlog
        site.broker.start()
        wait_until(lambda: len([s for s in stamps if s[1]["historical"]]) >= 15, 30, what="the backlog")
        time.sleep(1)
        hist = [t for t, p in stamps if p["historical"]]
        # 10 messages per second: any 10 consecutive historical records span at least ~0.9 s.
        spans = [hist[i + 9] - hist[i] for i in range(len(hist) - 9)]
        assert min(spans) >= 0.8, min(spans)
        # Live records kept flowing while the backlog drained.
        first_h, last_h = hist[0], hist[-1]
        live_during = [t for t, p in stamps if not p["historical"] and first_h < t < last_h]
        assert len(live_during) >= 5, "live telemetry stalled behind the replay"
        assert agent.stop() == 0
    finally:
        c.loop_stop()
        c.disconnect()


def test_falls_back_to_mqtt311_with_a_broker_that_has_no_mqtt5(site):
    """amqtt (an independent MQTT 3.1.1-only broker) refuses the MQTT 5 CONNECT; the agent
    switches to 3.1.1, connects and publishes."""
    from conftest import ROOT
    amqtt = os.path.join(ROOT, ".build", "amqtt-venv", "bin", "amqtt")
    assert os.path.exists(amqtt), "amqtt missing: run scripts/install-deps"
    port = free_port()
    conf = os.path.join(site.workdir, "amqtt.yaml")
    with open(conf, "w") as f:
        f.write(f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\nplugins:\n"
                "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n")
    log = open(os.path.join(site.workdir, "amqtt.log"), "ab")
    broker = subprocess.Popen([amqtt, "-c", conf], stdout=log, stderr=log, cwd=site.workdir)
    try:
        wait_until(lambda: port_open(port), 20, what="amqtt to listen")
        got = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v3-utility", protocol=mqtt.MQTTv311)
        c.on_message = lambda cl, ud, msg: got.append(msg.topic)
        c.connect("127.0.0.1", port)
        c.loop_start()
        c.subscribe(f"{site.root}/#", qos=1)
        block = f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n  keepalive: 5s\n"
        a = Agent(site.workdir, agent_config(site, block))
        a.start()
        wait_until(lambda: a.status()["mqtt"]["connected"], 60, what="a 3.1.1 connection")
        assert "using MQTT 3.1.1" in a.logtext()
        wait_until(lambda: f"{site.root}/telemetry" in got, 15, what="telemetry through the 3.1.1 broker")
        c.loop_stop()
        c.disconnect()
        assert a.stop() == 0
    finally:
        stop_process(broker)


class SlowAckProxy:
    """A TCP proxy between the agent and mosquitto that, while `slow` is set, passes what the
    broker sends (PUBACKs, PINGRESP) at 4 bytes per 0.5 s: about two PUBACKs a second."""

    def __init__(self, target_port):
        import socket
        import threading
        self.target_port = target_port
        self.slow = threading.Event()
        self.stopped = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        import socket
        import threading
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            broker = socket.create_connection(("127.0.0.1", self.target_port))
            self.socks += [client, broker]
            for src, dst, throttled in ((client, broker, False), (broker, client, True)):
                t = threading.Thread(target=self._pump, args=(src, dst, throttled), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, throttled):
        try:
            while not self.stopped.is_set():
                data = src.recv(65536)
                if not data:
                    break
                while data:
                    if throttled and self.slow.is_set():
                        dst.sendall(data[:4])
                        data = data[4:]
                        time.sleep(0.5)
                    else:
                        dst.sendall(data)
                        data = b""
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def stop(self):
        self.stopped.set()
        self.listener.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_a_broker_slow_to_acknowledge_fills_the_window_not_the_memory(site):
    """PUBACKs slowed to ~2/s while the agent produces ~5 records/s: at most 16 messages are in
    flight, the rest waits on disk; once the broker is fast again everything arrives, in order,
    once, without a reconnect."""
    proxy = SlowAckProxy(site.broker.port)
    try:
        text = site.config_text("200ms", "120s", mqtt_port=proxy.port)
        text = text.replace("keepalive: 5s", "keepalive: 60s")
        agent = Agent(site.workdir, text)
        util = site.make_collector()
        agent.start()
        util.wait_for("telemetry", timeout=15)
        wait_until(lambda: agent.status()["mqtt"]["connected"], 10, what="the agent connected")
        rss0 = int([l for l in open(f"/proc/{agent.proc.pid}/status") if l.startswith("VmRSS")][0].split()[1])
        proxy.slow.set()
        in_flight, depth = [], []
        end = time.monotonic() + 12
        while time.monotonic() < end:
            st = agent.status()
            in_flight.append(st["mqtt"]["in_flight"])
            depth.append(st["queue"]["records"])
            assert st["mqtt"]["connected"], "the agent dropped the slow connection"
            time.sleep(0.2)
        rss1 = int([l for l in open(f"/proc/{agent.proc.pid}/status") if l.startswith("VmRSS")][0].split()[1])
        assert max(in_flight) == 16, in_flight       # the window fills ...
        assert all(n <= 16 for n in in_flight)         # ... and is never exceeded
        assert depth[-1] >= 16 + 15, depth             # the rest waits in the queue on disk
        assert rss1 - rss0 < 2048, f"RSS grew by {rss1 - rss0} KiB while the broker was slow"
        produced = agent.status()["queue"]["next_seq"] - 1
        proxy.slow.clear()
        wait_until(lambda: agent.status()["queue"]["records"] == 0, 30, what="the backlog to drain")
        wait_until(lambda: len({p["seq"] for _, p in util.seq_records()}) >= produced, 15, what="every record at the utility")
        seqs = [p["seq"] for _, p in util.seq_records()]
        first = seqs[0]
        assert sorted(set(seqs)) == list(range(first, max(seqs) + 1)), "a record is missing"
        assert len(seqs) == len(set(seqs)), "a record arrived twice"
        assert agent.stop() == 0
    finally:
        proxy.stop()
