"""Modbus breadth end to end: RTU over a socat pty pair (gridlet's simulator and pymodbus as
servers), pymodbus over TCP serving a profile's map, scan, modbus read/write, injected faults,
and diagnostics through the daemon's socket."""
import json
import os
import struct
import subprocess
import sys
import time

import pytest

from conftest import GRIDLET, Agent, free_port, port_open, stop_process, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


def f32(v, lo_first=False):
    raw = struct.pack(">f", v)
    w = [int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")]
    return w[::-1] if lo_first else w


def i32(v, lo_first=False):
    raw = struct.pack(">i", v)
    w = [int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")]
    return w[::-1] if lo_first else w


def gridlet(*args, timeout=30):
    return subprocess.run([GRIDLET, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def ptys(workdir):
    """A socat pseudo-terminal pair: (a, b)."""
    a, b = os.path.join(workdir, "ttyA"), os.path.join(workdir, "ttyB")
    proc = subprocess.Popen(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: os.path.exists(a) and os.path.exists(b), 10, what="socat ptys")
    yield a, b
    stop_process(proc)


class Proc:
    def __init__(self, args, ready):
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.1)
        wait_until(ready, 15, what=" ".join(args[:3]))

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def procs():
    started = []
    yield started
    for p in reversed(started):
        p.stop()


# SDM630 (float32 hi_first, input registers) with known values.
SDM630 = {0x00: 231.5, 0x02: 229.25, 0x04: 230.75, 0x06: 4.5, 0x08: 4.25, 0x0A: 4.75, 0x0C: 1041.75, 0x0E: 974.5,
          0x10: 1096.0, 0x34: -3112.25, 0x46: 49.98, 0x48: 12345.5, 0x4A: 678.25}


def sdm630_map():
    return {"input": {str(a): f32(v) for a, v in SDM630.items()}}


def meter_config(workdir, bus_yaml, profile="eastron-sdm630", unit=1):
    state = os.path.join(workdir, "state")
    text = f"""site:
  id: diag
  state_dir: {state}
  socket: {state}/gridlet.sock
buses:
  - name: field
{bus_yaml}
devices:
  - name: meter
    bus: field
    unit: {unit}
    profile: {profile}
    role: site-meter
    poll: 500ms
mqtt:
  host: 127.0.0.1
  port: {free_port()}
"""
    path = os.path.join(workdir, "gridlet.yaml")
    with open(path, "w") as f:
        f.write(text)
    r = gridlet("config", "check", path)
    assert r.returncode == 0, r.stderr
    return path


def check_sdm630_read(r):
    assert r.returncode == 0, r.stderr + r.stdout
    points = json.loads(r.stdout)["points"]
    names = {0x34: "power_w", 0x00: "voltage_l1_v", 0x46: "frequency_hz", 0x06: "current_l1_a"}
    for addr, name in names.items():
        assert points[name]["value"] == pytest.approx(SDM630[addr], rel=1e-6), name
    assert points["import_wh"]["value"] == pytest.approx(12345.5 * 1000, rel=1e-6)
    assert points["power_w"]["unit"] == "W"


def test_reads_pymodbus_over_tcp_with_the_profile_map(workdir, procs):
    port = free_port()
    procs.append(Proc([sys.executable, os.path.join(HERE, "profile_server.py"), "tcp", str(port), "1", json.dumps(sdm630_map())],
                      lambda: port_open(port)))
    cfg = meter_config(workdir, f"    kind: tcp\n    host: 127.0.0.1\n    port: {port}")
    check_sdm630_read(gridlet("read", "meter", "--config", cfg, "--json"))
    # Human output: every point with its unit.
    r = gridlet("read", "meter", "--config", cfg)
    assert r.returncode == 0
    assert any(line.split()[:1] == ["power_w"] and line.split()[-1] == "W" for line in r.stdout.splitlines()), r.stdout


def test_reads_pymodbus_over_rtu_through_socat(workdir, ptys, procs):
    a, b = ptys
    # 8N1: on a Linux pty parity does not exist on the wire (the pty driver clears PARENB on every
    # tcsetattr) and pyserial's reconfiguration with parity fails there with EINVAL. What gridlet
    # asks the driver for is checked with tcgetattr in test_rtu_line_settings_reach_the_kernel.
    procs.append(Proc([sys.executable, os.path.join(HERE, "profile_server.py"), "rtu", a, "5", json.dumps(sdm630_map()), "N"],
                      lambda: True))
    cfg = meter_config(workdir, f"    kind: rtu\n    device: {b}\n    baud: 9600\n    parity: N\n    timeout: 500ms", unit=5)
    # pymodbus needs a moment to open the pty; the first reads may time out.
    deadline = time.monotonic() + 15
    while True:
        r = gridlet("read", "meter", "--config", cfg, "--json")
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    check_sdm630_read(r)
    # Word order and sign through the raw command, too.
    r = gridlet("modbus", "read", "--rtu", b, "--unit", "5", "--function", "4", "--address", "0x34",
                "--type", "float32", "--json", "--config", "/nonexistent")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["values"] == [pytest.approx(-3112.25)]


def test_gridlet_rtu_client_reads_gridlet_rtu_simulator_and_scan_finds_it(workdir, ptys, procs):
    a, b = ptys
    procs.append(Proc([GRIDLET, "simulate", "carlo-gavazzi-em24", "--rtu", a, "--unit", "7", "--parity", "even",
                       "--stop-bits", "2", "--frozen"], lambda: True))
    time.sleep(0.5)
    common = ["--rtu", b, "--parity", "even", "--stop-bits", "2", "--config", "/nonexistent"]
    r = gridlet("modbus", "read", *common, "--unit", "7", "--function", "4", "--address", "0x28", "--type", "int32",
                "--word-order", "lo_first", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    power = doc["values"][0] * 0.1
    assert 2000 < power < 4000, doc
    # The same value read with the wrong word order is something else entirely.
    r2 = gridlet("modbus", "read", *common, "--unit", "7", "--function", "4", "--address", "0x28", "--type", "int32", "--json")
    assert json.loads(r2.stdout)["values"][0] != doc["values"][0]

    start = time.monotonic()
    r = gridlet("scan", *common, "--from", "1", "--to", "12", "--timeout", "60ms", "--json")
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert [f["unit"] for f in json.loads(r.stdout)["found"]] == [7]
    assert elapsed < 12 * 0.06 * 3 + 3, f"scan took {elapsed:.1f}s"
    assert "unit 7: answers" in r.stderr and "12/12 scanned" in r.stderr


def test_faults_exception_by_name_and_no_answer_at_runtime(workdir, procs):
    port = free_port()
    fault_file = os.path.join(workdir, "fault")
    procs.append(Proc([GRIDLET, "simulate", "eastron-sdm630", "--port", str(port), "--frozen", "--fault-file", fault_file],
                      lambda: port_open(port)))
    args = ["modbus", "read", "--tcp", f"127.0.0.1:{port}", "--function", "4", "--address", "0", "--type", "float32",
            "--timeout", "200ms", "--config", "/nonexistent"]
    assert gridlet(*args).returncode == 0
    with open(fault_file, "w") as f:
        f.write("exception:2\n")
    r = wait_until(lambda: (lambda r: r if r.returncode == 1 else None)(gridlet(*args)), 5, what="exception")
    assert "exception 2: illegal data address" in r.stderr
    with open(fault_file, "w") as f:
        f.write("no-answer\n")
    r = wait_until(lambda: (lambda r: r if "no answer" in r.stderr else None)(gridlet(*args)), 5, what="no answer")
    assert r.returncode == 1 and "no answer within 200 ms" in r.stderr
    os.unlink(fault_file)
    wait_until(lambda: gridlet(*args).returncode == 0, 5, what="answers again")
    # Usage errors exit 2.
    assert gridlet("modbus", "read", "--tcp", f"127.0.0.1:{port}", "--function", "5", "--address", "0",
                   "--config", "/nonexistent").returncode == 2
    assert gridlet("modbus", "read", "--address", "0").returncode == 2


def test_diagnostics_go_through_the_running_daemon(workdir, procs):
    port = free_port()
    procs.append(Proc([GRIDLET, "simulate", "eastron-sdm630", "--port", str(port), "--frozen"], lambda: port_open(port)))
    cfg = meter_config(workdir, f"    kind: tcp\n    host: 127.0.0.1\n    port: {port}")
    agent = subprocess.Popen([GRIDLET, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = os.path.join(workdir, "state", "gridlet.sock")
        wait_until(lambda: os.path.exists(sock), 15, what="daemon socket")
        r = gridlet("modbus", "read", "--bus", "field", "--unit", "1", "--function", "4", "--address", "0x34",
                    "--type", "float32", "--json", "--config", cfg)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["via"] == "daemon" and doc["bus"] == "field"
        assert doc["values"][0] == pytest.approx(1012.37 + 987.61 + 1043.18, rel=1e-6)
        # The same endpoint given as --tcp is recognised as the configured bus.
        r = gridlet("modbus", "read", "--tcp", f"127.0.0.1:{port}", "--function", "4", "--address", "0", "--json",
                    "--config", cfg)
        assert json.loads(r.stdout)["via"] == "daemon"
        r = gridlet("scan", "--bus", "field", "--from", "1", "--to", "3", "--json", "--config", cfg)
        assert r.returncode == 0, r.stderr
        assert [f["unit"] for f in json.loads(r.stdout)["found"]] == [1, 2, 3], "TCP simulator answers any unit"
    finally:
        stop_process(agent)
    # Without the daemon the command goes direct.
    r = gridlet("modbus", "read", "--bus", "field", "--function", "4", "--address", "0", "--json", "--config", cfg)
    assert r.returncode == 0 and json.loads(r.stdout)["via"] == "direct", r.stderr


def test_writes_to_the_registers_the_daemon_drives_are_refused_through_it(workdir, procs):
    """While the daemon drives a charger, `modbus write` through it may not touch the setpoint,
    failsafe or alive registers (the daemon would overwrite them, the charger could exceed the
    limit); reads and other registers go through; with the daemon stopped the bench write works."""
    port = free_port()
    log = os.path.join(workdir, "writes.jsonl")
    procs.append(Proc([GRIDLET, "simulate", "vestel-evc04", "--port", str(port), "--frozen", "--write-log", log],
                      lambda: port_open(port)))
    state = os.path.join(workdir, "state")
    cfg = os.path.join(workdir, "gridlet.yaml")
    with open(cfg, "w") as f:
        f.write(f"""site:
  id: diag
  state_dir: {state}
  socket: {state}/gridlet.sock
buses:
  - name: lan
    kind: tcp
    host: 127.0.0.1
    port: {port}
devices:
  - name: evse
    bus: lan
    unit: 255
    profile: vestel-evc04
    role: charger
    max_current: 16
mqtt:
  host: 127.0.0.1
  port: {free_port()}
""")

    def written(address):
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return [w["values"] for w in map(json.loads, filter(str.strip, f)) if w["address"] == address]

    agent = subprocess.Popen([GRIDLET, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists(os.path.join(state, "gridlet.sock")), 15, what="daemon socket")
        wait_until(lambda: written(5004), 15, what="the daemon driving the setpoint")
        r = gridlet("modbus", "write", "--bus", "lan", "--unit", "255", "--function", "6", "--address", "5004", "32",
                    "--config", cfg)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "refused: holding register 5004 is the charging_current register of charger evse" in r.stderr, r.stderr
        assert "overwritten" in r.stderr and "limit in force" in r.stderr
        assert "cmd/event" in r.stderr and "stop the daemon" in r.stderr
        # The same endpoint as --tcp with the default unit 1: a TCP charger alone on its endpoint
        # answers any unit id, so this is refused too.
        r = gridlet("modbus", "write", "--tcp", f"127.0.0.1:{port}", "--function", "16", "--address", "2002", "600",
                    "--json", "--config", cfg)
        assert r.returncode == 1
        doc = json.loads(r.stdout)
        assert doc["ok"] is False and doc["refused"] is True and doc["via"] == "daemon", doc
        assert "failsafe_timeout" in doc["error"] and "any unit id" in doc["error"], doc
        assert [32] not in written(5004) and [600] not in written(2002), "nothing reached the charger"
        # Reads stay allowed, and so does a register the daemon does not drive.
        r = gridlet("modbus", "read", "--bus", "lan", "--unit", "255", "--address", "5004", "--json", "--config", cfg)
        assert r.returncode == 0 and json.loads(r.stdout)["via"] == "daemon", r.stderr
        r = gridlet("modbus", "write", "--bus", "lan", "--unit", "255", "--function", "6", "--address", "5005", "7",
                    "--json", "--config", cfg)
        assert "refused" not in json.loads(r.stdout), r.stdout
    finally:
        stop_process(agent)
    # A bench test with the daemon stopped writes directly.
    r = gridlet("modbus", "write", "--bus", "lan", "--unit", "255", "--function", "6", "--address", "5004", "10",
                "--json", "--config", cfg)
    assert r.returncode == 0 and json.loads(r.stdout)["via"] == "direct", r.stdout + r.stderr
    wait_until(lambda: [10] in written(5004), 5, what="the direct write")


def test_agent_reads_again_after_the_serial_adapter_vanishes_and_returns(workdir, procs):
    """A USB RS-485 adapter unplugged and plugged back: the pty pair (socat) disappears with its
    device links, the agent marks the meter not ok, and reads it again once the links are back."""
    a, b = os.path.join(workdir, "ttyA"), os.path.join(workdir, "ttyB")

    def start_link():
        p = subprocess.Popen(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(a) and os.path.exists(b), 10, what="socat ptys")
        return p

    link = start_link()
    sim = Proc([GRIDLET, "simulate", "eastron-sdm630", "--rtu", a, "--unit", "1", "--frozen"], lambda: True)
    path = meter_config(workdir, f"    kind: rtu\n    device: {b}\n    baud: 9600\n    timeout: 200ms\n    retries: 0\n")
    agent = Agent(workdir, open(path).read())
    agent.start()
    try:
        wait_until(lambda: agent.status()["state"]["devices"]["meter"]["ok"], 15, what="the meter read over RTU")
        sim.stop()
        stop_process(link)
        wait_until(lambda: not os.path.exists(b), 5, what="the device link to vanish")
        wait_until(lambda: not agent.status()["state"]["devices"]["meter"]["ok"], 15, what="the meter marked not ok")
        err = agent.status()["devices"]["meter"]["error"]
        assert "meter" in err and "unit 1" in err, err
        # Plugged back in: a new pty pair under the same names, the device answers again.
        link = start_link()
        sim = Proc([GRIDLET, "simulate", "eastron-sdm630", "--rtu", a, "--unit", "1", "--frozen"], lambda: True)
        wait_until(lambda: agent.status()["state"]["devices"]["meter"]["ok"], 40, what="the meter read again")
        assert agent.proc.poll() is None
    finally:
        agent.stop()
        sim.stop()
        stop_process(link)


def test_scan_through_the_daemon_uses_the_cli_timeout_and_polls_go_on(workdir, ptys, procs):
    """The configured bus has a 2 s timeout and 2 retries; `scan --timeout 80ms` through the daemon
    probes each unit once with 80 ms (40 silent units: ~4 s instead of 240 s), one unit per request,
    so the daemon keeps reading its meter in between."""
    a, b = ptys
    procs.append(Proc([GRIDLET, "simulate", "eastron-sdm630", "--rtu", a, "--unit", "7", "--frozen"], lambda: True))
    path = meter_config(workdir, f"    kind: rtu\n    device: {b}\n    baud: 9600\n    timeout: 2s\n    retries: 2\n", unit=7)
    agent = Agent(workdir, open(path).read())
    agent.start()
    try:
        wait_until(lambda: agent.status()["state"]["devices"]["meter"]["ok"], 15, what="the meter read over RTU")
        st = agent.status()
        assert st["buses"]["field"] == {"endpoint": f"{b} 9600 8N1", "rs485_direction": None}, st["buses"]
        scan = subprocess.Popen([GRIDLET, "scan", "--bus", "field", "--from", "1", "--to", "40", "--timeout", "80ms",
                                 "--json", "--config", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        seen = set()
        while scan.poll() is None and time.monotonic() - start < 30:
            seen.add(agent.status()["state"]["devices"]["meter"]["last_seen"])
            time.sleep(0.2)
        out, err = scan.communicate(timeout=60)
        elapsed = time.monotonic() - start
        assert scan.returncode == 0, err
        doc = json.loads(out)
        assert doc["via"] == "daemon" and doc["scanned"] == 40, doc
        assert [f["unit"] for f in doc["found"]] == [7]
        assert elapsed < 12, f"scan took {elapsed:.1f}s: the 2 s bus timeout (or its retries) was used"
        assert elapsed > 39 * 0.08 * 0.9, f"scan took {elapsed:.1f}s: shorter than 39 silent units x 80 ms"
        assert "through the daemon" in err and "unit 7: answers" in err and "40/40 scanned" in err, err
        assert len(seen) >= 3, f"the meter was not read while the scan ran: last_seen {sorted(seen)}"
        assert agent.status()["state"]["devices"]["meter"]["ok"]
    finally:
        agent.stop()


def test_rtu_line_settings_reach_the_kernel(workdir, ptys, procs):
    """Parity, stop bits and baud are what the tty driver was given (a pty passes bytes whatever the
    framing, so the settings are read back with tcgetattr on both ends). The Linux pty driver
    clears PARENB and forces CS8 on every tcsetattr (drivers/tty/pty.c), which is also why pyserial
    refuses parity on a pty; PARODD and CSTOPB survive, so odd parity and 2 stop bits are visible."""
    import termios
    a, b = ptys
    procs.append(Proc([GRIDLET, "simulate", "eastron-sdm630", "--rtu", a, "--unit", "1", "--frozen", "--baud", "19200",
                       "--parity", "odd", "--stop-bits", "2"], lambda: True))
    path = meter_config(workdir, f"    kind: rtu\n    device: {b}\n    baud: 19200\n    parity: O\n    stop_bits: 2\n")
    agent = Agent(workdir, open(path).read())
    agent.start()
    try:
        wait_until(lambda: agent.status()["state"]["devices"]["meter"]["ok"], 15, what="the meter read over RTU")
        for end in (a, b):
            fd = os.open(os.path.realpath(end), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
            finally:
                os.close(fd)
            assert cflag & termios.PARODD, f"{end}: odd parity not set"
            assert cflag & termios.CSTOPB, f"{end}: two stop bits not set"
            assert cflag & termios.CSIZE == termios.CS8, f"{end}: not 8 data bits"
            assert ispeed == termios.B19200 and ospeed == termios.B19200, f"{end}: speed {ispeed}/{ospeed}"
            assert not lflag & termios.ICANON, f"{end}: not raw"
    finally:
        agent.stop()


def test_rs485_on_a_port_without_direction_control_says_what_to_do(workdir, ptys, procs):
    a, b = ptys
    procs.append(Proc([GRIDLET, "simulate", "eastron-sdm630", "--rtu", a, "--unit", "1", "--frozen"], lambda: True))
    base = ["modbus", "read", "--rtu", b, "--function", "4", "--address", "0", "--config", "/nonexistent"]
    assert gridlet(*base).returncode == 0
    r = gridlet(*base, "--rs485")
    assert r.returncode == 1 and "no kernel RS-485 mode (ENOTTY) and cannot drive RTS on this port" in r.stderr, r.stderr
    r = gridlet(*base, "--rs485", "--rs485-mode", "kernel")
    assert r.returncode == 1 and "use rs485_mode: rts-up" in r.stderr, r.stderr
    r = gridlet(*base, "--rs485-mode", "rts-up")
    assert r.returncode == 2 and "apply with --rtu DEVICE --rs485" in r.stderr, r.stderr
    # The agent reports it per device and the bus shows no direction control in use.
    path = meter_config(workdir, f"    kind: rtu\n    device: {b}\n    rs485: true\n    rs485_mode: rts-up\n    timeout: 200ms\n")
    agent = Agent(workdir, open(path).read())
    agent.start()
    try:
        wait_until(lambda: "cannot drive RTS" in (agent.status()["devices"]["meter"].get("error") or ""), 15,
                   what="the RTS error in status")
        st = agent.status()
        assert not st["state"]["devices"]["meter"]["ok"]
        assert st["buses"]["field"] == {"endpoint": f"{b} 9600 8N1 rs485", "rs485_direction": None}
    finally:
        agent.stop()


def test_rtu_over_tcp_reads_a_pymodbus_adapter_and_survives_its_restart(workdir, procs):
    """RTU frames over raw TCP (a serial-to-Ethernet adapter in transparent mode), which
    libmodbus cannot speak itself: pymodbus's TCP server with the RTU framer plays the adapter."""
    port = free_port()
    server = [sys.executable, os.path.join(HERE, "profile_server.py"), "rtu-over-tcp", str(port), "4", json.dumps(sdm630_map())]
    adapter = Proc(server, lambda: port_open(port))
    procs.append(adapter)
    cfg = meter_config(workdir, f"    kind: rtu-over-tcp\n    host: 127.0.0.1\n    port: {port}\n    timeout: 300ms\n    retries: 0", unit=4)
    check_sdm630_read(gridlet("read", "meter", "--config", cfg, "--json"))
    r = gridlet("modbus", "read", "--rtu-over-tcp", f"127.0.0.1:{port}", "--unit", "4", "--function", "4", "--address", "0x34",
                "--type", "float32", "--json", "--config", "/nonexistent")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["values"] == [pytest.approx(-3112.25)]
    # pymodbus answers a unit it does not serve with an exception, which comes through by name.
    r = gridlet("modbus", "read", "--rtu-over-tcp", f"127.0.0.1:{port}", "--unit", "9", "--function", "4", "--address", "0",
                "--timeout", "200ms", "--config", "/nonexistent")
    assert r.returncode == 1 and "exception 4: slave device failure" in r.stderr, r.stderr

    # The agent keeps the connection; the adapter restarts; the agent reads again.
    agent = Agent(workdir, open(cfg).read())
    agent.start()
    try:
        wait_until(lambda: agent.status()["state"]["devices"]["meter"]["ok"], 15, what="the meter read over RTU-over-TCP")
        assert agent.status()["buses"]["field"]["endpoint"] == f"rtu-over-tcp://127.0.0.1:{port}"
        adapter.stop()
        wait_until(lambda: not agent.status()["state"]["devices"]["meter"]["ok"], 15, what="the meter marked not ok")
        err = agent.status()["devices"]["meter"]["error"]
        assert f"RTU-over-TCP adapter 127.0.0.1:{port}: connection refused" in err, err
        procs.append(Proc(server, lambda: port_open(port)))
        wait_until(lambda: agent.status()["state"]["devices"]["meter"]["ok"], 40, what="the meter read again")
    finally:
        agent.stop()


def test_rtu_over_tcp_scan_through_a_socat_adapter(workdir, procs):
    """gridlet's own RTU simulator behind `socat pty tcp-listen` (what a transparent adapter
    does): scan finds exactly its unit; a refused connection is said as such."""
    port = free_port()
    tty = os.path.join(workdir, "ttyAdapter")
    procs.append(Proc(["socat", f"pty,raw,echo=0,link={tty}", f"tcp-listen:{port},reuseaddr,bind=127.0.0.1"],
                      lambda: os.path.exists(tty)))
    procs.append(Proc([GRIDLET, "simulate", "eastron-sdm120", "--rtu", tty, "--unit", "5", "--frozen"], lambda: True))
    time.sleep(0.3)
    r = gridlet("scan", "--rtu-over-tcp", f"127.0.0.1:{port}", "--from", "1", "--to", "8", "--timeout", "100ms", "--json",
                "--config", "/nonexistent")
    assert r.returncode == 0, r.stderr
    assert [f["unit"] for f in json.loads(r.stdout)["found"]] == [5]
    assert "unit 5: answers" in r.stderr and "8/8 scanned" in r.stderr
    r = gridlet("modbus", "read", "--rtu-over-tcp", f"127.0.0.1:{free_port()}", "--function", "4", "--address", "0",
                "--config", "/nonexistent")
    assert r.returncode == 1 and "RTU-over-TCP adapter" in r.stderr and "connection refused" in r.stderr, r.stderr


def test_pymodbus_reads_gridlet_simulate_over_rtu_over_tcp(workdir, procs):
    """`gridlet simulate --rtu-over-tcp` plays a transparent adapter: pymodbus's TCP client with
    the RTU framer (an independent implementation) reads exactly what gridlet's client reads."""
    from pymodbus import FramerType
    from pymodbus.client import ModbusTcpClient
    port = free_port()
    procs.append(Proc([GRIDLET, "simulate", "eastron-sdm630", "--rtu-over-tcp", "--port", str(port), "--unit", "2", "--frozen"],
                      lambda: port_open(port)))
    ours = gridlet("modbus", "read", "--rtu-over-tcp", f"127.0.0.1:{port}", "--unit", "2", "--function", "4", "--address", "0",
                   "--count", "8", "--json", "--config", "/nonexistent")
    assert ours.returncode == 0, ours.stderr
    client = ModbusTcpClient("127.0.0.1", port=port, framer=FramerType.RTU, timeout=1, retries=0)
    assert client.connect()
    try:
        theirs = client.read_input_registers(0, count=8, device_id=2)
        assert not theirs.isError(), theirs
        assert theirs.registers == json.loads(ours.stdout)["registers"]
        # A unit the simulator does not answer stays silent over TCP, as on a serial bus.
        from pymodbus.exceptions import ModbusIOException
        with pytest.raises(ModbusIOException):
            client.read_input_registers(0, count=1, device_id=3)
    finally:
        client.close()
