"""`gridlet run` allocates from one malloc arena (mallopt M_ARENA_MAX 1, docs/benchmarks.md): glibc
would give each allocating thread an arena of its own (a 64 MiB reservation each, ~100 KiB more
resident memory in all). MALLOC_ARENA_MAX in the environment still decides when set."""
import os
import subprocess
import time

from conftest import GRIDLET, free_port, stop_process


def arena_reservations(pid):
    """Non-main malloc arenas: large PROT_NONE anonymous reservations in /proc/PID/maps."""
    n = 0
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5 and parts[1] == "---p":
                start, end = (int(x, 16) for x in parts[0].split("-"))
                if end - start >= 16 * 1024 * 1024:
                    n += 1
    return n


def run_demo(tmp_path, env_extra):
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env.update(env_extra)
    # The demo: simulated meter and charger in-process (threads that allocate), no broker listening.
    proc = subprocess.Popen([GRIDLET, "run", "--demo", "--state-dir", str(tmp_path / "state"), "--mqtt-port", str(free_port())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        time.sleep(4)
        assert proc.poll() is None, "gridlet run --demo exited"
        return arena_reservations(proc.pid)
    finally:
        stop_process(proc)


def test_run_uses_one_malloc_arena(tmp_path):
    assert run_demo(tmp_path, {}) == 0
    # The environment still decides: with its own limit, threads get arenas again.
    assert run_demo(tmp_path, {"MALLOC_ARENA_MAX": "8"}) > 0
