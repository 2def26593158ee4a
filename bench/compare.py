#!/usr/bin/env python3
"""Side-by-side measurement, driven by bench/compare.sh (see docs/benchmarks.md).

Every tool polls the same `gridlet simulate eastron-sdm630` Modbus TCP server (units 1 and 2 =
two devices) and publishes to the same local mosquitto; tools run one after another.
Measured per tool: startup to first message, VmHWM/VmRSS polling 2 devices at 1 s, CPU seconds
per 1,000 poll-and-publish cycles (1 device, fastest poll), binary size; for gridlet also the
dispatch latency (command published -> register written -> reply received)."""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Sub:
    """Counts messages per topic and remembers the first arrival (monotonic)."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.count = {}
        self.first = {}
        self.messages = []  # (monotonic, wall, topic, payload) for topics in self.keep
        self.keep = set()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
        self.ready = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: (c.subscribe("#", qos=0), self.ready.set())
        self.c.on_message = self.on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.ready.wait(10)
        time.sleep(0.2)

    def on_message(self, c, u, msg):
        now, wall = time.monotonic(), time.time()
        with self.lock:
            self.count[msg.topic] = self.count.get(msg.topic, 0) + 1
            self.first.setdefault(msg.topic, now)
            if msg.topic in self.keep:
                self.messages.append((now, wall, msg.topic, msg.payload))

    def n(self, topic):
        with self.lock:
            return self.count.get(topic, 0)

    def first_after(self, topic, t):
        with self.lock:
            f = self.first.get(topic)
        return f if f is not None and f >= t else None

    def reset(self):
        with self.lock:
            self.count.clear()
            self.first.clear()
            self.messages.clear()


SDM_POINTS = [  # (name, register, collectd type)
    ("voltage_l1", 0, "voltage"), ("voltage_l2", 2, "voltage"), ("voltage_l3", 4, "voltage"),
    ("current_l1", 6, "current"), ("current_l2", 8, "current"), ("current_l3", 10, "current"),
    ("power_l1", 12, "power"), ("power_l2", 14, "power"), ("power_l3", 16, "power"),
    ("power", 52, "power"), ("frequency", 70, "frequency"), ("import", 72, "energy"), ("export", 74, "energy"),
]
BLOCKS = [(0, 18), (52, 2), (70, 6)]


class Tool:
    name = ""
    marker = ""  # topic whose messages count cycles of device 1

    def start(self, units, interval_s, fast):
        raise NotImplementedError


class Gridlet(Tool):
    name = "gridlet"
    marker = "gridlet/bench/telemetry"

    def __init__(self, env):
        self.env = env

    def config(self, units, interval_s, extra=""):
        e = self.env
        state = tempfile.mkdtemp(prefix="state-", dir=e.work)
        devs = "\n".join(f"  - {{ name: m{u}, bus: b, unit: {u}, profile: eastron-sdm630, poll: {int(interval_s * 1000)}ms }}"
                         for u in units)
        return (f"site: {{ id: bench, state_dir: {state}, socket: {state}/g.sock }}\n"
                f"buses:\n  - {{ name: b, kind: tcp, host: 127.0.0.1, port: {e.meter_port} }}\n"
                f"devices:\n{devs}\n"
                f"mqtt: {{ host: 127.0.0.1, port: {e.mqtt_port} }}\n"
                f"telemetry: {{ interval: {int(interval_s * 1000)}ms }}\n" + extra)

    def start(self, units, interval_s, fast):
        path = os.path.join(self.env.work, f"gridlet-{len(units)}-{interval_s}.yaml")
        with open(path, "w") as f:
            f.write(self.config(units, interval_s))
        return subprocess.Popen([self.env.gridlet, "run", "--config", path, "--log-level", "warning"],
                                stdout=subprocess.DEVNULL, stderr=open(path + ".log", "w"))


class Raw(Tool):
    name = "raw C loop"
    marker = "raw/1"

    def __init__(self, env):
        self.env = env

    def start(self, units, interval_s, fast):
        e = self.env
        return subprocess.Popen([e.raw, str(e.mqtt_port), str(e.meter_port), str(int(interval_s * 1000)), *map(str, units)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Collectd(Tool):
    name = "collectd"
    marker = "collectd/meter/modbus-m1/voltage-voltage_l1"

    def __init__(self, env):
        self.env = env

    def start(self, units, interval_s, fast):
        e = self.env
        d = tempfile.mkdtemp(prefix="collectd-", dir=e.work)
        data = "\n".join(f'  <Data "{n}">\n    RegisterBase {r}\n    RegisterType Float\n    RegisterCmd ReadInput\n'
                         f'    Type "{t}"\n    Instance "{n}"\n  </Data>' for (n, r, t) in SDM_POINTS)
        slaves = "\n".join(f'    <Slave {u}>\n      Instance "m{u}"\n' + "".join(f'      Collect "{n}"\n' for (n, _, _) in SDM_POINTS)
                           + "    </Slave>" for u in units)
        conf = f"""Hostname "bench"
FQDNLookup false
BaseDir "{d}"
PIDFile "{d}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval {interval_s}
LoadPlugin modbus
LoadPlugin mqtt
<Plugin modbus>
{data}
  <Host "meter">
    Address "127.0.0.1"
    Port "{e.meter_port}"
    Interval {interval_s}
{slaves}
  </Host>
</Plugin>
<Plugin mqtt>
  <Publish "bench">
    Host "127.0.0.1"
    Port {e.mqtt_port}
    ClientId "collectd-bench"
    Prefix "collectd"
    QoS 1
  </Publish>
</Plugin>
"""
        path = os.path.join(d, "collectd.conf")
        with open(path, "w") as f:
            f.write(conf)
        return subprocess.Popen([e.collectd, "-f", "-C", path], stdout=subprocess.DEVNULL, stderr=open(path + ".log", "w"))


class Modbus2MQTT(Tool):
    name = "modbus2mqtt"
    marker = "m2m/m1/state/voltage_l1"

    def __init__(self, env):
        self.env = env

    def start(self, units, interval_s, fast):
        e = self.env
        rows = ["type,topic,col2,col3,col4,col5,col6"]
        for u in units:
            for (start, count) in BLOCKS:
                rows.append(f"poll,m{u},{u},{start},{count},input_register,{interval_s}")
                for (n, r, _) in SDM_POINTS:
                    if start <= r < start + count:
                        rows.append(f"ref,{n},{r},r,float32LE,")  # its float32LE is high word first (dataTypes.py)
        path = os.path.join(e.work, f"m2m-{len(units)}-{interval_s}.csv")
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        args = [e.m2m_python, "-m", "modbus2mqtt", "--tcp", "127.0.0.1", "--tcp-port", str(e.meter_port),
                "--mqtt-host", "127.0.0.1", "--mqtt-port", str(e.mqtt_port), "--mqtt-topic", "m2m/",
                "--config", path, "--always-publish", "--verbosity", "1"]
        if fast:
            args += ["--set-loop-break", "0.001"]
        return subprocess.Popen(args, stdout=open(path + ".log", "w"), stderr=subprocess.STDOUT)


def measure_steady(tool, sub, seconds):
    sub.reset()
    t0 = time.monotonic()
    p = tool.start([1, 2], 1, fast=False)
    try:
        startup = None
        end = t0 + seconds
        while time.monotonic() < end:
            if p.poll() is not None:
                raise RuntimeError(f"{tool.name} exited with {p.returncode}")
            if startup is None:
                f = sub.first_after(tool.marker, t0)
                if f is not None:
                    startup = f - t0
            time.sleep(0.01)
        if startup is None:
            f = sub.first_after(tool.marker, t0)
            startup = f - t0 if f else None
        return {"startup_s": startup, "vmhwm_kib": status_kib(p.pid, "VmHWM"), "vmrss_kib": status_kib(p.pid, "VmRSS"),
                "cycles_dev1": sub.n(tool.marker), "cpu_s": cpu_s(p.pid)}
    finally:
        stop(p)


def measure_fast(tool, sub, interval_s, warmup, seconds):
    sub.reset()
    p = tool.start([1], interval_s, fast=True)
    try:
        time.sleep(warmup)
        if p.poll() is not None:
            raise RuntimeError(f"{tool.name} exited with {p.returncode}")
        c0, u0, t0 = sub.n(tool.marker), cpu_s(p.pid), time.monotonic()
        time.sleep(seconds)
        c1, u1, t1 = sub.n(tool.marker), cpu_s(p.pid), time.monotonic()
        cycles = c1 - c0
        return {"interval_s": interval_s, "cycles": cycles, "rate_per_s": cycles / (t1 - t0), "cpu_s": u1 - u0,
                "cpu_s_per_1000": (u1 - u0) / cycles * 1000 if cycles else None}
    finally:
        stop(p)


def wakeups(pid):
    """Context switches (voluntary + involuntary) of all of a process's threads so far: each is a
    thread going to sleep or being preempted, i.e. about one wake-up each."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def cpu_ns_threads(pid):
    """CPU time of all of a process's current threads in seconds, from /proc/PID/task/*/schedstat
    (nanoseconds; utime+stime in /proc/PID/stat count 10 ms ticks, too coarse for ~0.05 s)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total / 1e9


def measure_equal(tool, sub, interval_s, warmup, seconds):
    """Equal work: the same two devices (units 1 and 2) polled and published every interval_s by
    every tool, for the same time; cycles counted on device 1's topic as in measure_fast."""
    sub.reset()
    p = tool.start([1, 2], interval_s, fast=interval_s < 1)
    try:
        time.sleep(warmup)
        if p.poll() is not None:
            raise RuntimeError(f"{tool.name} exited with {p.returncode}")
        c0, u0, w0, t0 = sub.n(tool.marker), cpu_ns_threads(p.pid), wakeups(p.pid), time.monotonic()
        time.sleep(seconds)
        c1, u1, w1, t1 = sub.n(tool.marker), cpu_ns_threads(p.pid), wakeups(p.pid), time.monotonic()
        cycles = c1 - c0
        return {"interval_s": interval_s, "seconds": t1 - t0, "cycles": cycles, "rate_per_s": cycles / (t1 - t0),
                "cpu_s": u1 - u0, "cpu_s_per_1000": (u1 - u0) / cycles * 1000 if cycles else None,
                "wakeups_per_s": (w1 - w0) / (t1 - t0)}
    finally:
        stop(p)


def measure_dispatch(env, sub, n):
    charger_port = free_port()
    log = os.path.join(env.work, "charger-writes.jsonl")
    ch = subprocess.Popen([env.gridlet, "simulate", "vestel-evc04", "--port", str(charger_port), "--frozen", "--voltage", "230",
                           "--write-log", log], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(charger_port)
    g = Gridlet(env)
    text = g.config([1], 1).replace("devices:\n", f"devices:\n  - {{ name: evse, bus: c, unit: 255, profile: vestel-evc04, role: charger, max_current: 16, poll: 1s }}\n")
    text = text.replace("buses:\n", f"buses:\n  - {{ name: c, kind: tcp, host: 127.0.0.1, port: {charger_port} }}\n")
    text = text.replace("name: m1, bus: b, unit: 1, profile: eastron-sdm630,", "name: m1, bus: b, unit: 1, profile: eastron-sdm630, role: site-meter,")
    text += ("control: { restore_delay: 0s, restore_random: 0s, ramp_w_per_s: 1000000, min_dwell: 0s, fallback_limit_w: 4140 }\n")
    path = os.path.join(env.work, "gridlet-dispatch.yaml")
    with open(path, "w") as f:
        f.write(text)
    sub.reset()
    sub.keep = {"gridlet/bench/reply"}
    p = subprocess.Popen([env.gridlet, "run", "--config", path, "--log-level", "warning"], stdout=subprocess.DEVNULL,
                         stderr=open(path + ".log", "w"))
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-utility")
    pub.connect("127.0.0.1", env.mqtt_port)
    pub.loop_start()
    to_write, to_reply = [], []
    try:
        end = time.monotonic() + 15
        while sub.n("gridlet/bench/state") == 0 and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(2)  # first poll, failsafe programming, first setpoint

        def writes():
            out = []
            if os.path.exists(log):
                with open(log) as f:
                    for line in f:
                        if line.strip():
                            w = json.loads(line)
                            if w["address"] == 5004:
                                out.append(w)
            return out

        for i in range(n):
            amps = 10 if i % 2 == 0 else 6
            body = json.dumps({"id": f"b-{i}", "duration_s": 3600, "limit_w": amps * 690})
            t_wall = time.time()
            t_mono = time.monotonic()
            pub.publish("gridlet/bench/cmd/event", body, qos=1)
            end = time.monotonic() + 5
            w_ms = r_s = None
            while time.monotonic() < end and (w_ms is None or r_s is None):
                if w_ms is None:
                    for w in writes():
                        if w["ts_ms"] >= int(t_wall * 1000) - 1 and w["values"][0] == amps:
                            w_ms = w["ts_ms"] - t_wall * 1000
                            break
                if r_s is None:
                    with sub.lock:
                        for (m, _, topic, payload) in sub.messages:
                            if m >= t_mono and f'"b-{i}"' in payload.decode(errors="replace"):
                                r_s = m - t_mono
                                break
                time.sleep(0.001)
            if w_ms is None or r_s is None:
                raise RuntimeError(f"dispatch {i}: write {w_ms} reply {r_s}")
            to_write.append(w_ms)
            to_reply.append(r_s * 1000)
            time.sleep(0.05)
    finally:
        pub.loop_stop()
        pub.disconnect()
        stop(p)
        stop(ch)
        sub.keep = set()

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

    return {"n": n, "write_p50_ms": pct(to_write, 0.5), "write_p99_ms": pct(to_write, 0.99), "write_max_ms": max(to_write),
            "reply_p50_ms": pct(to_reply, 0.5), "reply_p99_ms": pct(to_reply, 0.99), "reply_max_ms": max(to_reply)}


def du(paths):
    total = 0
    for p in paths:
        if os.path.isfile(p):
            total += os.path.getsize(p)
        else:
            for root, _, files in os.walk(p):
                total += sum(os.path.getsize(os.path.join(root, f)) for f in files if not os.path.islink(os.path.join(root, f)))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gridlet", required=True)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--collectd")
    ap.add_argument("--m2m-python")
    ap.add_argument("--steady-s", type=float, default=60)
    ap.add_argument("--fast-s", type=float, default=20)
    ap.add_argument("--dispatch-n", type=int, default=100)
    ap.add_argument("--equal-s", type=float, default=30,
                    help="seconds per tool and interval of the equal-rate rows (2 devices at 1 s and at 0.1 s); 0 = skip")
    ap.add_argument("--only-dispatch", action="store_true", help="measure the dispatch latency only")
    ap.add_argument("--broker-nodelay", action="store_true",
                    help="run mosquitto with set_tcp_nodelay true (Nagle off on the broker's sockets)")
    ap.add_argument("--json")
    a = ap.parse_args()

    class Env:
        pass

    env = Env()
    env.gridlet, env.raw, env.collectd, env.m2m_python = a.gridlet, a.raw, a.collectd, a.m2m_python
    env.work = tempfile.mkdtemp(prefix="gridlet-bench-")
    os.chmod(env.work, 0o755)
    env.mqtt_port, env.meter_port = free_port(), free_port()
    broker_cmd = ["mosquitto", "-p", str(env.mqtt_port)]
    if a.broker_nodelay:
        conf = os.path.join(env.work, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {env.mqtt_port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n")
        broker_cmd = ["mosquitto", "-c", conf]
    broker = subprocess.Popen(broker_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meter = subprocess.Popen([env.gridlet, "simulate", "eastron-sdm630", "--port", str(env.meter_port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        wait_port(env.mqtt_port)
        wait_port(env.meter_port)
        sub = Sub(env.mqtt_port)
        tools = [] if a.only_dispatch else [(Gridlet(env), 0.1), (Raw(env), 0.0)]
        if env.collectd and not a.only_dispatch:
            tools.append((Collectd(env), 0.01))
        if env.m2m_python and not a.only_dispatch:
            tools.append((Modbus2MQTT(env), 0.01))
        for tool, fast_interval in tools:
            r = {}
            runs = [("steady", lambda: measure_steady(tool, sub, a.steady_s)),
                    ("fast", lambda: measure_fast(tool, sub, fast_interval, 3, a.fast_s))]
            if a.equal_s > 0:
                runs += [("equal_1s", lambda: measure_equal(tool, sub, 1, 3, a.equal_s)),
                         ("equal_100ms", lambda: measure_equal(tool, sub, 0.1, 3, a.equal_s))]
            for what, fn in runs:
                try:
                    r[what] = fn()
                except Exception as e:  # a tool that fails is reported, not hidden
                    r[what] = {"error": str(e)}
                print(f"{tool.name} {what}: {r[what]}", file=sys.stderr, flush=True)
            results[tool.name] = r
        results.setdefault("gridlet", {})["size_bytes"] = du([env.gridlet])
        if "raw C loop" in results:
            results["raw C loop"]["size_bytes"] = du([env.raw])
        if "collectd" in results:
            results["collectd"]["size_bytes"] = du([env.collectd, "/usr/lib/collectd/modbus.so", "/usr/lib/collectd/mqtt.so"])
        if "modbus2mqtt" in results:
            site = subprocess.run([env.m2m_python, "-c", "import modbus2mqtt,pymodbus,paho,os;print(' '.join(os.path.dirname(m.__file__) for m in (modbus2mqtt,pymodbus,paho)))"],
                                  capture_output=True, text=True).stdout.split()
            results["modbus2mqtt"]["size_bytes"] = du(site)
        try:
            results["gridlet"]["dispatch"] = measure_dispatch(env, sub, a.dispatch_n)
        except Exception as e:
            results["gridlet"]["dispatch"] = {"error": str(e)}
        print(f"gridlet dispatch: {results['gridlet']['dispatch']}", file=sys.stderr, flush=True)
    finally:
        stop(meter)
        stop(broker)
        shutil.rmtree(env.work, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)

    def fmt(v, spec):
        return format(v, spec) if isinstance(v, (int, float)) else "n/a"

    print("| tool | binary bytes | startup to first message (ms) | VmHWM 2 dev @1 s (KiB) | fastest poll | cycles/s | CPU s per 1,000 cycles |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        s, f = r.get("steady", {}), r.get("fast", {})
        st = s.get("startup_s")
        print(f"| {name} | {fmt(r.get('size_bytes'), ',')} | {fmt(st * 1000 if st is not None else None, '.0f')} | "
              f"{fmt(s.get('vmhwm_kib'), ',')} | {fmt(f.get('interval_s'), 'g')} s | {fmt(f.get('rate_per_s'), '.1f')} | "
              f"{fmt(f.get('cpu_s_per_1000'), '.3f')} |"
              + (f" error: {s.get('error') or f.get('error')}" if "error" in s or "error" in f else ""))
    if a.equal_s > 0:
        print()
        print(f"Equal work: 2 devices polled and published every interval by each tool, {a.equal_s:g} s each, cycles = device 1's messages")
        print()
        print("| tool | interval | cycles/s | CPU s (schedstat) | CPU s per 1,000 cycles | wake-ups/s (context switches, all threads) |")
        print("|---|---|---|---|---|---|")
        for key in ("equal_1s", "equal_100ms"):
            for name, r in results.items():
                e = r.get(key)
                if e is None:
                    continue
                if "error" in e:
                    print(f"| {name} | {key[6:]} | n/a | n/a | n/a | n/a | error: {e['error']}")
                    continue
                print(f"| {name} | {e['interval_s']:g} s | {fmt(e.get('rate_per_s'), '.2f')} | {fmt(e.get('cpu_s'), '.3f')} | "
                      f"{fmt(e.get('cpu_s_per_1000'), '.3f')} | {fmt(e.get('wakeups_per_s'), '.1f')} |")
    d = results["gridlet"].get("dispatch", {})
    print()
    print(f"gridlet dispatch ({d.get('n')} commands): published -> register written p50 {fmt(d.get('write_p50_ms'), '.1f')} ms, "
          f"p99 {fmt(d.get('write_p99_ms'), '.1f')} ms, max {fmt(d.get('write_max_ms'), '.1f')} ms; "
          f"published -> reply received p50 {fmt(d.get('reply_p50_ms'), '.1f')} ms, p99 {fmt(d.get('reply_p99_ms'), '.1f')} ms"
          + (f"; error: {d['error']}" if "error" in d else ""))


if __name__ == "__main__":
    main()
