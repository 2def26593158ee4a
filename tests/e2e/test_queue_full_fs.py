"""A queue on a small filesystem that another writer filled to 100 % keeps working within its
preallocated space: appends and acks thousands of records, reopens, and never grows.

Needs root to mount a 2 MiB tmpfs (or, if tmpfs cannot be mounted, a loop-mounted ext4
image). When neither works the test fails and says why; it does not skip."""
import errno
import os
import subprocess
import tempfile

import pytest

from queue_crash import STRESS

MAX = 1024 * 1024


def mount_small_fs(d, workdir):
    """Mount a 2 MiB filesystem on d; returns a description, or raises with every reason."""
    reasons = []
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", d], capture_output=True, text=True)
    if r.returncode == 0:
        return "tmpfs 2 MiB"
    reasons.append(f"mount -t tmpfs: {r.stderr.strip() or r.returncode}")
    img = os.path.join(workdir, "fs.img")
    with open(img, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    mk = subprocess.run(["mkfs.ext4", "-q", "-F", img], capture_output=True, text=True)
    if mk.returncode == 0:
        r = subprocess.run(["mount", "-o", "loop", img, d], capture_output=True, text=True)
        if r.returncode == 0:
            return "ext4 loop image 4 MiB"
        reasons.append(f"mount -o loop: {r.stderr.strip() or r.returncode}")
    else:
        reasons.append(f"mkfs.ext4: {mk.stderr.strip() or mk.returncode}")
    raise RuntimeError(f"cannot mount a small filesystem (uid {os.getuid()}): " + "; ".join(reasons))


def stress(d, ops, run):
    r = subprocess.run([STRESS, "--dir", d, "--max-bytes", str(MAX), "--sync", "always", "--run", str(run),
                        "--ops", str(ops), "--seed", "5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"stress run {run} failed: {r.stderr}"
    lines = r.stdout.splitlines()
    assert lines[-1] == "DONE"
    return lines


def test_queue_keeps_working_on_a_full_filesystem():
    assert os.path.exists(STRESS), f"{STRESS} missing: run swift build"
    with tempfile.TemporaryDirectory(prefix="gridlet-fullfs-") as work:
        mnt = os.path.join(work, "mnt")
        os.mkdir(mnt)
        try:
            kind = mount_small_fs(mnt, work)
        except RuntimeError as e:
            pytest.fail(str(e))
        try:
            qdir = os.path.join(mnt, "q")
            stress(qdir, 1, 1)  # creates and preallocates the queue
            qfile = os.path.join(qdir, "queue.dat")
            # Another writer fills the filesystem to 100 %.
            filled = 0
            with open(os.path.join(mnt, "filler"), "wb") as f:
                chunk = b"\xab" * 65536
                while True:
                    try:
                        n = os.write(f.fileno(), chunk)
                        filled += n
                    except OSError as e:
                        assert e.errno == errno.ENOSPC, e
                        if len(chunk) == 1:
                            break
                        chunk = chunk[: len(chunk) // 2]
            sv = os.statvfs(mnt)
            assert sv.f_bavail == 0, f"{kind} not full: {sv.f_bavail} blocks free"
            assert filled > 0

            lines = stress(qdir, 20000, 2)
            appended = sum(1 for x in lines if x.startswith("D "))
            acked = sum(1 for x in lines if x.startswith("K "))
            assert appended > 5000 and acked > 1000, (appended, acked)
            # Reopen on the still-full filesystem: everything recovers, nothing damaged.
            lines = stress(qdir, 20000, 3)
            opened = next(x for x in lines if x.startswith("OPEN "))
            assert "skipped=0" in opened, opened
            assert sum(1 for x in lines if x.startswith("R ")) > 0
            assert os.statvfs(mnt).f_bavail == 0
            st = os.stat(qfile)
            assert st.st_size == MAX + 4096
            assert st.st_blocks * 512 <= MAX + 4096
            assert sorted(os.listdir(qdir)) == ["queue.dat"]
        finally:
            subprocess.run(["umount", mnt], capture_output=True)
