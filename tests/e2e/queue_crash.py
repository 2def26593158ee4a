"""kill -9 crash loop for the on-disk queue, shared by tests/e2e/test_queue_crash.py (300
iterations) and bench/queue-crash.sh (10,000).

Each iteration starts `gridlet-queue-stress` on the same queue directory with a sync mode
(always, batch, none in turn), lets it append, drain and ack for a random time (sometimes
killed while still opening/recovering), then SIGKILLs it. The next run dumps every record
it finds at open; that dump is checked against everything earlier runs reported:

- every record reported durable (`D`) and not acked (`K`, printed before the ack) is
  present with the exact payload, or, if its ring overflowed, covered by a gap record of its
  class (seen in a dump or while draining);
- every record present is intact (payload derived from the id it carries), was appended
  (`W`, printed before the append), and a durable one sits at its reported seq; seqs are
  strictly increasing;
- recovery after kill -9 reports at most one damaged record per ring (the torn tail of the
  write that was under way; a durable record is never among them);
- the directory holds only queue.dat, whose size and allocated blocks (st_blocks * 512)
  never exceed max_bytes + 4096, checked while the process runs and after the kill.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The loop runs on tmpfs when it can: kill -9 keeps the page cache, so what it checks does
# not depend on fsync, and a slow shared disk would otherwise decide the iteration rate.
TMP_ROOT = os.environ.get("QUEUE_CRASH_DIR", "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None)
STRESS = os.environ.get("GRIDLET_QUEUE_STRESS_BIN", os.path.join(ROOT, ".build", "debug", "gridlet-queue-stress"))
CLASS = {"t": "telemetry", "l": "priority", "r": "priority"}


def expected_payload(ident):
    n = 8 + ident % 240
    return ident.to_bytes(8, "little") + bytes(((ident * 131 + i * 7) & 0xFF) for i in range(n))


SECTOR = 512
# -bg: the same with the syncs on a thread of their own (DiskQueue.enableBackgroundSync).
MODES_KILL = ["always", "batch", "none", "always-bg", "batch-bg"]
MODES_POWER_CUT = ["always", "batch", "always-bg", "batch-bg"]


def build_shim(workdir, name="powercut_shim"):
    """Compiles tests/e2e/<name>.c (an LD_PRELOAD shim) into workdir; returns the .so path."""
    so = os.path.join(workdir, name + ".so")
    import shutil
    cc = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), "cc")
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", so, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    name + ".c")], check=True)  # dlsym is in libc since glibc 2.34
    return so


def read_journal(path):
    """[('W', offset, old, new) | ('B', token) | ('E', token) | ('O', bytes)] from the shim's
    journal (a torn last entry is dropped)."""
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        tag = data[i:i + 1]
        if tag in (b"B", b"E"):
            if i + 5 > len(data):
                break
            entries.append((tag.decode(), int.from_bytes(data[i + 1:i + 5], "little")))
            i += 5
        elif tag == b"O":
            if i + 5 > len(data):
                break
            n = int.from_bytes(data[i + 1:i + 5], "little")
            if i + 5 + n > len(data):
                break
            entries.append(("O", data[i + 5:i + 5 + n]))
            i += 5 + n
        elif tag == b"W":
            if i + 13 > len(data):
                break
            off = int.from_bytes(data[i + 1:i + 9], "little")
            n = int.from_bytes(data[i + 9:i + 13], "little")
            if i + 13 + 2 * n > len(data):
                break
            entries.append(("W", off, data[i + 13:i + 13 + n], data[i + 13 + n:i + 13 + 2 * n]))
            i += 13 + 2 * n
        else:
            raise AssertionError(f"journal damaged at byte {i}")
    return entries


class CrashLoop:
    def __init__(self, directory, max_bytes, seed, power_cut=False):
        self.power_cut = power_cut
        self.shim = build_shim(os.path.dirname(directory)) if power_cut else None
        self.journal = os.path.join(os.path.dirname(directory), "journal.bin")
        self.power_cuts = {"all lost": 0, "all kept": 0, "random sectors": 0}
        self.pending_writes_undone = 0
        self.dir = directory
        self.max_bytes = max_bytes
        self.rng = random.Random(seed)
        self.seed = seed
        self.durable = {}  # seq -> (id, kind letter)
        self.acked = set()
        self.written = set()
        self.gaps = []  # (class, from, to), each once, in the order first seen
        self.gap_seen = set()
        self.verified = 0
        self.durable_checked = 0
        self.lost_by_gap = 0
        self.killed_before_open = 0
        self.max_blocks = 0
        self.records_seen = 0
        self.torn_tails = 0

    def check_disk(self):
        names = sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []
        assert names in ([], ["queue.dat"]), f"unexpected files in the queue directory: {names}"
        if names:
            st = os.stat(os.path.join(self.dir, "queue.dat"))
            bound = self.max_bytes + 4096
            assert st.st_size <= bound, f"queue.dat is {st.st_size} bytes > {bound}"
            assert st.st_blocks * 512 <= bound, f"queue.dat uses {st.st_blocks * 512} bytes on disk > {bound}"
            self.max_blocks = max(self.max_blocks, st.st_blocks * 512)

    def covered(self, seq, cls):
        # Newest first: the gap that covers a record just dropped is almost always recent, and
        # the list grows with every overflow (a long run would otherwise slow down quadratically).
        return any(c == cls and a <= seq <= b for c, a, b in reversed(self.gaps))

    def note_gap(self, payload_hex):
        g = json.loads(bytes.fromhex(payload_hex))
        assert g["reason"] == "queue_full" and g["from_seq"] <= g["to_seq"] and g["count"] >= 1, g
        assert g["class"] in ("telemetry", "priority"), g
        t = (g["class"], g["from_seq"], g["to_seq"])
        if t not in self.gap_seen:  # every dump lists the gap records still queued again
            self.gap_seen.add(t)
            self.gaps.append(t)

    def verify_dump(self, dump, it):
        present = {}
        last = 0
        for seq, kind, payload_hex in dump:
            assert seq > last, f"iteration {it}: seq {seq} after {last}"
            last = seq
            if kind == "g":
                self.note_gap(payload_hex)
                continue
            p = bytes.fromhex(payload_hex)
            assert len(p) >= 8, f"iteration {it}: seq {seq} payload too short"
            ident = int.from_bytes(p[:8], "little")
            assert p == expected_payload(ident), f"iteration {it}: seq {seq} (id {ident}) payload damaged"
            assert ident in self.written, f"iteration {it}: seq {seq} carries id {ident} that was never appended"
            if seq in self.durable:
                assert self.durable[seq] == (ident, kind), f"iteration {it}: seq {seq} is {ident}/{kind}, reported {self.durable[seq]}"
            present[seq] = kind
        self.records_seen += len(present)
        for seq, (ident, kind) in list(self.durable.items()):
            if seq in present:
                self.durable_checked += 1
                continue
            if seq in self.acked:
                del self.durable[seq]
                continue
            assert self.covered(seq, CLASS[kind]), \
                f"iteration {it}: durable record seq {seq} (id {ident}, kind {kind}) lost and not reported by a gap"
            self.lost_by_gap += 1
            del self.durable[seq]
        self.verified += 1

    def cut_power(self, out_path):
        """Makes queue.dat look as after a power cut at a point of the journal: at the kill,
        at a random earlier point, or just after a checkpoint write (where the order of
        unsynced writes matters most), so the narrow windows between two writes are hit too. Every write after the point is undone, and of the writes since the
        last completed fdatasync before it all, none or a random subset of their 512-byte
        sectors (in reverse order, so each sector ends up as one of the versions it really
        had). out_path is rewritten with the reports made before the point."""
        entries = read_journal(self.journal)
        where = self.rng.random()
        checkpoints = [i for i, e in enumerate(entries) if e[0] == "W" and e[1] in (0, 2048)]
        if where < 1 / 3 or not entries:
            cut = len(entries)                               # at the kill
        elif where < 2 / 3 or not checkpoints:
            cut = self.rng.randint(0, len(entries))          # anywhere
        else:
            cut = self.rng.choice(checkpoints) + 1           # just after a checkpoint write
        # A sync completed before the cut covers every write journaled before its start ('B');
        # syncs may overlap (background syncs on another thread).
        begun = {e[1]: i for i, e in enumerate(entries[:cut]) if e[0] == "B"}
        last_sync = max((begun[e[1]] for e in entries[:cut] if e[0] == "E" and e[1] in begun), default=-1)
        mode = self.rng.choice(["all lost", "all kept", "random sectors"])
        self.power_cuts[mode] += 1
        path = os.path.join(self.dir, "queue.dat")
        undo = [(i, True) for i in range(cut, len(entries)) if entries[i][0] == "W"]
        if mode != "all kept":
            undo += [(i, mode == "all lost") for i in range(last_sync + 1, cut) if entries[i][0] == "W"]
        if os.path.exists(path):
            with open(path, "r+b") as f:
                # Newest first, so each sector ends up as the version it had before.
                for i, always in sorted(undo, reverse=True):
                    _, off, old, _ = entries[i]
                    first, last = off // SECTOR, (off + len(old) - 1) // SECTOR
                    for sec in range(first, last + 1):
                        if not always and self.rng.random() < 0.5:
                            continue
                        a, b = max(off, sec * SECTOR), min(off + len(old), (sec + 1) * SECTOR)
                        f.seek(a)
                        f.write(old[a - off:b - off])
                        self.pending_writes_undone += 1
        with open(out_path, "wb") as out:
            out.write(b"".join(e[1] for e in entries[:cut] if e[0] == "O"))
        self.last_cut = (cut, len(entries), last_sync, mode)
        if os.environ.get("POWERCUT_KEEP"):
            import shutil
            keep = os.environ["POWERCUT_KEEP"]
            if os.path.isdir(keep):
                shutil.rmtree(keep + ".prev", ignore_errors=True)
                os.rename(keep, keep + ".prev")
            os.makedirs(keep, exist_ok=True)
            if os.path.exists(self.journal):
                shutil.copy(self.journal, os.path.join(keep, "journal.bin"))
            if os.path.exists(path):
                shutil.copy(path, os.path.join(keep, "queue.dat"))
            with open(os.path.join(keep, "cut.txt"), "w") as f:
                f.write(f"{cut} {len(entries)} {last_sync} {mode}\n")

    def iteration(self, it, sync):
        out_path = os.path.join(os.path.dirname(self.dir), "out.txt")
        env = None
        if self.power_cut:
            if os.path.exists(self.journal):
                os.unlink(self.journal)
            env = dict(os.environ, LD_PRELOAD=self.shim, GRIDLET_POWERCUT_JOURNAL=self.journal)
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([STRESS, "--dir", self.dir, "--max-bytes", str(self.max_bytes), "--sync", sync,
                                     "--run", str(it + 1), "--seed", str(self.seed)], stdout=out, stderr=subprocess.PIPE,
                                    env=env)
            # One in ten very early (during start, open and recovery); the others a random
            # time after the open finished (the machine's load must not decide where it lands).
            if self.rng.random() < 0.1:
                time.sleep(self.rng.uniform(0, 0.02))
            else:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and proc.poll() is None:
                    with open(out_path, "rb") as f:
                        head = f.read()
                    if head.startswith(b"OPEN ") or b"\nOPEN " in head:
                        break
                    time.sleep(0.002)
                time.sleep(self.rng.uniform(0, 0.025))
            self.check_disk()
            if proc.poll() is not None:
                raise AssertionError(f"iteration {it}: stress exited early ({proc.returncode}): {proc.stderr.read().decode()}")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stderr.close()
        if self.power_cut:
            self.cut_power(out_path)
        self.check_disk()
        with open(out_path, "rb") as f:
            data = f.read().decode()
        lines = data.split("\n")
        if not data.endswith("\n"):
            lines = lines[:-1]  # a torn last line
        dump = []
        opened = False
        for line in lines:
            if not line:
                continue
            w = line.split(" ")
            tag = w[0]
            if not opened:
                if tag == "R":
                    dump.append((int(w[1]), w[2], w[3] if len(w) > 3 else ""))
                    continue
                assert tag == "OPEN", f"iteration {it}: unexpected {line!r} before OPEN"
                fields = dict(kv.split("=") for kv in w[1:])
                # kill -9 can tear the one record being written when it straddles a page
                # (the kernel checks for a fatal signal between pages): at most one torn tail
                # per ring, never a record that was reported durable (verify_dump checks that).
                skipped = int(fields["skipped"])
                # After a power cut any number of unsynced records may be torn (never a durable one).
                assert self.power_cut or skipped <= 2, f"iteration {it}: recovery after kill -9 skipped {skipped} records: {line}"
                self.torn_tails += skipped
                self.verify_dump(dump, it)
                opened = True
                continue
            if tag == "W":
                self.written.add(int(w[1]))
            elif tag == "D":
                self.durable[int(w[1])] = (int(w[2]), w[3])
            elif tag == "K":
                self.acked.add(int(w[1]))
            elif tag == "G":
                self.note_gap(w[1])
            else:
                raise AssertionError(f"iteration {it}: unexpected line {line!r}")
        if not opened:
            self.killed_before_open += 1

    def run(self, iterations, time_limit=None):
        start = time.monotonic()
        # After a power cut only synced records are durable: `none` never syncs.
        modes = MODES_POWER_CUT if self.power_cut else MODES_KILL
        done = 0
        for it in range(iterations):
            if time_limit is not None and time.monotonic() - start > time_limit:
                break
            self.iteration(it, modes[it % len(modes)])
            done += 1
        return done


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=10000)
    ap.add_argument("--max-bytes", type=int, default=64 * 1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--power-cut", action="store_true",
                    help="emulate a power cut after each kill: undo unsynced writes (LD_PRELOAD journal)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridlet-queue-crash-", dir=TMP_ROOT) as tmp:
        loop = CrashLoop(os.path.join(tmp, "q"), a.max_bytes, a.seed, power_cut=a.power_cut)
        modes = MODES_POWER_CUT if a.power_cut else MODES_KILL
        t0 = time.monotonic()
        done = 0
        try:
            for it in range(a.iterations):
                loop.iteration(it, modes[it % len(modes)])
                done += 1
                if done % 500 == 0:
                    print(f"{done} iterations, {loop.verified} dumps verified, {loop.durable_checked} durable checks, "
                          f"{loop.lost_by_gap} reported by gaps", flush=True)
        except AssertionError as e:
            print(f"FAILED after {done} iterations: {e}")
            return 1
        dt = time.monotonic() - t0
        if a.power_cut:
            print(f"power cuts: {loop.power_cuts}, {loop.pending_writes_undone} unsynced sector writes undone")
        print(f"ok: {done} {'power-cut' if a.power_cut else 'kill -9'} iterations in {dt:.0f} s; {loop.verified} reopen dumps verified, "
              f"{loop.durable_checked} durable-record checks, {loop.records_seen} records seen, "
              f"{loop.lost_by_gap} durable records dropped by a full ring and covered by a gap, "
              f"{loop.killed_before_open} kills during open, {loop.torn_tails} torn tails, max disk use {loop.max_blocks} B "
              f"(bound {a.max_bytes + 4096} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
