"""Deployment: the systemd unit (verify, exposure score), the watchdog when the control loop
hangs (a fake NOTIFY_SOCKET: systemd itself cannot run here), boards, log levels, the
Prometheus text file, and the .deb built with scripts/build-deb."""
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import GRIDLET, ROOT, Broker, Simulator, free_port, stop_process, wait_until

UNIT = os.path.join(ROOT, "systemd", "gridlet.service")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def analyze(*args):
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_unit_verifies_and_exposure_is_at_most_2(workdir):
    # As shipped, the only complaint is that /usr/bin/gridlet does not exist on this machine.
    r = analyze("verify", UNIT)
    complaints = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    assert complaints, "expected the missing /usr/bin/gridlet to be reported"
    assert all("/usr/bin/gridlet is not executable" in l for l in complaints), complaints
    # With the commands pointed at the built binary, verify is silent and succeeds
    # (unknown keys, bad values and missing dependencies would all be printed).
    with open(UNIT) as f:
        text = f.read()
    assert text.count("/usr/bin/gridlet") == 2
    copy = os.path.join(workdir, "gridlet.service")
    with open(copy, "w") as f:
        f.write(text.replace("/usr/bin/gridlet", os.path.abspath(GRIDLET)))
    r = analyze("verify", copy)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr
    # A typo'd key is reported (the check above can fail).
    with open(copy, "w") as f:
        f.write(text.replace("/usr/bin/gridlet", os.path.abspath(GRIDLET)).replace("WatchdogSec=", "WatchdogSecs="))
    r = analyze("verify", copy)
    assert "Unknown key" in r.stdout + r.stderr
    # Exposure score of the shipped unit.
    r = analyze("security", "--offline=true", UNIT)
    assert r.returncode == 0, r.stderr
    m = re.search(r"Overall exposure level for gridlet\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout[-500:]
    assert float(m.group(1)) <= 2.0, r.stdout
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=gridlet", "SupplementaryGroups=dialout",
                "StateDirectory=gridlet", "RuntimeDirectory=gridlet", "NotifyAccess=main"):
        assert re.search(rf"^{re.escape(key)}", text, re.M), key


def minimal_config(workdir, meter_port, mqtt_port, extra=""):
    state = os.path.join(workdir, "state")
    return (f"site: {{ id: dep, state_dir: {state}, socket: {state}/g.sock }}\n"
            f"buses: [ {{ name: m, kind: tcp, host: 127.0.0.1, port: {meter_port}, timeout: 300ms }} ]\n"
            f"devices: [ {{ name: meter, bus: m, profile: eastron-sdm630, role: site-meter, poll: 200ms }} ]\n"
            f"mqtt: {{ host: 127.0.0.1, port: {mqtt_port}, keepalive: 5s }}\n"
            f"telemetry: {{ interval: 1s }}\nqueue: {{ max_bytes: 1MiB }}\n" + extra)


def start_agent(workdir, text, env=None, args=()):
    path = os.path.join(workdir, "g.yaml")
    with open(path, "w") as f:
        f.write(text)
    log = open(os.path.join(workdir, "agent.log"), "ab")
    proc = subprocess.Popen([GRIDLET, "run", "--config", path, *args], stdout=log, stderr=log,
                            env=dict(os.environ, **(env or {})))
    return proc, os.path.join(workdir, "agent.log")


def test_watchdog_kicks_stop_when_the_control_loop_hangs(workdir):
    """WATCHDOG=1 comes from the loop itself: when the loop blocks (hidden test hook), the
    kicks stop while the process lives on, which is what makes systemd kill and restart it."""
    sim = Simulator("eastron-sdm630", workdir)
    path = os.path.join(workdir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    proc, logpath = start_agent(workdir, minimal_config(workdir, sim.port, free_port()),
                                env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000",
                                     "GRIDLET_TEST_HANG_AFTER_MS": "1500"})
    try:
        t0 = time.monotonic()
        got = []
        while time.monotonic() - t0 < 4.5:
            try:
                got.append((time.monotonic() - t0, sock.recv(4096).decode()))
            except OSError:
                pass
        kicks = [t for (t, m) in got if "WATCHDOG=1" in m]
        assert any("READY=1" in m for (_, m) in got), got
        # Kicks every 0.2 s (half of WATCHDOG_USEC) while the loop runs...
        assert len([t for t in kicks if t < 1.5]) >= 3, kicks
        # ...and none from shortly after the hang on, for ~3 s: far beyond WatchdogSec (0.4 s here).
        assert kicks and max(kicks) < 2.0, kicks
        assert proc.poll() is None, "the process must hang, not exit"
        with open(logpath) as f:
            assert "the control loop now blocks" in f.read()
    finally:
        stop_process(proc)
        sock.close()
        sim.stop()


def test_board_defaults_and_the_boards_command(workdir):
    r = subprocess.run([GRIDLET, "boards"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    for name in ("raspberry-pi-4", "raspberry-pi-5", "beaglebone-black", "revolution-pi-connect", "generic-x86_64"):
        assert re.search(rf"^{name} ", r.stdout, re.M), r.stdout
        with open(os.path.join(ROOT, "boards", f"{name}.yaml")) as f:
            assert subprocess.run([GRIDLET, "boards", name], capture_output=True, text=True, timeout=10).stdout == f.read()
    # An rtu bus without device: invalid alone, valid with a board (by name or by path).
    cfg = os.path.join(workdir, "g.yaml")
    with open(cfg, "w") as f:
        f.write("site: { id: s }\nbuses: [ { name: b, kind: rtu } ]\n"
                "devices: [ { name: m, bus: b, profile: eastron-sdm630 } ]\nmqtt: { host: h }\n")
    r = subprocess.run([GRIDLET, "config", "check", cfg], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "buses[0].device" in r.stderr, r.stderr
    r = subprocess.run([GRIDLET, "config", "check", "--json", cfg], capture_output=True, text=True, timeout=10)
    doc = json.loads(r.stdout)
    assert r.returncode == 2 and doc["ok"] is False and "buses[0].device" in doc["error"], r.stdout
    r = subprocess.run([GRIDLET, "config", "check", "--json", "--board", "raspberry-pi-4", cfg], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and json.loads(r.stdout) == {"ok": True, "path": cfg, "site": "s", "buses": ["b"], "devices": ["m"]}
    # --json lists the boards and a board's serial ports.
    listed = json.loads(subprocess.run([GRIDLET, "boards", "--json"], capture_output=True, text=True, timeout=10).stdout)
    assert sorted(b["name"] for b in listed) == sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "boards")) if f.endswith(".yaml"))
    pi = json.loads(subprocess.run([GRIDLET, "boards", "raspberry-pi-4", "--json"], capture_output=True, text=True, timeout=10).stdout)
    assert pi["default_device"] == "/dev/ttyAMA0" and pi["serial"][0] == {"device": "/dev/ttyAMA0", "rs485": True, "direction": "rts"}
    for board in ("revolution-pi-connect", os.path.join(ROOT, "boards", "beaglebone-black.yaml")):
        r = subprocess.run([GRIDLET, "config", "check", "--board", board, cfg], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
    r = subprocess.run([GRIDLET, "config", "check", "--board", "no-such-board", cfg], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "unknown board 'no-such-board'" in r.stderr
    # The packaged example configuration is valid.
    r = subprocess.run([GRIDLET, "config", "check", os.path.join(ROOT, "packaging", "gridlet.yaml.example")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr


def parse_prom(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_file_and_log_level(workdir):
    broker = Broker(workdir)
    broker.start()
    sim = Simulator("eastron-sdm630", workdir)
    proc = None
    try:
        text = minimal_config(workdir, sim.port, broker.port, "log: { level: warning }\n")
        proc, logpath = start_agent(workdir, text, env={"GRIDLET_TEST_METRICS_INTERVAL_MS": "500"})
        prom = os.path.join(workdir, "state", "metrics.prom")

        def metrics():
            if not os.path.exists(prom):
                return None
            with open(prom) as f:
                m = parse_prom(f.read())
            ok = m.get('gridlet_poll_ok_total{device="meter"}', 0) >= 3 and m.get("gridlet_publish_acked_total", 0) >= 1
            return m if ok else None

        m = wait_until(metrics, 15, what="metrics.prom with polls and acked publishes")
        assert m['gridlet_device_up{device="meter"}'] == 1
        assert m['gridlet_poll_errors_total{device="meter"}'] == 0
        assert 0 < m['gridlet_poll_duration_seconds{device="meter"}'] < 1
        assert m["gridlet_mqtt_connected"] == 1
        assert m["gridlet_publish_published_total"] >= m["gridlet_publish_acked_total"]
        assert m['gridlet_control_source{source="default"}'] == 1
        assert "gridlet_queue_records" in m and "gridlet_queue_oldest_age_seconds" in m
        stop_process(proc)
        assert proc.returncode == 0
        with open(logpath) as f:
            log = f.read()
        # log.level warning: no notice/info lines (<5>, <6>), e.g. "connected to ..." is notice.
        assert not re.search(r"^<[567]>", log, re.M), log
        # --log-level overrides the file.
        os.remove(logpath)
        proc, logpath = start_agent(workdir, text, args=("--log-level", "info"))
        wait_until(lambda: "<5>gridlet: connected to" in open(logpath).read(), 10, what="notice lines with --log-level info")
    finally:
        if proc:
            stop_process(proc)
        sim.stop()
        broker.stop()


DPKG_DEB = shutil.which("dpkg-deb")


@pytest.mark.skipif(DPKG_DEB is None, reason="dpkg-deb is not installed")
def test_deb_contents_metadata_and_extracted_tree(workdir):
    # The test packages the binary under test (scripts/build-deb without --binary builds the release one).
    r = subprocess.run([os.path.join(ROOT, "scripts", "build-deb"), "--binary", GRIDLET, "--out", workdir,
                        "--compress", "gzip"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    deb = r.stdout.strip().splitlines()[-1]
    assert re.search(r"gridlet_\d+\.\d+\.\d+_\w+\.deb$", deb), deb
    listing = subprocess.run([DPKG_DEB, "-c", deb], capture_output=True, text=True, timeout=30).stdout
    entries = {}
    for line in listing.splitlines():
        parts = line.split()
        entries[parts[5].lstrip(".")] = (parts[0], parts[1])
    boards = sorted(f for f in os.listdir(os.path.join(ROOT, "boards")) if f.endswith(".yaml"))
    expected = {"/usr/bin/gridlet": "-rwxr-xr-x", "/lib/systemd/system/gridlet.service": "-rw-r--r--",
                "/etc/gridlet/gridlet.yaml.example": "-rw-r--r--",
                "/usr/share/doc/gridlet/operations.md": "-rw-r--r--",
                "/usr/share/doc/gridlet/configuration.md": "-rw-r--r--"}
    expected.update({f"/usr/share/gridlet/boards/{b}": "-rw-r--r--" for b in boards})
    for path, mode in expected.items():
        assert path in entries, f"{path} missing from\n{listing}"
        assert entries[path] == (mode, "root/root"), (path, entries[path])
    assert entries["/"][0] == "drwxr-xr-x"
    # The real configuration is not shipped: an upgrade can never overwrite it.
    assert "/etc/gridlet/gridlet.yaml" not in entries

    def field(name):
        return subprocess.run([DPKG_DEB, "-f", deb, name], capture_output=True, text=True, timeout=30).stdout.strip()

    assert field("Package") == "gridlet"
    depends = [d.strip().split(" ")[0] for d in field("Depends").split(",")]
    for dep in ("libmodbus5", "libmosquitto1", "libyaml-0-2", "libcurl4", "adduser"):
        assert dep in depends, depends
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert field("Architecture") == arch
    info = subprocess.run([DPKG_DEB, "-I", deb, "conffiles"], capture_output=True, text=True, timeout=30)
    assert info.stdout.split() == ["/etc/gridlet/gridlet.yaml.example"]
    postinst = subprocess.run([DPKG_DEB, "-I", deb, "postinst"], capture_output=True, text=True, timeout=30).stdout
    assert "adduser --system" in postinst and "gridlet dialout" in postinst
    for script in ("postinst", "prerm", "postrm"):
        body = subprocess.run([DPKG_DEB, "-I", deb, script], capture_output=True, text=True, timeout=30).stdout
        assert body.startswith("#!/bin/sh")
        assert subprocess.run(["sh", "-n"], input=body, text=True).returncode == 0, script

    # Extract into a temporary root: the binary runs, the example config checks with the
    # packaged board files, and the unit verifies once ExecStart points into the tree.
    root = os.path.join(workdir, "root")
    subprocess.run([DPKG_DEB, "-x", deb, root], check=True, timeout=60)
    binary = os.path.join(root, "usr/bin/gridlet")
    r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.strip() == field("Version")
    r = subprocess.run([binary, "config", "check", "--board", os.path.join(root, "usr/share/gridlet/boards/raspberry-pi-4.yaml"),
                        os.path.join(root, "etc/gridlet/gridlet.yaml.example")], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    if SYSTEMD_ANALYZE:
        unit = os.path.join(workdir, "gridlet.service")
        with open(os.path.join(root, "lib/systemd/system/gridlet.service")) as f:
            text = f.read().replace("/usr/bin/gridlet", binary)
        with open(unit, "w") as f:
            f.write(text)
        r = analyze("verify", unit)
        assert r.returncode == 0 and (r.stdout + r.stderr).strip() == "", r.stdout + r.stderr
