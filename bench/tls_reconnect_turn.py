"""bench/tls-reconnect.sh: the control loop's longest turn across MQTT reconnects, TLS (client
certificate, RSA 2048, the e2e tests' PKI) against plain TCP. The agent polls 2 devices at 1 s and
publishes telemetry every 200 ms; the broker is restarted RECONNECTS times on the same port and the
agent waits out its reconnect backoff each time. The handshake after a reconnect runs step by step
on the loop thread (docs/architecture.md), so its cost shows in the loop's longest turn, read from
`gridlet status --json` before the first restart and after the last reconnect.
usage: python3 bench/tls_reconnect_turn.py [RECONNECTS]   (default 5)"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import Agent, free_port, make_site, port_open, stop_process, wait_until  # noqa: E402
from test_mqtt import make_pki  # noqa: E402

reconnects = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def broker_conf(d, port, tls):
    conf = os.path.join(d, f"broker-{'tls' if tls else 'plain'}.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        if tls:
            f.write(f"cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n")
    return conf


def start_broker(conf, port, log):
    p = subprocess.Popen(["mosquitto", "-c", conf], stdout=log, stderr=log)
    wait_until(lambda: port_open(port), 10, what="mosquitto")
    return p


def run(tls):
    with tempfile.TemporaryDirectory(prefix="gridlet-tlsturn-") as d, make_site(d) as site:
        os.chmod(d, 0o755)
        if tls:
            make_pki(d)
        port = free_port()
        conf = broker_conf(d, port, tls)
        log = open(os.path.join(d, "broker.log"), "ab")
        broker = start_broker(conf, port, log)
        block = f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n  keepalive: 5s\n"
        if tls:
            block += f"  tls: {{ ca_file: {d}/ca.pem, cert_file: {d}/client.pem, key_file: {d}/client.key }}\n"
        text = site.config_text("200ms", "120s", mqtt_port=0)
        text = text[:text.index("mqtt:")] + block + text[text.index("telemetry:"):]
        agent = Agent(site.workdir, text)
        agent.start()
        try:
            wait_until(lambda: agent.status().get("mqtt", {}).get("connected") is True, 30, what="first connect")
            time.sleep(3)
            before = agent.status()["loop"]
            for _ in range(reconnects):
                stop_process(broker)
                wait_until(lambda: agent.status().get("mqtt", {}).get("connected") is False, 30, what="disconnect seen")
                broker = start_broker(conf, port, log)
                wait_until(lambda: agent.status().get("mqtt", {}).get("connected") is True, 60, what="reconnect")
                time.sleep(1)
            after = agent.status()["loop"]
        finally:
            agent.stop()
            stop_process(broker)
        kind = "TLS (client cert, RSA 2048)" if tls else "plain TCP"
        print(f"{kind}: {reconnects} reconnects; longest turn {before['max_turn_ms']:.2f} ms before the first "
              f"restart, {after['max_turn_ms']:.2f} ms after the last reconnect; turns over 10 ms "
              f"{before['turns_over_10ms']} -> {after['turns_over_10ms']} ({after['turns'] - before['turns']} turns)")


for tls in (False, True):
    run(tls)
