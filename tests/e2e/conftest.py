"""Fixtures for gridlet's end-to-end tests: the real binary, a real mosquitto on a free
loopback port, gridlet's own simulator and an independent pymodbus server, and a paho-mqtt
client as the utility. Every process started here is stopped here; every wait is bounded."""
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRIDLET = os.environ.get("GRIDLET_BIN", os.path.join(ROOT, ".build", "debug", "gridlet"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Broker:
    """mosquitto on 127.0.0.1:<port>, with persistence so sessions survive a restart."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = workdir
        self.conf = os.path.join(workdir, "mosquitto.conf")
        # mosquitto started as root drops to its own user: give it a directory it can write.
        store = os.path.join(workdir, "mosquitto-db")
        os.makedirs(store, exist_ok=True)
        os.chmod(store, 0o777)
        os.chmod(workdir, 0o755)
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {store}/\nautosave_interval 1\nmax_queued_messages 100000\n")
        self.proc = None
        self.log = open(os.path.join(workdir, "mosquitto.log"), "ab")

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self.log, stderr=self.log)
        wait_until(lambda: port_open(self.port), 10, what="mosquitto to listen")

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc = None


class Collector:
    """A paho-mqtt subscriber with a persistent session: the utility side."""

    def __init__(self, port, root, client_id):
        self.root = root
        self.lock = threading.Lock()
        self.messages = []  # (topic, payload dict or raw, retained)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.connected = threading.Event()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(10), "collector could not connect"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe(f"{self.root}/#", qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        try:
            payload = json.loads(msg.payload.decode())
        except Exception:
            payload = msg.payload
        with self.lock:
            self.messages.append((msg.topic, payload, msg.retain))

    def of(self, suffix):
        with self.lock:
            return [p for (t, p, _) in self.messages if t == f"{self.root}/{suffix}"]

    def seq_records(self):
        """All queued records (telemetry, ledger, responses, gap) in arrival order."""
        with self.lock:
            return [(t.rsplit("/", 1)[1], p) for (t, p, _) in self.messages
                    if t.rsplit("/", 1)[1] in ("telemetry", "ledger", "responses", "gap")]

    def publish(self, cmd, payload, retain=False):
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        info = self.client.publish(f"{self.root}/cmd/{cmd}", data, qos=1, retain=retain)
        info.wait_for_publish(5)

    def wait_for(self, suffix, predicate=lambda p: True, timeout=10, start=0):
        def find():
            for p in self.of(suffix)[start:]:
                if predicate(p):
                    return p
            return None
        return wait_until(find, timeout, what=f"a message on {suffix}")

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Simulator:
    def __init__(self, profile, workdir, frozen=True, voltage=230, voltage_wobble=None, extra_args=()):
        self.port = free_port()
        self.write_log = os.path.join(workdir, f"{profile}-{self.port}-writes.jsonl")
        # Read by the simulator about every 100 ms; absent = no fault (see set_fault).
        self.fault_file = os.path.join(workdir, f"{profile}-{self.port}-fault")
        args = [GRIDLET, "simulate", profile, "--port", str(self.port), "--write-log", self.write_log,
                "--fault-file", self.fault_file]
        if frozen:
            args.append("--frozen")
        if voltage:
            args += ["--voltage", str(voltage)]
        if voltage_wobble:
            args += ["--voltage-wobble", str(voltage_wobble)]
        args += list(extra_args)
        self.log_path = os.path.join(workdir, f"{profile}-{self.port}.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log)
        wait_until(lambda: port_open(self.port), 10, what=f"simulator {profile}")

    def writes(self, address=None):
        if not os.path.exists(self.write_log):
            return []
        out = []
        with open(self.write_log) as f:
            for line in f:
                line = line.strip()
                if line:
                    w = json.loads(line)
                    if address is None or w["address"] == address:
                        out.append(w)
        return out

    def last_value(self, address):
        w = self.writes(address)
        return w[-1]["values"][0] if w else None

    def set_fault(self, text):
        """Plays a fault from now on: none, no-answer, exception:N, slow:MS or device[:VALUE]
        (`gridlet simulate --fault` syntax). Replaced atomically so a half-written file is never read."""
        tmp = self.fault_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, self.fault_file)

    def stop(self):
        stop_process(self.proc)


# Known SDM630 values served by pymodbus (address -> value); float32-exact numbers.
SDM630_VALUES = {
    0: 229.5, 2: 230.25, 4: 231.0,          # voltage L1..L3
    6: 5.5, 8: 6.25, 10: 7.0,               # current L1..L3
    12: 1262.25, 14: 1439.0, 16: 1617.0,    # power L1..L3
    52: 4318.25,                            # total power
    70: 50.0625,                            # frequency
    72: 12345.5,                            # import kWh
    74: 67.25,                              # export kWh
}


class PymodbusMeter:
    def __init__(self, values=SDM630_VALUES):
        self.port = free_port()
        script = os.path.join(os.path.dirname(__file__), "sdm630_server.py")
        self.proc = subprocess.Popen([sys.executable, script, str(self.port), json.dumps({str(k): v for k, v in values.items()})],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port), 15, what="pymodbus server")

    def stop(self):
        stop_process(self.proc)


CONFIG = """\
site:
  id: {site}
  timezone: UTC
  state_dir: {state}
  socket: {state}/gridlet.sock
  nominal_voltage: 230
buses:
  - name: meterbus
    kind: tcp
    host: 127.0.0.1
    port: {meter_port}
    timeout: 300ms
    retries: 1
  - name: lan
    kind: tcp
    host: 127.0.0.1
    port: {charger_port}
    timeout: 300ms
    retries: 1
devices:
  - name: meter
    bus: meterbus
    unit: 1
    profile: eastron-sdm630
    role: site-meter
    poll: 500ms
  - name: evse
    bus: lan
    unit: 255
    profile: vestel-evc04
    role: charger
    phases: 3
    max_current: 16
    min_current: 6
    poll: 500ms
mqtt:
  host: 127.0.0.1
  port: {mqtt_port}
  topic_prefix: gridlet
  keepalive: 5s
telemetry:
  interval: {telemetry}
queue:
  max_bytes: 1MiB
  sync: batch
  replay_rate: 200
control:
  comm_loss_timeout: {comm_loss}
  fallback_limit_w: 4140
  device_failsafe_timeout: 8s
  restore_delay: 0s
  restore_random: 0s
  ramp_w_per_s: 1000000
  min_dwell: 0s
  meter_stale_after: 10s
"""


LIVE_AGENTS = []


class Agent:
    def __init__(self, workdir, config_text):
        LIVE_AGENTS.append(self)  # stopped by the fixture even when a test fails half-way
        self.workdir = workdir
        self.config = os.path.join(workdir, "gridlet.yaml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, "agent.log")
        self.proc = None

    def start(self, env=None):
        self.log = open(self.log_path, "ab")
        full_env = None if env is None else {**os.environ, **env}
        self.proc = subprocess.Popen([GRIDLET, "run", "--config", self.config], stdout=self.log, stderr=self.log, env=full_env)

    def status(self):
        # Right after start the socket may not exist yet: retry briefly (bounded).
        deadline = time.monotonic() + 5
        while True:
            r = subprocess.run([GRIDLET, "status", "--json", "--config", self.config], capture_output=True, text=True, timeout=10)
            if r.returncode == 0 or time.monotonic() > deadline or self.proc is None or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            rc = self.proc.returncode
            self.proc = None
            return rc

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="gridlet-e2e-") as d:
        yield d


@contextlib.contextmanager
def make_site(workdir):
    """A complete site: broker, pymodbus meter, simulated charger, the agent, the utility.
    A context manager, so bench scripts (bench/chaos.py) build the same site as the tests."""
    started = []
    broker = Broker(workdir)
    broker.start()
    started.append(broker.stop)
    meter = PymodbusMeter()
    started.append(meter.stop)
    charger = Simulator("vestel-evc04", workdir)
    started.append(charger.stop)

    class Site:
        pass

    s = Site()
    s.workdir, s.broker, s.meter, s.charger = workdir, broker, meter, charger
    s.site_id = "e2e"
    s.root = f"gridlet/{s.site_id}"

    def config_text(telemetry="1s", comm_loss="120s", mqtt_port=None):
        """CONFIG filled in for this site (mqtt_port: another port than the broker's, e.g. a proxy)."""
        return CONFIG.format(site=s.site_id, state=os.path.join(workdir, "state"), meter_port=meter.port,
                             charger_port=charger.port, mqtt_port=broker.port if mqtt_port is None else mqtt_port,
                             telemetry=telemetry, comm_loss=comm_loss)

    def make_agent(telemetry="1s", comm_loss="120s"):
        text = config_text(telemetry, comm_loss)
        a = Agent(workdir, text)
        started.append(a.stop)
        return a

    def make_collector(client_id="utility"):
        c = Collector(broker.port, s.root, client_id)
        started.append(c.close)
        return c

    s.config_text = config_text
    s.make_agent = make_agent
    s.make_collector = make_collector
    try:
        yield s
    finally:
        while LIVE_AGENTS:
            try:
                LIVE_AGENTS.pop().stop()
            except Exception as e:
                print("cleanup:", e)
        for stop in reversed(started):
            try:
                stop()
            except Exception as e:  # keep stopping the rest
                print("cleanup:", e)


@pytest.fixture
def site(workdir):
    with make_site(workdir) as s:
        yield s
